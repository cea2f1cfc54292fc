//! actix handlers for MLflow's proxied artifacts: `mlflow-artifacts` (upload, download,
//! list, delete, multipart), the run-relative `artifacts/list` and `/get-artifact`.
//! Uploads and downloads stream; there is no body-size cap on artifact PUT.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::access::{Need, Param, RouteRule, Rule};
use ferroflow_core::http::{int64, missing_value, parse};
use ferroflow_core::{Error, Result};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::service::{Artifact, ArtifactService};

/// Prefixes MLflow serves the proxied-artifact API under.
pub const ARTIFACT_PREFIXES: [&str; 2] = [
    "/api/2.0/mlflow-artifacts",
    "/ajax-api/2.0/mlflow-artifacts",
];

/// Every artifact route as (method, full path); `{path}` is a trailing wildcard. The OpenAPI
/// test checks the spec against this list.
pub const ROUTES: &[RouteRule] = &[
    (
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts",
        Rule::ArtifactPath(Param::Field("path"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Read),
    ),
    (
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Update),
    ),
    (
        "DELETE",
        "/api/2.0/mlflow-artifacts/artifacts/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Manage),
    ),
    (
        "POST",
        "/api/2.0/mlflow-artifacts/mpu/create/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/mlflow-artifacts/mpu/complete/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/mlflow-artifacts/mpu/abort/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Update),
    ),
    (
        "GET",
        "/api/2.0/mlflow-artifacts/presigned/{path}",
        Rule::ArtifactPath(Param::Path("path"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/mlflow/artifacts/list",
        Rule::Run(Param::Field("run_id"), Need::Read),
    ),
    (
        "GET",
        "/get-artifact",
        Rule::Run(Param::Field("run_id"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories",
        Rule::LoggedModel(Param::Path("model_id"), Need::Read),
    ),
    (
        "GET",
        "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
        Rule::LoggedModel(Param::Path("model_id"), Need::Read),
    ),
];

/// Whether `path` is one of the artifact routes (under either prefix), whatever the method:
/// lets the server answer 405 rather than 404 for a wrong method.
pub fn is_artifact_route(path: &str) -> bool {
    ROUTES.iter().any(|(_, pattern, _)| {
        let variants = [
            pattern.to_string(),
            pattern.replacen("/api/", "/ajax-api/", 1),
        ];
        variants.iter().any(|p| match p.strip_suffix("{path}") {
            Some(prefix) => path.starts_with(prefix),
            None => path == p,
        })
    })
}

type Svc = web::Data<ArtifactService>;

/// Registers the artifact routes on the app (call before the `/api/2.0/mlflow` scopes so
/// `artifacts/list` is matched here).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ARTIFACT_PREFIXES {
        cfg.service(
            web::scope(prefix)
                .route("/artifacts", web::get().to(list_artifacts))
                .route("/artifacts/{path:.*}", web::get().to(download_artifact))
                .route("/artifacts/{path:.*}", web::put().to(upload_artifact))
                .route("/artifacts/{path:.*}", web::delete().to(delete_artifact))
                .route("/mpu/create/{path:.*}", web::post().to(create_multipart))
                .route(
                    "/mpu/complete/{path:.*}",
                    web::post().to(complete_multipart),
                )
                .route("/mpu/abort/{path:.*}", web::post().to(abort_multipart))
                .route("/presigned/{path:.*}", web::get().to(presigned_download))
                .default_service(web::to(wrong_method)),
        );
    }
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        cfg.route(
            &format!("{prefix}/artifacts/list"),
            web::get().to(list_run_artifacts),
        );
    }
    cfg.route("/get-artifact", web::get().to(get_artifact));
    for prefix in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        cfg.route(
            &format!("{prefix}/logged-models/{{model_id}}/artifacts/directories"),
            web::get().to(list_logged_model_artifacts),
        );
    }
    cfg.route(
        "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
        web::get().to(get_logged_model_artifact),
    );
}

fn ok_empty() -> HttpResponse {
    HttpResponse::Ok().json(json!({}))
}

/// The tail after the route's `{path}` wildcard, as the client sent it.
fn tail(req: &HttpRequest) -> String {
    req.match_info().get("path").unwrap_or("").to_string()
}

async fn upload_artifact(
    svc: Svc,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    svc.upload(&tail(&req), payload).await?;
    // As MLflow: 200 with an empty body.
    Ok(HttpResponse::Ok().content_type("application/json").finish())
}

/// An artifact as a download: its type, length and `Content-Disposition`, streamed.
pub fn stream_artifact(a: Artifact) -> HttpResponse {
    let disposition = content_disposition(&a.name);
    HttpResponse::Ok()
        .content_type(a.content_type)
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(a.size)
        .streaming(a.stream.map_err(actix_web::Error::from))
}

/// `attachment; filename="…"` with an ASCII stand-in, plus RFC 6266's `filename*` when the name
/// is not plain ASCII (control characters and non-ASCII names cannot go in a header as is).
fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if plain == name {
        return format!("attachment; filename=\"{plain}\"");
    }
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

async fn download_artifact(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    Ok(stream_artifact(svc.download(&tail(&req)).await?))
}

async fn delete_artifact(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let path = tail(&req);
    if path.trim_matches('/').is_empty() {
        return Err(Error::invalid("Invalid path: an artifact path is required"));
    }
    svc.delete(&path).await?;
    Ok(ok_empty())
}

#[derive(Deserialize)]
struct ListRequest {
    path: Option<String>,
}

async fn list_artifacts(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let r: ListRequest = parse(&req, &[], &[])?;
    let files = svc.list(r.path.as_deref()).await?;
    Ok(HttpResponse::Ok().json(if files.is_empty() {
        json!({})
    } else {
        json!({ "files": files })
    }))
}

#[derive(Deserialize)]
struct RunListRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
    #[allow(dead_code)]
    page_token: Option<String>,
}

fn run_id_of(run_id: Option<String>, run_uuid: Option<String>) -> Result<String> {
    run_id
        .filter(|s| !s.is_empty())
        .or(run_uuid.filter(|s| !s.is_empty()))
        .ok_or_else(|| missing_value("run_id"))
}

async fn list_run_artifacts(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let r: RunListRequest = parse(&req, &[], &[])?;
    let run_id = run_id_of(r.run_id, r.run_uuid)?;
    let (root_uri, files) = svc.list_run(&run_id, r.path.as_deref()).await?;
    let mut body = json!({ "root_uri": root_uri });
    if !files.is_empty() {
        body["files"] = json!(files);
    }
    Ok(HttpResponse::Ok().json(body))
}

async fn get_artifact(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let r: RunListRequest = parse(&req, &[], &[])?;
    let run_id = run_id_of(r.run_id, r.run_uuid)?;
    let path = r.path.ok_or_else(|| missing_value("path"))?;
    Ok(stream_artifact(
        svc.download_run_artifact(&run_id, &path).await?,
    ))
}

#[derive(Deserialize)]
struct LoggedModelListRequest {
    artifact_directory_path: Option<String>,
}

/// `GET logged-models/{id}/artifacts/directories`: `{root_uri, files}` as MLflow's
/// `ListLoggedModelArtifacts`.
async fn list_logged_model_artifacts(
    svc: Svc,
    req: HttpRequest,
    model_id: web::Path<String>,
) -> Result<HttpResponse> {
    let r: LoggedModelListRequest = parse(&req, &[], &[])?;
    let (root_uri, files) = svc
        .list_logged_model(&model_id, r.artifact_directory_path.as_deref())
        .await?;
    let mut body = json!({ "root_uri": root_uri });
    if !files.is_empty() {
        body["files"] = json!(files);
    }
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
struct LoggedModelFileRequest {
    artifact_file_path: Option<String>,
}

/// `GET /ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files?artifact_file_path=`.
async fn get_logged_model_artifact(
    svc: Svc,
    req: HttpRequest,
    model_id: web::Path<String>,
) -> Result<HttpResponse> {
    let r: LoggedModelFileRequest = parse(&req, &[], &[])?;
    let path = r
        .artifact_file_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::new(
                ferroflow_core::ErrorCode::BadRequest,
                "Request must include the \"artifact_file_path\" query parameter.",
            )
        })?;
    Ok(stream_artifact(
        svc.download_logged_model_artifact(&model_id, &path).await?,
    ))
}

#[derive(Deserialize)]
struct CreateMultipart {
    path: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    num_parts: Option<i64>,
}

#[derive(Deserialize)]
struct MultipartPart {
    #[serde(default, deserialize_with = "int64")]
    part_number: Option<i64>,
    etag: Option<String>,
}

#[derive(Deserialize)]
struct CompleteMultipart {
    path: Option<String>,
    upload_id: Option<String>,
    parts: Option<Vec<MultipartPart>>,
}

#[derive(Deserialize)]
struct AbortMultipart {
    path: Option<String>,
    upload_id: Option<String>,
}

/// `POST mpu/create/<dir>`: on S3, an upload id and a presigned PUT URL per part; elsewhere
/// 501 with MLflow's message, which makes the client fall back to a proxied PUT.
async fn create_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let dir = tail(&req);
    super::service::safe_segments(&dir)?;
    let r: CreateMultipart = parse(&req, &body, &[])?;
    let path = r.path.ok_or_else(|| missing_value("path"))?;
    let num_parts = u32::try_from(r.num_parts.unwrap_or(0)).map_err(|_| {
        Error::invalid(format!(
            "Invalid value {} for parameter 'num_parts' supplied.",
            r.num_parts.unwrap_or(0)
        ))
    })?;
    let (upload_id, urls) = svc.create_multipart(&dir, &path, num_parts).await?;
    let credentials: Vec<Value> = urls
        .into_iter()
        .map(|(part_number, url)| json!({"url": url, "part_number": part_number, "headers": {}}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"upload_id": upload_id, "credentials": credentials})))
}

/// `POST mpu/complete/<dir>`: assembles the parts the client uploaded.
async fn complete_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let dir = tail(&req);
    super::service::safe_segments(&dir)?;
    let r: CompleteMultipart = parse(&req, &body, &[])?;
    let path = r.path.ok_or_else(|| missing_value("path"))?;
    let parts = r.parts.ok_or_else(|| missing_value("parts"))?;
    let parts = parts
        .into_iter()
        .map(|p| {
            let number = p.part_number.unwrap_or(0);
            match (u32::try_from(number), p.etag) {
                (Ok(n), Some(etag)) if n >= 1 => Ok((n, etag)),
                _ => Err(Error::invalid(format!(
                    "Invalid part {number}: every part needs a part_number >= 1 and an etag"
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let upload_id = r.upload_id.unwrap_or_default();
    svc.complete_multipart(&dir, &path, &upload_id, parts)
        .await?;
    Ok(ok_empty())
}

/// `POST mpu/abort/<dir>`: drops an unfinished upload.
async fn abort_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let dir = tail(&req);
    super::service::safe_segments(&dir)?;
    let r: AbortMultipart = parse(&req, &body, &[])?;
    let path = r.path.ok_or_else(|| missing_value("path"))?;
    let upload_id = r.upload_id.unwrap_or_default();
    svc.abort_multipart(&dir, &path, &upload_id).await?;
    Ok(ok_empty())
}

/// `GET presigned/<path>`: a presigned download URL (S3), `{url, headers, file_size}`.
async fn presigned_download(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let (url, size) = svc.presigned_download(&tail(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({"url": url, "headers": {}, "file_size": size})))
}

async fn wrong_method(req: HttpRequest) -> HttpResponse {
    let (status, code, message) = if is_artifact_route(req.path()) {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_REQUEST",
            format!("Method {} is not allowed for {}", req.method(), req.path()),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("No endpoint {} {}", req.method(), req.path()),
        )
    };
    HttpResponse::build(status).json(json!({ "error_code": code, "message": message }))
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn names_that_cannot_go_in_a_header_get_an_ascii_stand_in_and_filename_star() {
        assert_eq!(
            content_disposition("a.txt"),
            "attachment; filename=\"a.txt\""
        );
        assert_eq!(
            content_disposition("\u{1a}x"),
            "attachment; filename=\"_x\"; filename*=UTF-8''%1Ax"
        );
        assert_eq!(
            content_disposition("é \"q\""),
            "attachment; filename=\"_ _q_\"; filename*=UTF-8''%C3%A9%20%22q%22"
        );
        for name in ["\u{1a}", "é", "a\r\nb"] {
            assert!(
                actix_web::http::header::HeaderValue::from_str(&content_disposition(name)).is_ok()
            );
        }
    }
}
