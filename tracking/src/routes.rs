//! actix handlers for the tracking half of MLflow's REST API: parse → call service → serialize.
//! Mounted under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.

use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::access::{Created, Filter, Need, Param, RouteRule, Rule};
use ferroflow_core::http::{int64, page_response, parse, required};
use ferroflow_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::logged_models::{CreateLoggedModel, DatasetRef, LoggedModelOrderBy, LoggedModelSearch};
use crate::model::*;
use crate::service::{CreateRun, ExperimentSearch, RunSearch, TrackingService};

/// Every tracking route as (method, path under the API prefix); the OpenAPI test checks the
/// spec against this list.
pub const ROUTES: &[RouteRule] = &[
    (
        "POST",
        "/experiments/create",
        Rule::Creates(Created::Experiment),
    ),
    (
        "GET",
        "/experiments/get",
        Rule::Experiment(Param::Field("experiment_id"), Need::Read),
    ),
    (
        "GET",
        "/experiments/get-by-name",
        Rule::ExperimentByName(Param::Field("experiment_name"), Need::Read),
    ),
    (
        "POST",
        "/experiments/search-datasets",
        Rule::Experiments(Param::Field("experiment_ids"), Need::Read),
    ),
    (
        "POST",
        "/experiments/search",
        Rule::Filtered(Filter::Experiments),
    ),
    (
        "GET",
        "/experiments/search",
        Rule::Filtered(Filter::Experiments),
    ),
    (
        "POST",
        "/experiments/update",
        Rule::Experiment(Param::Field("experiment_id"), Need::Update),
    ),
    (
        "POST",
        "/experiments/delete",
        Rule::Experiment(Param::Field("experiment_id"), Need::Delete),
    ),
    (
        "POST",
        "/experiments/restore",
        Rule::Experiment(Param::Field("experiment_id"), Need::Delete),
    ),
    (
        "POST",
        "/experiments/set-experiment-tag",
        Rule::Experiment(Param::Field("experiment_id"), Need::Update),
    ),
    (
        "POST",
        "/experiments/delete-experiment-tag",
        Rule::Experiment(Param::Field("experiment_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/create",
        Rule::CreateIn(Param::Field("experiment_id"), "run"),
    ),
    (
        "GET",
        "/runs/get",
        Rule::Run(Param::Field("run_id"), Need::Read),
    ),
    (
        "POST",
        "/runs/update",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/delete",
        Rule::Run(Param::Field("run_id"), Need::Delete),
    ),
    (
        "POST",
        "/runs/restore",
        Rule::Run(Param::Field("run_id"), Need::Delete),
    ),
    ("POST", "/runs/search", Rule::Filtered(Filter::RunsSearch)),
    (
        "POST",
        "/runs/log-metric",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/log-parameter",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/set-tag",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/delete-tag",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/log-batch",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/log-inputs",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "POST",
        "/runs/outputs",
        Rule::Run(Param::Field("run_id"), Need::Update),
    ),
    (
        "GET",
        "/metrics/get-history",
        Rule::Run(Param::Field("run_id"), Need::Read),
    ),
    (
        "GET",
        "/metrics/get-history-bulk",
        Rule::Runs(Param::Field("run_id"), Need::Read),
    ),
    (
        "GET",
        "/metrics/get-history-bulk-interval",
        Rule::Runs(Param::Field("run_ids"), Need::Read),
    ),
    (
        "POST",
        "/logged-models",
        Rule::CreateIn(Param::Field("experiment_id"), "logged_model"),
    ),
    (
        "POST",
        "/logged-models/search",
        Rule::Filtered(Filter::LoggedModels),
    ),
    (
        "GET",
        "/logged-models/{model_id}",
        Rule::LoggedModel(Param::Path("model_id"), Need::Read),
    ),
    (
        "PATCH",
        "/logged-models/{model_id}",
        Rule::LoggedModel(Param::Path("model_id"), Need::Update),
    ),
    (
        "DELETE",
        "/logged-models/{model_id}",
        Rule::LoggedModel(Param::Path("model_id"), Need::Delete),
    ),
    (
        "PATCH",
        "/logged-models/{model_id}/tags",
        Rule::LoggedModel(Param::Path("model_id"), Need::Update),
    ),
    (
        "DELETE",
        "/logged-models/{model_id}/tags/{tag_key}",
        Rule::LoggedModel(Param::Path("model_id"), Need::Delete),
    ),
    (
        "POST",
        "/logged-models/{model_id}/params",
        Rule::LoggedModel(Param::Path("model_id"), Need::Update),
    ),
];

/// Registers the tracking routes on a scope (called once per API prefix).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/experiments/create", web::post().to(create_experiment))
        .route("/experiments/get", web::get().to(get_experiment))
        .route(
            "/experiments/get-by-name",
            web::get().to(get_experiment_by_name),
        )
        .route(
            "/experiments/search-datasets",
            web::post().to(search_datasets),
        )
        .route("/experiments/search", web::post().to(search_experiments))
        .route("/experiments/search", web::get().to(search_experiments))
        .route("/experiments/update", web::post().to(update_experiment))
        .route("/experiments/delete", web::post().to(delete_experiment))
        .route("/experiments/restore", web::post().to(restore_experiment))
        .route(
            "/experiments/set-experiment-tag",
            web::post().to(set_experiment_tag),
        )
        .route(
            "/experiments/delete-experiment-tag",
            web::post().to(delete_experiment_tag),
        )
        .route("/runs/create", web::post().to(create_run))
        .route("/runs/get", web::get().to(get_run))
        .route("/runs/update", web::post().to(update_run))
        .route("/runs/delete", web::post().to(delete_run))
        .route("/runs/restore", web::post().to(restore_run))
        .route("/runs/search", web::post().to(search_runs))
        .route("/runs/log-metric", web::post().to(log_metric))
        .route("/runs/log-parameter", web::post().to(log_param))
        .route("/runs/set-tag", web::post().to(set_tag))
        .route("/runs/delete-tag", web::post().to(delete_tag))
        .route("/runs/log-batch", web::post().to(log_batch))
        .route("/runs/log-inputs", web::post().to(log_inputs))
        .route("/runs/outputs", web::post().to(log_outputs))
        .route("/metrics/get-history", web::get().to(get_metric_history))
        .route(
            "/metrics/get-history-bulk",
            web::get().to(get_metric_history_bulk),
        )
        .route(
            "/metrics/get-history-bulk-interval",
            web::get().to(get_metric_history_bulk_interval),
        )
        .route("/logged-models", web::post().to(create_logged_model))
        .route(
            "/logged-models/search",
            web::post().to(search_logged_models),
        )
        .route("/logged-models/{model_id}", web::get().to(get_logged_model))
        .route(
            "/logged-models/{model_id}",
            web::patch().to(finalize_logged_model),
        )
        .route(
            "/logged-models/{model_id}",
            web::delete().to(delete_logged_model),
        )
        .route(
            "/logged-models/{model_id}/tags",
            web::patch().to(set_logged_model_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            web::delete().to(delete_logged_model_tag),
        )
        .route(
            "/logged-models/{model_id}/params",
            web::post().to(log_logged_model_params),
        );
}

type Svc = web::Data<TrackingService>;

// ----- request parsing: shared helpers in ferroflow_core::http -----

/// `run_id`, or the deprecated `run_uuid` older clients send.
fn run_id_of(run_id: Option<String>, run_uuid: Option<String>) -> Result<String> {
    required(
        run_id
            .filter(|s| !s.is_empty())
            .or(run_uuid)
            .filter(|s| !s.is_empty()),
        "run_id",
    )
}

fn view_type(v: Option<String>, field: &str) -> Result<ViewType> {
    match v {
        None => Ok(ViewType::ActiveOnly),
        Some(s) => ViewType::parse(&s).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid value '{s}' for parameter '{field}': expected ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))
        }),
    }
}

fn ok(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

fn empty() -> HttpResponse {
    HttpResponse::Ok().json(json!({}))
}

// ----- experiments -----

#[derive(Deserialize)]
struct CreateExperimentRequest {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
}

async fn create_experiment(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: CreateExperimentRequest = parse(&req, &body, &[])?;
    let name = required(r.name, "name")?;
    let tags = key_values(r.tags, "tags")?;
    let id = svc
        .create_experiment(&name, r.artifact_location.as_deref(), &tags)
        .await?;
    Ok(ok(json!({ "experiment_id": id })))
}

#[derive(Deserialize)]
struct ExperimentIdRequest {
    experiment_id: Option<String>,
}

async fn get_experiment(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: ExperimentIdRequest = parse(&req, &body, &[])?;
    let exp = svc
        .get_experiment(&required(r.experiment_id, "experiment_id")?)
        .await?;
    Ok(ok(json!({ "experiment": exp })))
}

#[derive(Deserialize)]
struct ExperimentByNameRequest {
    experiment_name: Option<String>,
}

async fn get_experiment_by_name(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: ExperimentByNameRequest = parse(&req, &body, &[])?;
    let exp = svc
        .get_experiment_by_name(&required(r.experiment_name, "experiment_name")?)
        .await?;
    Ok(ok(json!({ "experiment": exp })))
}

#[derive(Deserialize)]
struct SearchExperimentsRequest {
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<String>,
}

async fn search_experiments(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: SearchExperimentsRequest = parse(&req, &body, &["order_by"])?;
    let search = ExperimentSearch {
        filter: r.filter.unwrap_or_default(),
        view_type: view_type(r.view_type, "view_type")?,
        max_results: r.max_results,
        order_by: r.order_by,
        page_token: r.page_token,
    };
    page_response("experiments", svc.search_experiments(&search).await?)
}

#[derive(Deserialize)]
struct UpdateExperimentRequest {
    experiment_id: Option<String>,
    new_name: Option<String>,
}

async fn update_experiment(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: UpdateExperimentRequest = parse(&req, &body, &[])?;
    let id = required(r.experiment_id, "experiment_id")?;
    svc.rename_experiment(&id, &required(r.new_name, "new_name")?)
        .await?;
    Ok(empty())
}

async fn delete_experiment(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: ExperimentIdRequest = parse(&req, &body, &[])?;
    svc.set_experiment_deleted(&required(r.experiment_id, "experiment_id")?, true)
        .await?;
    Ok(empty())
}

async fn restore_experiment(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: ExperimentIdRequest = parse(&req, &body, &[])?;
    svc.set_experiment_deleted(&required(r.experiment_id, "experiment_id")?, false)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct ExperimentTagRequest {
    experiment_id: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn set_experiment_tag(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: ExperimentTagRequest = parse(&req, &body, &[])?;
    let id = required(r.experiment_id, "experiment_id")?;
    let key = required(r.key, "key")?;
    let value = required(r.value, "value")?;
    svc.set_experiment_tag(&id, &key, &value).await?;
    Ok(empty())
}

async fn delete_experiment_tag(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: ExperimentTagRequest = parse(&req, &body, &[])?;
    let id = required(r.experiment_id, "experiment_id")?;
    svc.delete_experiment_tag(&id, &required(r.key, "key")?)
        .await?;
    Ok(empty())
}

// ----- runs -----

#[derive(Deserialize)]
struct CreateRunRequest {
    experiment_id: Option<String>,
    user_id: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
    run_name: Option<String>,
}

async fn create_run(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: CreateRunRequest = parse(&req, &body, &[])?;
    let run = svc
        .create_run(CreateRun {
            experiment_id: r.experiment_id,
            user_id: r.user_id,
            start_time: r.start_time,
            run_name: r.run_name,
            tags: key_values(r.tags, "tags")?,
        })
        .await?;
    Ok(ok(json!({ "run": run })))
}

#[derive(Deserialize)]
struct RunIdRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

async fn get_run(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: RunIdRequest = parse(&req, &body, &[])?;
    let run = svc.get_run(&run_id_of(r.run_id, r.run_uuid)?).await?;
    Ok(ok(json!({ "run": run })))
}

#[derive(Deserialize)]
struct UpdateRunRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

async fn update_run(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: UpdateRunRequest = parse(&req, &body, &[])?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let info = svc
        .update_run(&id, r.status.as_deref(), r.end_time, r.run_name.as_deref())
        .await?;
    Ok(ok(json!({ "run_info": info })))
}

async fn delete_run(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: RunIdRequest = parse(&req, &body, &[])?;
    svc.set_run_deleted(&run_id_of(r.run_id, r.run_uuid)?, true)
        .await?;
    Ok(empty())
}

async fn restore_run(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: RunIdRequest = parse(&req, &body, &[])?;
    svc.set_run_deleted(&run_id_of(r.run_id, r.run_uuid)?, false)
        .await?;
    Ok(empty())
}

/// A metric as log-metric and log-batch send it.
#[derive(Deserialize)]
struct MetricRequest {
    key: Option<String>,
    value: Option<MetricValue>,
    #[serde(default, deserialize_with = "int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    step: Option<i64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl MetricRequest {
    fn into_metric(self, path: &str) -> Result<NewMetric> {
        let join = |f: &str| {
            if path.is_empty() {
                f.to_string()
            } else {
                format!("{path}.{f}")
            }
        };
        Ok(NewMetric {
            key: required(self.key, &join("key"))?,
            value: required(self.value, &join("value"))?.0,
            timestamp: required(self.timestamp, &join("timestamp"))?,
            step: self.step.unwrap_or(0),
            // Empty strings are proto3's "unset", as MLflow reads them (`or None`).
            model: self.model_id.filter(|m| !m.is_empty()).map(|model_id| {
                Box::new(MetricModelLink {
                    model_id,
                    dataset_name: self.dataset_name.filter(|d| !d.is_empty()),
                    dataset_digest: self.dataset_digest.filter(|d| !d.is_empty()),
                })
            }),
        })
    }
}

#[derive(Deserialize)]
struct LogMetricRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    value: Option<MetricValue>,
    #[serde(default, deserialize_with = "int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    step: Option<i64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

async fn log_metric(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: LogMetricRequest = parse(&req, &body, &[])?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let metric = MetricRequest {
        key: r.key,
        value: r.value,
        timestamp: r.timestamp,
        step: r.step,
        model_id: r.model_id,
        dataset_name: r.dataset_name,
        dataset_digest: r.dataset_digest,
    }
    .into_metric("")?;
    svc.log_batch(&id, vec![metric], vec![], vec![]).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct KeyValueRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

impl KeyValueRequest {
    fn into_parts(self) -> Result<(String, KeyValue)> {
        let id = run_id_of(self.run_id, self.run_uuid)?;
        let key = required(self.key, "key")?;
        let value = required(self.value, "value")?;
        Ok((id, KeyValue { key, value }))
    }
}

async fn log_param(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let (id, kv) = parse::<KeyValueRequest>(&req, &body, &[])?.into_parts()?;
    svc.log_batch(&id, vec![], vec![kv], vec![]).await?;
    Ok(empty())
}

async fn set_tag(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let (id, kv) = parse::<KeyValueRequest>(&req, &body, &[])?.into_parts()?;
    // Checked here first so errors name `key`, as MLflow's set-tag does (not `tags[0].key`).
    crate::validate::tag(&kv.key, &kv.value, "")?;
    svc.log_batch(&id, vec![], vec![], vec![kv]).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct DeleteTagRequest {
    run_id: Option<String>,
    key: Option<String>,
}

async fn delete_tag(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: DeleteTagRequest = parse(&req, &body, &[])?;
    svc.delete_tag(&required(r.run_id, "run_id")?, &required(r.key, "key")?)
        .await?;
    Ok(empty())
}

/// A key/value entry of a list; required-ness is checked with the entry's path.
#[derive(Deserialize)]
pub struct KeyValueEntry {
    pub key: Option<String>,
    pub value: Option<String>,
}

pub fn key_values(entries: Vec<KeyValueEntry>, field: &str) -> Result<Vec<KeyValue>> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(KeyValue {
                key: required(e.key, &format!("{field}[{i}].key"))?,
                value: required(e.value, &format!("{field}[{i}].value"))?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct LogBatchRequest {
    run_id: Option<String>,
    #[serde(default)]
    metrics: Vec<MetricRequest>,
    #[serde(default)]
    params: Vec<KeyValueEntry>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
}

async fn log_batch(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: LogBatchRequest = parse(&req, &body, &[])?;
    let id = required(r.run_id, "run_id")?;
    let metrics = r
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.into_metric(&format!("metrics[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let params = key_values(r.params, "params")?;
    let tags = key_values(r.tags, "tags")?;
    svc.log_batch(&id, metrics, params, tags).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LogInputsRequest {
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
    #[serde(default)]
    models: Vec<ModelIo>,
}

async fn log_inputs(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: LogInputsRequest = parse(&req, &body, &[])?;
    svc.log_inputs(&required(r.run_id, "run_id")?, &r.datasets, &r.models)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LogOutputsRequest {
    run_id: Option<String>,
    #[serde(default)]
    models: Vec<ModelIo>,
}

async fn log_outputs(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: LogOutputsRequest = parse(&req, &body, &[])?;
    svc.log_outputs(&required(r.run_id, "run_id")?, &r.models)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct SearchRunsRequest {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search_runs(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: SearchRunsRequest = parse(&req, &body, &["experiment_ids", "order_by"])?;
    let search = RunSearch {
        experiment_ids: r.experiment_ids,
        filter: r.filter.unwrap_or_default(),
        view_type: view_type(r.run_view_type, "run_view_type")?,
        max_results: r.max_results,
        order_by: r.order_by,
        page_token: r.page_token,
    };
    page_response("runs", svc.search_runs(&search).await?)
}

#[derive(Deserialize)]
struct MetricHistoryRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    page_token: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
}

async fn get_metric_history(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: MetricHistoryRequest = parse(&req, &body, &[])?;
    let id = run_id_of(r.run_id, r.run_uuid)?;
    let key = required(r.metric_key, "metric_key")?;
    let page = svc
        .metric_history(
            &id,
            &key,
            r.max_results,
            r.page_token.as_deref().filter(|t| !t.is_empty()),
        )
        .await?;
    page_response("metrics", page)
}

#[derive(Deserialize)]
struct SearchDatasetsRequest {
    #[serde(default)]
    experiment_ids: Vec<String>,
}

/// The UI's `experiments/search-datasets`: `{"dataset_summaries": […]}` (omitted when none).
async fn search_datasets(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: SearchDatasetsRequest = parse(&req, &body, &["experiment_ids"])?;
    let summaries = svc.search_datasets(&r.experiment_ids).await?;
    let mut out = json!({});
    if !summaries.is_empty() {
        out["dataset_summaries"] = json!(summaries);
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
struct BulkRequest {
    #[serde(default)]
    run_id: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
}

/// The UI's `metrics/get-history-bulk` (`?run_id=…&run_id=…&metric_key=…`).
async fn get_metric_history_bulk(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: BulkRequest = parse(&req, &body, &["run_id"])?;
    let metrics = svc
        .metric_history_bulk(&r.run_id, r.metric_key.as_deref(), r.max_results)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "metrics": metrics })))
}

#[derive(Deserialize)]
struct BulkIntervalRequest {
    #[serde(default)]
    run_ids: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
}

async fn get_metric_history_bulk_interval(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: BulkIntervalRequest = parse(&req, &body, &["run_ids"])?;
    // MLflow's order: run_ids, then metric_key, before any run is looked up.
    crate::validate::bulk_interval_run_ids(&r.run_ids)?;
    let key = required(r.metric_key, "metric_key")?;
    crate::validate::bulk_interval_max_results(r.max_results)?;
    let steps = match (r.start_step, r.end_step) {
        (Some(s), Some(e)) => Some((s, e)),
        (None, None) => None,
        _ => {
            return Err(Error::invalid(
                "If either start step or end step are specified, both must be specified.",
            ))
        }
    };
    let metrics = svc
        .metric_history_bulk_interval(&r.run_ids, &key, steps, r.max_results)
        .await?;
    page_response(
        "metrics",
        Page {
            items: metrics,
            next_page_token: None,
        },
    )
}

// ----- logged models (MLflow 3) -----

#[derive(Deserialize)]
struct CreateLoggedModelRequest {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValueEntry>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
}

async fn create_logged_model(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: CreateLoggedModelRequest = parse(&req, &body, &[])?;
    let model = svc
        .create_logged_model(CreateLoggedModel {
            experiment_id: required(r.experiment_id, "experiment_id")?,
            name: r.name,
            model_type: r.model_type,
            source_run_id: r.source_run_id,
            tags: key_values(r.tags, "tags")?,
            params: key_values(r.params, "params")?,
        })
        .await?;
    Ok(ok(json!({ "model": model })))
}

async fn get_logged_model(svc: Svc, path: web::Path<String>) -> Result<HttpResponse> {
    let model = svc.get_logged_model(&path.into_inner()).await?;
    Ok(ok(json!({ "model": model })))
}

#[derive(Deserialize)]
struct FinalizeLoggedModelRequest {
    status: Option<String>,
}

async fn finalize_logged_model(
    svc: Svc,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: FinalizeLoggedModelRequest = parse(&req, &body, &[])?;
    let model = svc
        .finalize_logged_model(&path.into_inner(), &required(r.status, "status")?)
        .await?;
    Ok(ok(json!({ "model": model })))
}

async fn delete_logged_model(svc: Svc, path: web::Path<String>) -> Result<HttpResponse> {
    svc.delete_logged_model(&path.into_inner()).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LoggedModelTagsRequest {
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
}

async fn set_logged_model_tags(
    svc: Svc,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: LoggedModelTagsRequest = parse(&req, &body, &[])?;
    svc.set_logged_model_tags(&path.into_inner(), key_values(r.tags, "tags")?)
        .await?;
    Ok(empty())
}

async fn delete_logged_model_tag(
    svc: Svc,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (model_id, key) = path.into_inner();
    svc.delete_logged_model_tag(&model_id, &key).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LoggedModelParamsRequest {
    #[serde(default)]
    params: Vec<KeyValueEntry>,
}

async fn log_logged_model_params(
    svc: Svc,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: LoggedModelParamsRequest = parse(&req, &body, &[])?;
    svc.log_logged_model_params(&path.into_inner(), key_values(r.params, "params")?)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct OrderByEntry {
    field_name: Option<String>,
    ascending: Option<bool>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct DatasetFilterEntry {
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct SearchLoggedModelsRequest {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetFilterEntry>,
    #[serde(default)]
    order_by: Vec<OrderByEntry>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn search_logged_models(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: SearchLoggedModelsRequest = parse(&req, &body, &["experiment_ids"])?;
    let order_by = r
        .order_by
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            Ok(LoggedModelOrderBy {
                field_name: required(o.field_name, &format!("order_by[{i}].field_name"))?,
                ascending: o.ascending.unwrap_or(true),
                dataset: DatasetRef {
                    name: o.dataset_name.filter(|d| !d.is_empty()),
                    digest: o.dataset_digest.filter(|d| !d.is_empty()),
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let datasets = r
        .datasets
        .into_iter()
        .map(|d| DatasetRef {
            name: d.dataset_name.filter(|n| !n.is_empty()),
            digest: d.dataset_digest.filter(|n| !n.is_empty()),
        })
        .collect();
    let search = LoggedModelSearch {
        experiment_ids: r.experiment_ids,
        filter: r.filter.unwrap_or_default(),
        datasets,
        order_by,
        max_results: r.max_results,
        page_token: r.page_token,
    };
    page_response("models", svc.search_logged_models(&search).await?)
}
