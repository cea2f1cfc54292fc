//! MLflow's web UI: the built bundle from the mlflow wheel (`scripts/mlflow-ui.sh` fetches it),
//! served as `mlflow server` serves it: `index.html` at `/`, the bundle under `/static-files/`
//! (hashed assets cached for 28 days, as Flask's `max_age=2419200`; gzip or brotli when the
//! client accepts it). Without a bundle, `/` answers a short page saying how to install it.

use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{middleware, web, HttpRequest, HttpResponse};

/// `Cache-Control` of the bundle's assets (their names carry a content hash).
const ASSET_MAX_AGE: &str = "public, max-age=2419200";

/// Where the UI bundle is: the configured folder, else `./.mlflow-ui`, else `.mlflow-ui` in a
/// parent of the binary's folder (a checkout's `target/<profile>/ferroflow`).
pub fn find_folder(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        if dir.join("index.html").is_file() {
            return Some(dir.to_path_buf());
        }
        tracing::warn!(
            "--static-folder {} holds no index.html; / will say how to install the UI",
            dir.display()
        );
        return None;
    }
    let mut candidates = vec![PathBuf::from(".mlflow-ui")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|d| d.join(".mlflow-ui")));
    }
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

#[derive(Clone)]
pub struct Ui {
    /// The bundle's folder, when one was found.
    pub folder: Option<PathBuf>,
    /// `--static-prefix`: every path is served under it.
    pub prefix: Option<String>,
}

/// Middleware for `--static-prefix`: a path under the prefix is routed without it; any other
/// path is a 404, as on `mlflow server --static-prefix`.
pub async fn strip_prefix(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let prefix = req
        .app_data::<web::Data<Ui>>()
        .and_then(|ui| ui.prefix.clone());
    let Some(prefix) = prefix else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let rest = match req.path().strip_prefix(prefix.as_str()) {
        Some("") => Some("/".to_string()),
        Some(rest) if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    };
    let Some(rest) = rest else {
        let res = outside_prefix(req.request());
        return Ok(req.into_response(res).map_into_right_body());
    };
    let target = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    let uri: Uri = target.parse().map_err(actix_web::error::ErrorBadRequest)?;
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
    Ok(next.call(req).await?.map_into_left_body())
}

/// Mounts `/` and `/static-files/…` (the static prefix, if any, is stripped before routing).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index)).service(
        web::scope("/static-files")
            .wrap(middleware::Compress::default())
            .route("/{path:.*}", web::get().to(asset)),
    );
}

async fn index(ui: web::Data<Ui>, req: HttpRequest) -> HttpResponse {
    match &ui.folder {
        Some(folder) => send(&req, &folder.join("index.html"), "no-cache").await,
        None => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(NO_UI_PAGE),
    }
}

async fn asset(ui: web::Data<Ui>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(folder) = &ui.folder else {
        return not_found(&req);
    };
    let rel = Path::new(path.as_str());
    // Only plain names below the folder: no `..`, no absolute paths.
    if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return not_found(&req);
    }
    send(&req, &folder.join(rel), ASSET_MAX_AGE).await
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": format!("No file at {}", req.path()),
    }))
}

/// A path outside `--static-prefix`: nothing is served there.
fn outside_prefix(req: &HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": format!("No endpoint {} {}", req.method(), req.path()),
    }))
}

/// Sends a file with its type, an ETag from its size and modification time, and a 304 when
/// the client already has it.
async fn send(req: &HttpRequest, file: &Path, cache_control: &'static str) -> HttpResponse {
    let Ok(meta) = tokio::fs::metadata(file).await else {
        return not_found(req);
    };
    if !meta.is_file() {
        return not_found(req);
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return HttpResponse::build(StatusCode::NOT_MODIFIED)
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    let Ok(bytes) = tokio::fs::read(file).await else {
        return not_found(req);
    };
    let mime = mime_guess::from_path(file).first_or_octet_stream();
    let mut content_type = mime.essence_str().to_string();
    if mime.type_() == "text" || mime.essence_str() == "application/javascript" {
        content_type.push_str("; charset=utf-8");
    }
    let mut res = HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, etag))
        .body(bytes);
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    res
}

const NO_UI_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ferroflow</title></head>
<body style="font-family: sans-serif; max-width: 42em; margin: 3em auto; line-height: 1.5">
<h1>ferroflow is running</h1>
<p>The MLflow web UI is not installed. It is MLflow's own built UI, taken from the
<code>mlflow</code> wheel on PyPI. From a ferroflow checkout, run</p>
<pre>scripts/mlflow-ui.sh</pre>
<p>and restart the server from the checkout (it looks for <code>.mlflow-ui</code>), or point it
at the folder with <code>--static-folder</code> (<code>FERROFLOW_STATIC_FOLDER</code>).</p>
<p>The REST API is served either way: <code>/api/2.0/mlflow/…</code>, <code>/health</code>,
<code>/metrics</code>.</p>
</body></html>
"#;
