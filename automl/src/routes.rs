//! HTTP surface of AutoML: start a sweep, follow it, cancel it, upload a dataset.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use ferroflow_core::access::{Filter, Need, Param, RouteRule, Rule};
use ferroflow_core::Result;
use serde::Deserialize;
use serde_json::json;

use crate::service::{AutomlService, StartRequest};

/// Every AutoML route as (method, path), for the API spec check.
pub const ROUTES: &[RouteRule] = &[
    (
        "POST",
        "/api/2.0/automl/runs",
        Rule::ExperimentByName(Param::Field("experiment_name"), Need::Update),
    ),
    (
        "GET",
        "/api/2.0/automl/runs",
        Rule::Filtered(Filter::AutomlRuns),
    ),
    (
        "GET",
        "/api/2.0/automl/runs/{id}",
        Rule::AutomlRun(Param::Path("id"), Need::Read),
    ),
    (
        "POST",
        "/api/2.0/automl/runs/{id}/cancel",
        Rule::AutomlRun(Param::Path("id"), Need::Update),
    ),
    ("POST", "/api/2.0/automl/datasets", Rule::Authenticated),
];

type Service = web::Data<AutomlService>;

/// Mounts the AutoML routes (the app must hold a `web::Data<AutomlService>`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/2.0/automl/runs", web::post().to(start))
        .route("/api/2.0/automl/runs", web::get().to(list))
        .route("/api/2.0/automl/runs/{id}", web::get().to(get))
        .route("/api/2.0/automl/runs/{id}/cancel", web::post().to(cancel))
        .service(
            web::resource("/api/2.0/automl/datasets")
                .app_data(web::PayloadConfig::new(
                    crate::service::MAX_DATASET_BYTES as usize,
                ))
                .route(web::post().to(upload)),
        );
}

async fn start(svc: Service, req: HttpRequest, body: Bytes) -> Result<HttpResponse> {
    let request: StartRequest = ferroflow_core::http::parse(&req, &body, &[])?;
    let job = svc.start(request).await?;
    Ok(HttpResponse::Ok().json(json!({ "automl_run": job })))
}

async fn get(svc: Service, id: web::Path<String>) -> Result<HttpResponse> {
    let job = svc.get(&id).await?;
    Ok(HttpResponse::Ok().json(json!({ "automl_run": job })))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    max_results: Option<i64>,
}

/// MLflow's query parsing, so a bad `max_results` is its JSON 400 naming the field.
async fn list(svc: Service, req: HttpRequest) -> Result<HttpResponse> {
    let q: ListQuery = ferroflow_core::http::parse(&req, &[], &[])?;
    let jobs = svc.list(q.max_results.unwrap_or(100)).await?;
    Ok(HttpResponse::Ok().json(json!({ "automl_runs": jobs })))
}

async fn cancel(svc: Service, id: web::Path<String>) -> Result<HttpResponse> {
    let job = svc.cancel(&id).await?;
    Ok(HttpResponse::Ok().json(json!({ "automl_run": job })))
}

/// `POST /api/2.0/automl/datasets?name=train.csv` with the file as the body.
async fn upload(svc: Service, req: HttpRequest, body: Bytes) -> Result<HttpResponse> {
    // The query string by hand: actix's extractor would answer a bad one in plain text.
    let name = form_urlencoded_name(req.query_string());
    let name = ferroflow_core::http::required(name, "name")?;
    let uri = svc.upload_dataset(&name, body).await?;
    Ok(HttpResponse::Ok().json(json!({ "dataset": uri })))
}

/// The first `name` of a query string.
fn form_urlencoded_name(query: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v)
}
