//! HTTP surface of serving endpoints: the Databricks-shaped management API under
//! `/api/2.0/serving-endpoints`, invocations at `/serving-endpoints/{name}/invocations`, and
//! the Open Inference Protocol V2 with endpoints as models.

use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::access::{Created, Filter, Need, Param, RouteRule, Rule};
use ferroflow_core::{Error, Result};
use serde::Deserialize;
use serde_json::json;

use super::config::EndpointConfig;
use super::manager::EndpointManager;
use crate::protocol::ScoringError;
use crate::runtime::{runtime_status, RuntimeStatus};
use crate::v2::InferRequest;

/// Every serving route as (method, path), for the API spec check.
pub const ROUTES: &[RouteRule] = &[
    (
        "POST",
        "/api/2.0/serving-endpoints",
        Rule::Creates(Created::Endpoint),
    ),
    (
        "GET",
        "/api/2.0/serving-endpoints",
        Rule::Filtered(Filter::Endpoints),
    ),
    (
        "GET",
        "/api/2.0/serving-endpoints/{name}",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "PUT",
        "/api/2.0/serving-endpoints/{name}",
        Rule::EndpointConfig(Param::Path("name")),
    ),
    (
        "PUT",
        "/api/2.0/serving-endpoints/{name}/config",
        Rule::EndpointConfig(Param::Path("name")),
    ),
    (
        "DELETE",
        "/api/2.0/serving-endpoints/{name}",
        Rule::Endpoint(Param::Path("name"), Need::Manage),
    ),
    (
        "POST",
        "/serving-endpoints/{name}/invocations",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    ("GET", "/v2/health/live", Rule::Open),
    ("GET", "/v2/health/ready", Rule::Open),
    (
        "GET",
        "/v2/models/{name}",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "GET",
        "/v2/models/{name}/ready",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "POST",
        "/v2/models/{name}/infer",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "GET",
        "/v2/models/{name}/versions/{version}",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "GET",
        "/v2/models/{name}/versions/{version}/ready",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
    (
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        Rule::Endpoint(Param::Path("name"), Need::Read),
    ),
];

type Manager = web::Data<EndpointManager>;

/// Mounts the serving routes (the app must hold a `web::Data<EndpointManager>`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/2.0/serving-endpoints", web::post().to(create))
        .route("/api/2.0/serving-endpoints", web::get().to(list))
        .route("/api/2.0/serving-endpoints/{name}", web::get().to(get))
        .route("/api/2.0/serving-endpoints/{name}", web::put().to(update))
        .route(
            "/api/2.0/serving-endpoints/{name}/config",
            web::put().to(update),
        )
        .route(
            "/api/2.0/serving-endpoints/{name}",
            web::delete().to(delete),
        )
        .route(
            "/serving-endpoints/{name}/invocations",
            web::post().to(invocations),
        )
        .route("/v2/health/live", web::get().to(live))
        .route("/v2/health/ready", web::get().to(ready))
        .route("/v2/models/{name}", web::get().to(metadata))
        .route("/v2/models/{name}/ready", web::get().to(model_ready))
        .route("/v2/models/{name}/infer", web::post().to(infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            web::get().to(metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            web::get().to(model_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            web::post().to(infer),
        );
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::invalid(format!("Malformed request body: {e}")))
}

#[derive(Deserialize)]
struct CreateEndpoint {
    name: Option<String>,
    config: Option<EndpointConfig>,
}

async fn create(m: Manager, body: web::Bytes) -> Result<HttpResponse> {
    let r: CreateEndpoint = json_body(&body)?;
    let name = r
        .name
        .ok_or_else(|| ferroflow_core::http::missing_value("name"))?;
    let config = r
        .config
        .ok_or_else(|| ferroflow_core::http::missing_value("config"))?;
    Ok(HttpResponse::Ok().json(m.create(&name, config).await?))
}

async fn list(m: Manager) -> HttpResponse {
    HttpResponse::Ok().json(m.list())
}

async fn get(m: Manager, name: web::Path<String>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(m.get(&name)?))
}

/// `PUT …/{name}/config` takes the config itself; `PUT …/{name}` also accepts `{"config"}`.
async fn update(m: Manager, name: web::Path<String>, body: web::Bytes) -> Result<HttpResponse> {
    let value: serde_json::Value = json_body(&body)?;
    let config_value = match value.get("config") {
        Some(c) if value.get("served_models").is_none() => c.clone(),
        _ => value,
    };
    let config: EndpointConfig = serde_json::from_value(config_value)
        .map_err(|e| Error::invalid(format!("Invalid endpoint config: {e}")))?;
    Ok(HttpResponse::Ok().json(m.update(&name, config).await?))
}

async fn delete(m: Manager, name: web::Path<String>) -> Result<HttpResponse> {
    m.delete(&name).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// The prediction, with the served model and version that answered in headers.
async fn invocations(
    m: Manager,
    name: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> std::result::Result<HttpResponse, ScoringError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let done = m.invoke(&name, content_type, &body).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("served-model-name", done.served_model))
        .insert_header(("served-model-version", done.version))
        .json(done.body))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "live": true }))
}

/// Ready when ONNX Runtime is loaded and every endpoint is READY. "Not ready" is a 4xx, as the
/// Open Inference Protocol's REST binding has it (Triton answers 400).
async fn ready(m: Manager) -> HttpResponse {
    let runtime = matches!(runtime_status(), RuntimeStatus::Ready { .. });
    if runtime && m.all_ready() {
        HttpResponse::Ok().json(json!({ "ready": true }))
    } else {
        HttpResponse::BadRequest().json(json!({ "ready": false }))
    }
}

fn target(req: &HttpRequest) -> (String, Option<String>) {
    (
        req.match_info().get("name").unwrap_or_default().to_string(),
        req.match_info().get("version").map(str::to_string),
    )
}

async fn metadata(m: Manager, req: HttpRequest) -> Result<HttpResponse> {
    let (name, version) = target(&req);
    let (endpoint, _, deployed) = m.route(&name, version.as_deref())?;
    let versions = match version {
        Some(v) => vec![v],
        None => {
            let mut all: Vec<String> = endpoint
                .slots
                .iter()
                .filter_map(|s| s.current().map(|d| d.version.clone()))
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    Ok(HttpResponse::Ok().json(deployed.model.v2_metadata(&name, versions)))
}

async fn model_ready(m: Manager, req: HttpRequest) -> Result<HttpResponse> {
    let (name, version) = target(&req);
    let ready = m.route(&name, version.as_deref()).is_ok();
    let body = json!({ "name": name, "ready": ready });
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::BadRequest().json(body)
    })
}

async fn infer(m: Manager, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let (name, version) = target(&req);
    let request: InferRequest = json_body(&body)?;
    let (_, _, deployed) = m.route(&name, version.as_deref())?;
    let response = deployed
        .model
        .infer(&name, Some(deployed.version.as_str()), request)
        .await?;
    Ok(HttpResponse::Ok().json(response))
}
