//! Calls the MLflow UI makes outside the REST API, answered as `mlflow server` answers them
//! (`mlflow/server/__init__.py` and its handlers): a model version's files, the UI's small
//! artifact upload, and the answers of features ferroflow does not have (AI gateway,
//! assistant, telemetry) in their "nothing configured" shape, so the UI shows them as empty.

use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::access::{Need, Param, RouteRule, Rule};
use ferroflow_core::http::{missing_value, parse};
use ferroflow_core::{Error, Result};
use ferroflow_registry::RegistryService;
use ferroflow_tracking::artifacts::{stream_artifact, ArtifactService};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the UI may upload through `upload-artifact` (MLflow's limit).
const MAX_UI_UPLOAD: usize = 10 * 1024 * 1024;

/// (METHOD, path) of every route here, for the spec check.
pub const ROUTES: &[RouteRule] = &[
    (
        "GET",
        "/model-versions/get-artifact",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    (
        "POST",
        "/ajax-api/2.0/mlflow/upload-artifact",
        Rule::Run(Param::Query("run_uuid"), Need::Update),
    ),
    (
        "GET",
        "/ajax-api/2.0/mlflow/gateway-proxy",
        Rule::Authenticated,
    ),
    (
        "POST",
        "/ajax-api/2.0/mlflow/gateway-proxy",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/ajax-api/3.0/mlflow/ui-telemetry",
        Rule::Authenticated,
    ),
    (
        "POST",
        "/ajax-api/3.0/mlflow/ui-telemetry",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/ajax-api/3.0/mlflow/assistant/config",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/ajax-api/3.0/mlflow/assistant/providers",
        Rule::Authenticated,
    ),
    (
        "POST",
        "/ajax-api/3.0/mlflow/traces/metrics",
        Rule::Experiments(Param::Field("experiment_ids"), Need::Read),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/model-versions/get-artifact",
        web::get().to(model_version_artifact),
    )
    .service(
        web::resource("/ajax-api/2.0/mlflow/upload-artifact")
            // Larger bodies get MLflow's 400 below, up to the JSON limit (then a 413).
            .app_data(web::PayloadConfig::new(ferroflow_core::http::MAX_JSON_BODY))
            .route(web::post().to(upload_artifact)),
    )
    .route(
        "/ajax-api/2.0/mlflow/gateway-proxy",
        web::get().to(gateway_proxy),
    )
    .route(
        "/ajax-api/2.0/mlflow/gateway-proxy",
        web::post().to(gateway_proxy),
    )
    .route(
        "/ajax-api/3.0/mlflow/ui-telemetry",
        web::get().to(telemetry_config),
    )
    .route(
        "/ajax-api/3.0/mlflow/ui-telemetry",
        web::post().to(telemetry_records),
    )
    .route(
        "/ajax-api/3.0/mlflow/assistant/config",
        web::get().to(assistant_config),
    )
    .route(
        "/ajax-api/3.0/mlflow/assistant/providers",
        web::get().to(assistant_providers),
    )
    .route(
        "/ajax-api/3.0/mlflow/traces/metrics",
        web::post().to(trace_metrics),
    );
}

#[derive(Deserialize)]
struct VersionArtifact {
    name: Option<String>,
    version: Option<String>,
    path: Option<String>,
}

/// `GET /model-versions/get-artifact?name=&version=&path=`: a file of a model version (the
/// UI reads `MLmodel` for the version page's schema).
async fn model_version_artifact(
    registry: web::Data<RegistryService>,
    artifacts: web::Data<ArtifactService>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let q: VersionArtifact = parse(&req, &[], &[])?;
    let name = q.name.ok_or_else(|| missing_value("name"))?;
    let version = q.version.ok_or_else(|| missing_value("version"))?;
    let path = q.path.ok_or_else(|| missing_value("path"))?;
    let mv = registry.get_model_version(&name, &version).await?;
    let location = registry.model_version_location(&mv).await?;
    Ok(stream_artifact(
        artifacts.download_under(&location, &path).await?,
    ))
}

#[derive(Deserialize)]
struct UploadQuery {
    run_uuid: Option<String>,
    path: Option<String>,
}

/// `POST upload-artifact?run_uuid=&path=` with the file as the body (at most 10 MB), as
/// MLflow's `upload_artifact_handler`; answers an empty body.
async fn upload_artifact(
    artifacts: web::Data<ArtifactService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let q: UploadQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Error::invalid(format!("Invalid query string: {e}")))?;
    let run_id = q
        .run_uuid
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::invalid("Request must specify run_uuid."))?;
    let path = q
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::invalid("Request must specify path."))?;
    if body.is_empty() {
        return Err(Error::invalid("Request must specify data."));
    }
    if body.len() > MAX_UI_UPLOAD {
        return Err(Error::invalid(
            "Artifact size is too large. Max size is 10MB.",
        ));
    }
    artifacts.upload_run_artifact(&run_id, &path, body).await?;
    Ok(HttpResponse::Ok().content_type("application/json").finish())
}

/// MLflow with no deployments target configured: "an empty gateway service".
async fn gateway_proxy() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "endpoints": [] }))
}

/// Telemetry is off: MLflow's fallback configuration.
async fn telemetry_config() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "disable_ui_events": [],
        "disable_ui_telemetry": true,
        "ui_rollout_percentage": 0,
    }))
}

async fn telemetry_records() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "disabled" }))
}

/// No assistant configured.
async fn assistant_config() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "providers": {},
        "projects": {},
        "remote_access_allowed": false,
    }))
}

/// No assistant provider: MLflow's `ProvidersResponse` with none available.
async fn assistant_providers() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "providers": [],
        "resolved": null,
        "gateway_vendor_options": {},
    }))
}

#[derive(Deserialize)]
struct TraceMetricsRequest {
    #[serde(default)]
    experiment_ids: Vec<String>,
    view_type: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    aggregations: Vec<Value>,
    #[serde(default)]
    dimensions: Vec<String>,
    time_interval_seconds: Option<Value>,
}

/// `traces/metrics` (the experiment overview's charts) while ferroflow records no traces:
/// MLflow's answer over an empty trace table. A plain count (no dimensions, no time buckets)
/// is one point of 0; every other aggregate has no rows, so no points (`{}`).
async fn trace_metrics(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: TraceMetricsRequest = parse(&req, &body, &[])?;
    if r.experiment_ids.is_empty() {
        return Err(missing_value("experiment_ids"));
    }
    if r.view_type.is_none() {
        return Err(missing_value("view_type"));
    }
    let metric = r.metric_name.ok_or_else(|| missing_value("metric_name"))?;
    let counts = r
        .aggregations
        .iter()
        .any(|a| a.get("aggregation_type").and_then(Value::as_str) == Some("COUNT"));
    if counts && r.dimensions.is_empty() && r.time_interval_seconds.is_none() {
        return Ok(HttpResponse::Ok().json(json!({
            "data_points": [{"metric_name": metric, "values": {"COUNT": 0.0}}],
        })));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}
