//! actix handlers for MLflow's proxied artifacts: `mlflow-artifacts` (upload, download,
//! list, delete, multipart), the run-relative `artifacts/list` and `/get-artifact`.
//! Uploads and downloads stream; there is no body-size cap on artifact PUT.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::http::{missing_value, parse};
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
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/2.0/mlflow-artifacts/artifacts"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/create/{path}"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/{path}"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/{path}"),
    ("GET", "/api/2.0/mlflow/artifacts/list"),
    ("GET", "/get-artifact"),
];

/// Whether `path` is one of the artifact routes (under either prefix), whatever the method:
/// lets the server answer 405 rather than 404 for a wrong method.
pub fn is_artifact_route(path: &str) -> bool {
    ROUTES.iter().any(|(_, pattern)| {
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

fn stream_artifact(a: Artifact) -> HttpResponse {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        a.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    HttpResponse::Ok()
        .content_type(a.content_type)
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(a.size)
        .streaming(a.stream.map_err(actix_web::Error::from))
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

/// MLflow's answer for a store without the multipart-upload protocol (501 NOT_IMPLEMENTED),
/// after the same request checks MLflow makes first.
async fn multipart(
    svc: &ArtifactService,
    req: &HttpRequest,
    body: &[u8],
    required: &[&str],
) -> Result<HttpResponse> {
    super::service::safe_segments(&tail(req))?;
    let r: serde_json::Map<String, Value> = parse(req, body, &[])?;
    for field in required {
        match r.get(*field) {
            None | Some(Value::Null) => return Err(missing_value(field)),
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            Some(other) => {
                return Err(Error::invalid(format!(
                    "Invalid value {other} for parameter '{field}' supplied."
                )))
            }
        }
    }
    if !svc.multipart_uploads_enabled() {
        return Ok(
            HttpResponse::build(StatusCode::NOT_IMPLEMENTED).json(json!({
                "error_code": "NOT_IMPLEMENTED",
                "message": "Multipart upload is not supported for the current artifact repository",
            })),
        );
    }
    Err(Error::internal("multipart upload is not implemented"))
}

async fn create_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    multipart(&svc, &req, &body, &["path"]).await
}

async fn complete_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    multipart(&svc, &req, &body, &["path", "parts"]).await
}

async fn abort_multipart(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    multipart(&svc, &req, &body, &["path"]).await
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
