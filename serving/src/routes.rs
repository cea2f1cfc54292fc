//! Standalone scoring routes for one model: MLflow's scoring server (`/invocations`, `/ping`,
//! `/health`, `/version`) and the Open Inference Protocol V2 routes.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::Error;
use serde_json::json;

use crate::model::LoadedModel;
use crate::protocol::ScoringError;
use crate::runtime::{runtime_status, RuntimeStatus};
use crate::v2::InferRequest;

/// The model these routes serve, and the name V2 paths must use.
#[derive(Clone)]
struct Served {
    model: Arc<LoadedModel>,
    name: Arc<str>,
}

/// Routes serving `model` as `model_name` (the `{name}` of the V2 paths).
pub fn scoring_app_config(
    model: Arc<LoadedModel>,
    model_name: &str,
) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let served = Served {
        model,
        name: Arc::from(model_name),
    };
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(served.clone()))
            .route("/invocations", web::post().to(invocations))
            .route("/ping", web::get().to(ping))
            .route("/health", web::get().to(ping))
            .route("/version", web::get().to(version))
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
}

async fn invocations(
    served: web::Data<Served>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ScoringError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let predictions = served.model.invocations(content_type, &body).await?;
    Ok(HttpResponse::Ok().json(predictions))
}

/// MLflow answers `/ping` and `/health` with 200 and a newline.
async fn ping() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body("\n")
}

async fn version() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(env!("CARGO_PKG_VERSION"))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "live": true }))
}

async fn ready() -> HttpResponse {
    match runtime_status() {
        RuntimeStatus::Ready { .. } => HttpResponse::Ok().json(json!({ "ready": true })),
        RuntimeStatus::Unavailable { .. } => {
            HttpResponse::ServiceUnavailable().json(json!({ "ready": false }))
        }
    }
}

/// `{name}` and optional `{version}` from a V2 path; 404 for another model's name.
fn target(served: &Served, req: &HttpRequest) -> Result<(String, Option<String>), Error> {
    let name = req.match_info().get("name").unwrap_or_default().to_string();
    if name != *served.name {
        return Err(Error::not_found(format!(
            "model '{name}' is not served here (this server serves '{}')",
            served.name
        )));
    }
    Ok((name, req.match_info().get("version").map(str::to_string)))
}

async fn metadata(served: web::Data<Served>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let (name, version) = target(&served, &req)?;
    let versions = version.into_iter().collect();
    Ok(HttpResponse::Ok().json(served.model.v2_metadata(&name, versions)))
}

async fn model_ready(served: web::Data<Served>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let (name, _) = target(&served, &req)?;
    let ready = matches!(runtime_status(), RuntimeStatus::Ready { .. });
    let body = json!({ "name": name, "ready": ready });
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

async fn infer(
    served: web::Data<Served>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    let (name, version) = target(&served, &req)?;
    let request: InferRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("invalid inference request: {e}")))?;
    let response = served
        .model
        .infer(&name, version.as_deref(), request)
        .await?;
    Ok(HttpResponse::Ok().json(response))
}
