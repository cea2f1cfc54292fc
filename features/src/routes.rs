//! HTTP routes of the feature store under `/api/2.0/feature-store`.

use ferroflow_core::access::{Created, Filter, Need, Param, RouteRule, Rule};
use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use ferroflow_core::http::{missing_value, page_response, parse, required};
use ferroflow_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::convert::{self, Format, Incoming};
use crate::delta::At;
use crate::model::Column;
use crate::online::LookupRequest;
use crate::pit::{OneOrMany, OutputFormat, TrainingSetRequest};
use crate::service::{CreateTable, FeatureService, WriteMode};

pub const PREFIX: &str = "/api/2.0/feature-store";

/// Every route, as (method, path); the OpenAPI test checks them against api-spec.
pub const ROUTES: &[RouteRule] = &[
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/create",
        Rule::Creates(Created::FeatureTable),
    ),
    (
        "GET",
        "/api/2.0/feature-store/feature-tables/get",
        Rule::FeatureTable(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/feature-store/feature-tables/search",
        Rule::Filtered(Filter::FeatureTables),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/update",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/set-tag",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/api/2.0/feature-store/feature-tables/delete-tag",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/api/2.0/feature-store/feature-tables/delete",
        Rule::FeatureTable(Param::Field("name"), Need::Delete),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/write",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/read",
        Rule::FeatureTable(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/feature-store/feature-tables/read",
        Rule::FeatureTable(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/api/2.0/feature-store/feature-tables/history",
        Rule::FeatureTable(Param::Field("name"), Need::Read),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/optimize",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/feature-store/feature-tables/vacuum",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/feature-store/training-sets/create",
        Rule::FeatureLookups,
    ),
    (
        "POST",
        "/api/2.0/feature-store/online/publish",
        Rule::FeatureTable(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/api/2.0/feature-store/online/lookup",
        Rule::FeatureLookups,
    ),
    (
        "GET",
        "/api/2.0/feature-store/lineage/model-version",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
];

/// Largest request body: feature data arrives as whole Parquet or Arrow files.
const MAX_BODY: usize = ferroflow_core::http::MAX_DATA_BODY;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(PREFIX)
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/feature-tables/create", web::post().to(create))
            .route("/feature-tables/get", web::get().to(get))
            .route("/feature-tables/search", web::get().to(search))
            .route("/feature-tables/update", web::post().to(update))
            .route("/feature-tables/set-tag", web::post().to(set_tag))
            .route("/feature-tables/delete-tag", web::delete().to(delete_tag))
            .route("/feature-tables/delete", web::delete().to(delete))
            .route("/feature-tables/write", web::post().to(write))
            .route("/feature-tables/read", web::post().to(read))
            .route("/feature-tables/read", web::get().to(read))
            .route("/feature-tables/history", web::get().to(history))
            .route("/feature-tables/optimize", web::post().to(optimize))
            .route("/feature-tables/vacuum", web::post().to(vacuum))
            .route("/training-sets/create", web::post().to(training_set))
            .route("/online/publish", web::post().to(publish))
            .route("/online/lookup", web::post().to(lookup))
            .route(
                "/lineage/model-version",
                web::get().to(model_version_lineage),
            ),
    );
}

type Svc = web::Data<FeatureService>;

fn content_format(req: &HttpRequest) -> Result<Format> {
    Format::of_content_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The parameters of a call whose body may be data: from the JSON body, or from the query
/// string when the body is Arrow or Parquet.
fn params<T: DeserializeOwned>(req: &HttpRequest, body: &Bytes) -> Result<(T, Option<Incoming>)> {
    match content_format(req)? {
        Format::Json => Ok((parse(req, body, &[])?, None)),
        format => {
            let p: T = serde_urlencoded::from_str(req.query_string())
                .map_err(|e| Error::invalid(format!("Invalid query parameters: {e}")))?;
            Ok((p, Some(convert::decode_body(format, body.clone())?)))
        }
    }
}

/// The caller's name: the `user` field, else the HTTP Basic user, else "unknown".
fn user_of(req: &HttpRequest, given: Option<String>) -> String {
    if let Some(u) = given.filter(|u| !u.is_empty()) {
        return u;
    }
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| s.split(':').next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn split_keys(k: Option<OneOrMany>) -> Vec<String> {
    match k {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(OneOrMany::Many(v)) => v,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Tags {
    Map(BTreeMap<String, String>),
    List(Vec<TagEntry>),
}

#[derive(Deserialize)]
struct TagEntry {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    primary_keys: Option<OneOrMany>,
    timestamp_key: Option<String>,
    description: Option<String>,
    tags: Option<Tags>,
    schema: Option<Vec<Column>>,
    location: Option<String>,
    records: Option<Vec<Value>>,
    user: Option<String>,
}

async fn create(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let (p, data): (CreateBody, _) = params(&req, &body)?;
    let tags = match p.tags {
        None => BTreeMap::new(),
        Some(Tags::Map(m)) => m,
        Some(Tags::List(l)) => l.into_iter().map(|t| (t.key, t.value)).collect(),
    };
    if data.is_some() && p.records.is_some() {
        return Err(Error::invalid(
            "Give rows as 'records' or as the body, not both",
        ));
    }
    let table = svc
        .create(CreateTable {
            name: required(p.name, "name")?,
            primary_keys: split_keys(p.primary_keys),
            timestamp_key: p.timestamp_key,
            description: p.description.unwrap_or_default(),
            tags,
            schema: p.schema,
            location: p.location,
            data,
            records: p.records,
            user: user_of(&req, p.user),
        })
        .await?;
    let described = svc.describe(&table.name).await?;
    Ok(HttpResponse::Ok().json(json!({ "feature_table": described })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOnly {
    name: Option<String>,
}

async fn get(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: NameOnly = parse(&req, &body, &[])?;
    let described = svc.describe(&required(p.name, "name")?).await?;
    Ok(HttpResponse::Ok().json(json!({ "feature_table": described })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    filter_string: Option<String>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn search(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: SearchBody = parse(&req, &body, &[])?;
    let filter = p.filter_string.or(p.filter);
    let page = svc
        .search(filter.as_deref(), p.max_results, p.page_token.as_deref())
        .await?;
    page_response("feature_tables", page)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    user: Option<String>,
}

async fn update(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: UpdateBody = parse(&req, &body, &[])?;
    let name = required(p.name, "name")?;
    let description = required(p.description, "description")?;
    let user = user_of(&req, p.user);
    svc.update_description(&name, &description, &user).await?;
    Ok(HttpResponse::Ok().json(json!({ "feature_table": svc.describe(&name).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn set_tag(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: TagBody = parse(&req, &body, &[])?;
    svc.set_tag(
        &required(p.name, "name")?,
        &required(p.key, "key")?,
        &required(p.value, "value")?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

async fn delete_tag(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: TagBody = parse(&req, &body, &[])?;
    svc.delete_tag(&required(p.name, "name")?, &required(p.key, "key")?)
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

async fn delete(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: NameOnly = parse(&req, &body, &[])?;
    svc.delete(&required(p.name, "name")?).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    name: Option<String>,
    mode: Option<String>,
    records: Option<Vec<Value>>,
    user: Option<String>,
}

async fn write(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let (p, data): (WriteBody, _) = params(&req, &body)?;
    let name = required(p.name, "name")?;
    let mode = WriteMode::parse(p.mode.as_deref())?;
    let data = match (data, p.records) {
        (Some(d), None) => d,
        (None, Some(records)) => svc.decode_records(&name, &records).await?,
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "Give rows as 'records' or as the body, not both",
            ))
        }
        (None, None) => return Err(missing_value("records")),
    };
    let user = user_of(&req, p.user);
    let out = svc.write(&name, mode, data, &user).await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    as_of_version: Option<i64>,
    as_of_timestamp: Option<Value>,
    columns: Option<OneOrMany>,
    /// A list of key objects (a JSON text of one in a query string).
    keys: Option<Value>,
    format: Option<String>,
}

/// A point in time: RFC 3339 text, or milliseconds since the epoch.
/// `as_of_timestamp`: epoch milliseconds (a number, or digits in a query string), or a time
/// string read as a `timestamp` column's values are (RFC 3339, no zone meaning UTC). Any
/// number of milliseconds is a time here: one before the table's first commit is refused
/// with that reason when the table is opened.
fn parse_time(v: &Value) -> Result<chrono::DateTime<chrono::Utc>> {
    let bad = |why: String| Error::invalid(format!("Invalid as_of_timestamp: {why}"));
    let millis = match v {
        Value::Number(n) => Some(
            n.as_i64()
                .ok_or_else(|| bad(format!("{n} is not an integer of epoch milliseconds")))?,
        ),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match millis {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| bad(format!("{ms} is out of range"))),
        None => {
            let micros = crate::records::timestamp_micros(v).map_err(bad)?;
            chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| bad(format!("{v} is out of range")))
        }
    }
}

async fn read(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: ReadBody = parse(&req, &body, &[])?;
    let keys: Vec<Value> = match p.keys {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(Value::String(text)) => match serde_json::from_str(&text) {
            Ok(Value::Array(a)) => a,
            _ => return Err(Error::invalid("keys must be a JSON list of key objects")),
        },
        Some(_) => return Err(Error::invalid("keys must be a list of key objects")),
    };
    let name = required(p.name, "name")?;
    let at = match (p.as_of_version, &p.as_of_timestamp) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "Give as_of_version or as_of_timestamp, not both",
            ))
        }
        (Some(v), None) => At::Version(v),
        (None, Some(t)) => At::Time(parse_time(t)?),
        (None, None) => At::Latest,
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::for_answer(p.format.as_deref(), accept)?;
    let columns = split_keys(p.columns);
    let result = svc.read(&name, at, &columns, &keys).await?;
    let version = result.version.to_string();
    let body = match format {
        Format::Json => {
            let mut out = Vec::with_capacity(64);
            out.extend_from_slice(
                format!("{{\"version\":{},\"schema\":", result.version).as_bytes(),
            );
            out.extend_from_slice(convert::schema_json(&result.schema).to_string().as_bytes());
            out.extend_from_slice(b",\"records\":");
            out.extend_from_slice(&convert::records_json(&result.batches)?);
            out.push(b'}');
            out
        }
        Format::Arrow => convert::arrow_ipc(&result.schema, &result.batches)?,
        Format::Parquet => convert::parquet(&result.schema, &result.batches)?,
    };
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(("X-Delta-Version", version))
        .body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    limit: Option<i64>,
}

async fn history(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: HistoryBody = parse(&req, &body, &[])?;
    if let Some(l) = p.limit.filter(|l| *l < 1) {
        return Err(Error::invalid(format!("limit must be positive, got {l}")));
    }
    let h = svc
        .history(&required(p.name, "name")?, p.limit.map(|l| l as usize))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "history": h })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizeBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    target_size: Option<i64>,
}

async fn optimize(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: OptimizeBody = parse(&req, &body, &[])?;
    if let Some(t) = p.target_size.filter(|t| *t < 1) {
        return Err(Error::invalid(format!(
            "target_size must be positive, got {t}"
        )));
    }
    let out = svc
        .optimize(&required(p.name, "name")?, p.target_size.map(|t| t as u64))
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VacuumBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "ferroflow_core::http::int64")]
    retention_hours: Option<i64>,
    dry_run: Option<bool>,
    enforce_retention_duration: Option<bool>,
}

async fn vacuum(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: VacuumBody = parse(&req, &body, &[])?;
    if let Some(h) = p.retention_hours.filter(|h| *h < 0) {
        return Err(Error::invalid(format!(
            "retention_hours must not be negative, got {h}"
        )));
    }
    let out = svc
        .vacuum(
            &required(p.name, "name")?,
            p.retention_hours.map(|h| h as u64),
            p.dry_run.unwrap_or(false),
            p.enforce_retention_duration.unwrap_or(true),
        )
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn training_set(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: TrainingSetRequest = parse(&req, &body, &[])?;
    let plan = svc.plan_training_set(p).await?;
    match plan.format {
        OutputFormat::Arrow => {
            // Streamed: the join runs on while the client reads.
            let (tx, rx) = mpsc::channel::<std::result::Result<Bytes, Error>>(4);
            let svc = svc.into_inner();
            actix_web::rt::spawn(async move {
                let err_tx = tx.clone();
                if let Err(e) = svc.run_training_set(plan, Some(tx)).await {
                    tracing::warn!("training set stream failed: {}", e.message);
                    let _ = err_tx.send(Err(e)).await;
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(HttpResponse::Ok()
                .content_type(convert::ARROW_STREAM)
                .streaming(stream))
        }
        OutputFormat::Json => {
            let set = svc.run_training_set(plan, None).await?;
            let mut out = Vec::new();
            out.extend_from_slice(b"{\"training_set\":");
            out.extend_from_slice(set.description.to_string().as_bytes());
            out.extend_from_slice(b",\"records\":");
            out.extend_from_slice(&convert::records_json(&set.rows)?);
            out.push(b'}');
            Ok(HttpResponse::Ok().content_type(convert::JSON).body(out))
        }
        _ => {
            let set = svc.run_training_set(plan, None).await?;
            Ok(HttpResponse::Ok().json(json!({ "training_set": set.description })))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    name: Option<String>,
    mode: Option<String>,
}

async fn publish(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: PublishBody = parse(&req, &body, &[])?;
    let out = svc
        .publish(&required(p.name, "name")?, p.mode.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    #[serde(default)]
    lookups: Vec<LookupRequest>,
}

async fn lookup(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: LookupBody = parse(&req, &body, &[])?;
    Ok(HttpResponse::Ok().json(svc.lookup(&p.lookups).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelVersionBody {
    name: Option<String>,
    version: Option<String>,
}

async fn model_version_lineage(req: HttpRequest, body: Bytes, svc: Svc) -> Result<HttpResponse> {
    let p: ModelVersionBody = parse(&req, &body, &[])?;
    let name = required(p.name, "name")?;
    let raw = required(p.version, "version")?;
    let version: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::invalid(format!("Version must be an integer, got '{raw}'")))?;
    Ok(HttpResponse::Ok().json(svc.model_version_lineage(&name, version).await?))
}
