//! MLflow 3 logged models: domain types, the search-filter subset, and the service
//! operations (on [`TrackingService`]). SQL is in `store::logged_models`.

use ferroflow_core::paging::Page;
use ferroflow_core::{now_millis, paging, Error, Result, StorageContext};
use serde::Serialize;

use crate::model::{KeyValue, MetricValue, LIFECYCLE_ACTIVE};
use crate::service::TrackingService;
use crate::store;
use crate::validate;

pub const STATUS_PENDING: &str = "LOGGED_MODEL_PENDING";
pub const STATUS_READY: &str = "LOGGED_MODEL_READY";
pub const STATUS_UPLOAD_FAILED: &str = "LOGGED_MODEL_UPLOAD_FAILED";

/// `LoggedModelInfo` as MLflow's JSON renders it (empty optional fields omitted).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

/// `LoggedModelData`: params and every metric point logged for the model.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<LoggedModelMetric>,
}

/// A metric point of a logged model, as MLflow's `Metric` proto with its links.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedModelMetric {
    pub key: String,
    pub value: MetricValue,
    pub timestamp: i64,
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

/// A value on the right of a search comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum LmValue {
    Text(String),
    Number(i64),
    List(Vec<String>),
}

/// One AND-ed term of a logged-model filter, already checked (column, table and operator
/// come from fixed sets; the key and value are bound).
#[derive(Debug, Clone, PartialEq)]
pub enum LmClause {
    Attribute {
        column: &'static str,
        op: &'static str,
        value: LmValue,
    },
    KeyValue {
        table: &'static str,
        key: String,
        op: &'static str,
        value: LmValue,
    },
    /// Some point of the metric `key` (on one of the search's datasets, if any) compares.
    Metric {
        key: String,
        op: &'static str,
        value: f64,
    },
}

/// An evaluation dataset named in a search (`datasets`) or an `order_by` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetRef {
    pub name: Option<String>,
    pub digest: Option<String>,
}

/// One `order_by` entry of a `logged-models/search` request.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModelOrderBy {
    pub field_name: String,
    pub ascending: bool,
    pub dataset: DatasetRef,
}

/// What a search orders by: a column, or a metric's latest value (nulls last).
#[derive(Debug, Clone, PartialEq)]
pub enum LmOrderKey {
    Column(&'static str),
    Metric { key: String, dataset: DatasetRef },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LmOrder {
    pub key: LmOrderKey,
    pub ascending: bool,
}

/// The fields of a `logged-models` create request.
#[derive(Debug, Default, Clone)]
pub struct CreateLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub params: Vec<KeyValue>,
}

/// The fields of a `logged-models/search` request.
#[derive(Debug, Default, Clone)]
pub struct LoggedModelSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    /// Metric filters (and, without any, the models themselves) are limited to metrics on
    /// one of these datasets.
    pub datasets: Vec<DatasetRef>,
    pub order_by: Vec<LoggedModelOrderBy>,
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
}

const MAX_RESULTS_DEFAULT: i64 = 100;
const MAX_RESULTS_LIMIT: i64 = 10_000;

fn attribute_column(key: &str) -> Option<(&'static str, bool)> {
    Some(match key {
        "name" => ("name", false),
        "model_id" => ("model_id", false),
        "status" => ("status", false),
        "model_type" => ("model_type", false),
        "source_run_id" => ("source_run_id", false),
        "artifact_uri" | "artifact_location" => ("artifact_location", false),
        "creation_timestamp" | "creation_time" | "creation_timestamp_ms" => {
            ("creation_timestamp_ms", true)
        }
        "last_updated_timestamp" | "last_updated_timestamp_ms" => {
            ("last_updated_timestamp_ms", true)
        }
        _ => return None,
    })
}

fn split_and(filter: &str) -> Vec<String> {
    // Splits on AND outside quotes, case-insensitively.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            cur.push(c);
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            quote = Some(c);
            cur.push(c);
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
        let prev_ws = i == 0 || chars[i - 1].is_whitespace();
        if prev_ws && rest.len() >= 4 && rest[..3].eq_ignore_ascii_case("and") {
            let next = rest.chars().nth(3);
            if next.is_some_and(char::is_whitespace) {
                parts.push(std::mem::take(&mut cur));
                i += 3;
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let first = s.chars().next()?;
    if (first == '\'' || first == '"' || first == '`') && s.len() >= 2 && s.ends_with(first) {
        Some(s[1..s.len() - 1].to_string())
    } else {
        None
    }
}

fn parse_list(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let items: Option<Vec<String>> = inner.split(',').map(unquote).collect();
    items.filter(|v| !v.is_empty())
}

/// Parses the common forms of MLflow's logged-model filter: `attr op value`,
/// `params.k op 'v'`, `tags.k op 'v'` joined by AND.
pub fn parse_logged_model_filter(filter: &str) -> Result<Vec<LmClause>> {
    const OPS: &[&str] = &[
        "NOT IN", "ILIKE", "LIKE", "IN", "!=", "<=", ">=", "=", "<", ">",
    ];
    let bad = |msg: String| Error::invalid(format!("Invalid filter '{filter}': {msg}"));
    let mut out = Vec::new();
    for part in split_and(filter) {
        let upper = part.to_ascii_uppercase();
        let found = OPS.iter().filter_map(|op| {
            let pos = if op.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
                upper.find(&format!(" {op} ")).map(|p| p + 1)
            } else {
                upper.find(op)
            };
            pos.map(|p| (p, *op))
        });
        let Some((pos, op)) = found.min_by_key(|(p, op)| (*p, std::cmp::Reverse(op.len()))) else {
            return Err(bad(format!("no comparison in '{part}'")));
        };
        let ident = part[..pos].trim();
        let ident = unquote(ident).unwrap_or_else(|| ident.to_string());
        let rhs = part[pos + op.len()..].trim();
        let text_value = || -> Result<LmValue> {
            if op == "IN" || op == "NOT IN" {
                parse_list(rhs)
                    .map(LmValue::List)
                    .ok_or_else(|| bad(format!("expected a list of quoted strings, got '{rhs}'")))
            } else {
                unquote(rhs)
                    .map(LmValue::Text)
                    .ok_or_else(|| bad(format!("expected a quoted string, got '{rhs}'")))
            }
        };
        let sql_op: &'static str = OPS.iter().find(|o| **o == op).copied().unwrap_or("=");
        let (entity, key) = match ident.split_once('.') {
            Some((e, k)) => (
                e.to_ascii_lowercase(),
                unquote(k).unwrap_or_else(|| k.to_string()),
            ),
            None => ("attributes".to_string(), ident.clone()),
        };
        match entity.as_str() {
            "params" | "param" | "tags" | "tag" => {
                if !["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"].contains(&op) {
                    return Err(bad(format!("invalid comparator '{op}' for {entity}")));
                }
                let table = if entity.starts_with("param") {
                    "logged_model_params"
                } else {
                    "logged_model_tags"
                };
                out.push(LmClause::KeyValue {
                    table,
                    key,
                    op: sql_op,
                    value: text_value()?,
                });
            }
            "attributes" | "attribute" | "attr" => {
                let (column, numeric) = attribute_column(&key)
                    .ok_or_else(|| bad(format!("invalid attribute key '{key}'")))?;
                let value = if numeric {
                    if !["=", "!=", "<", "<=", ">", ">="].contains(&op) {
                        return Err(bad(format!("invalid comparator '{op}' for {key}")));
                    }
                    LmValue::Number(
                        rhs.parse()
                            .map_err(|_| bad(format!("expected an integer, got '{rhs}'")))?,
                    )
                } else {
                    if ["<", "<=", ">", ">="].contains(&op) {
                        return Err(bad(format!("invalid comparator '{op}' for {key}")));
                    }
                    text_value()?
                };
                out.push(LmClause::Attribute {
                    column,
                    op: sql_op,
                    value,
                });
            }
            "metrics" | "metric" => {
                if !["=", "!=", "<", "<=", ">", ">="].contains(&op) {
                    return Err(bad(format!("invalid comparator '{op}' for metrics")));
                }
                let value = rhs
                    .parse::<f64>()
                    .map_err(|_| bad(format!("expected a number, got '{rhs}'")))?;
                out.push(LmClause::Metric {
                    key,
                    op: sql_op,
                    value,
                });
            }
            _ => return Err(bad(format!("invalid entity type '{entity}'"))),
        }
    }
    Ok(out)
}

fn order_key(o: &LoggedModelOrderBy) -> Result<LmOrderKey> {
    let field = o.field_name.as_str();
    if let Some(metric) = field.strip_prefix("metrics.") {
        return Ok(LmOrderKey::Metric {
            key: unquote(metric).unwrap_or_else(|| metric.to_string()),
            dataset: o.dataset.clone(),
        });
    }
    let key = field
        .strip_prefix("attributes.")
        .or_else(|| field.strip_prefix("attribute."))
        .unwrap_or(field);
    if key.contains('.') {
        return Err(Error::invalid(format!(
            "Invalid order by field name: {field}. Only metrics are supported."
        )));
    }
    match attribute_column(key) {
        Some((c, _)) => Ok(LmOrderKey::Column(c)),
        None => Err(Error::invalid(format!(
            "Invalid order by field name: {field}"
        ))),
    }
}

fn model_not_found(model_id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{model_id}' not found."))
}

fn random_name() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("model-{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3])
}

impl TrackingService {
    pub async fn create_logged_model(&self, req: CreateLoggedModel) -> Result<LoggedModel> {
        let exp_id = validate::experiment_id(&req.experiment_id)?;
        for t in &req.tags {
            validate::experiment_tag(&t.key, &t.value)?;
        }
        let name = req
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(random_name);
        if name.contains('/') || name.contains(':') {
            return Err(Error::invalid(format!(
                "Invalid model name '{name}': names may not contain '/' or ':'"
            )));
        }
        let experiment = self.get_experiment(&req.experiment_id).await?;
        if experiment.lifecycle_stage != LIFECYCLE_ACTIVE {
            return Err(Error::invalid(format!(
                "The experiment {} must be in the 'active' state. Current state is {}.",
                req.experiment_id, experiment.lifecycle_stage
            )));
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let location = format!(
            "{}/models/{model_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let mut tx = self
            .db()
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        store::insert_logged_model(
            &mut tx,
            &store::NewLoggedModel {
                model_id: &model_id,
                experiment_id: exp_id,
                name: &name,
                artifact_location: &location,
                status: STATUS_PENDING,
                model_type: req.model_type.as_deref().filter(|s| !s.is_empty()),
                source_run_id: req.source_run_id.as_deref().filter(|s| !s.is_empty()),
                now: now_millis(),
            },
            &req.tags,
            &req.params,
        )
        .await?;
        tx.commit().await.context("failed to commit logged model")?;
        self.get_logged_model(&model_id).await
    }

    /// The experiment a logged model belongs to (`None`: no such model), for access checks.
    pub async fn experiment_of_logged_model(&self, model_id: &str) -> Result<Option<String>> {
        Ok(store::logged_model_by_id(self.db(), model_id)
            .await?
            .map(|m| m.info.experiment_id))
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        store::logged_model_by_id(self.db(), model_id)
            .await?
            .ok_or_else(|| model_not_found(model_id))
    }

    /// Runs `f` in a transaction after checking the model exists and is active.
    async fn with_active_model<F>(&self, model_id: &str, f: F) -> Result<()>
    where
        F: for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<()>> + Send + 'c>,
        >,
    {
        let mut tx = self
            .db()
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        if !store::logged_model_active(&mut tx, model_id).await? {
            return Err(model_not_found(model_id));
        }
        f(&mut tx).await?;
        tx.commit().await.context("failed to commit logged model")
    }

    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        if ![STATUS_READY, STATUS_UPLOAD_FAILED, STATUS_PENDING].contains(&status) {
            return Err(Error::invalid(format!(
                "Invalid value '{status}' for parameter 'status': expected LOGGED_MODEL_READY or \
                 LOGGED_MODEL_UPLOAD_FAILED"
            )));
        }
        let status = status.to_string();
        let id = model_id.to_string();
        self.with_active_model(model_id, move |c| {
            Box::pin(
                async move { store::set_logged_model_status(c, &id, &status, now_millis()).await },
            )
        })
        .await?;
        self.get_logged_model(model_id).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let id = model_id.to_string();
        self.with_active_model(model_id, move |c| {
            Box::pin(async move { store::set_logged_model_deleted(c, &id, now_millis()).await })
        })
        .await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: Vec<KeyValue>) -> Result<()> {
        for t in &tags {
            validate::experiment_tag(&t.key, &t.value)?;
        }
        let id = model_id.to_string();
        self.with_active_model(model_id, move |c| {
            Box::pin(async move { store::upsert_logged_model_tags(c, &id, &tags).await })
        })
        .await
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let id = model_id.to_string();
        let k = key.to_string();
        self.with_active_model(model_id, move |c| {
            Box::pin(async move {
                if store::delete_logged_model_tag(c, &id, &k).await? {
                    Ok(())
                } else {
                    Err(Error::not_found(format!(
                        "No tag with key '{k}' found for logged model '{id}'."
                    )))
                }
            })
        })
        .await
    }

    pub async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: Vec<KeyValue>,
    ) -> Result<()> {
        for p in &params {
            if p.key.is_empty() {
                return Err(Error::invalid("Param key must not be empty"));
            }
        }
        let id = model_id.to_string();
        self.with_active_model(model_id, move |c| {
            Box::pin(async move { store::upsert_logged_model_params(c, &id, &params).await })
        })
        .await
    }

    pub async fn search_logged_models(&self, req: &LoggedModelSearch) -> Result<Page<LoggedModel>> {
        if req.experiment_ids.is_empty() {
            return Err(ferroflow_core::http::missing_value("experiment_ids"));
        }
        let ids = req
            .experiment_ids
            .iter()
            .map(|e| validate::experiment_id(e))
            .collect::<Result<Vec<_>>>()?;
        let limit = req.max_results.unwrap_or(MAX_RESULTS_DEFAULT);
        if !(1..=MAX_RESULTS_LIMIT).contains(&limit) {
            return Err(Error::invalid(format!(
                "Invalid value {limit} for parameter 'max_results': must be between 1 and \
                 {MAX_RESULTS_LIMIT}"
            )));
        }
        if req.datasets.iter().any(|d| d.name.is_none()) {
            return Err(Error::invalid(
                "`dataset_name` in the `datasets` clause must be specified.",
            ));
        }
        let clauses = parse_logged_model_filter(&req.filter)?;
        let mut order = req
            .order_by
            .iter()
            .map(|o| {
                Ok(LmOrder {
                    key: order_key(o)?,
                    ascending: o.ascending,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // MLflow's tie-breakers: newest first, then model id.
        if !order
            .iter()
            .any(|o| o.key == LmOrderKey::Column("creation_timestamp_ms"))
        {
            order.push(LmOrder {
                key: LmOrderKey::Column("creation_timestamp_ms"),
                ascending: false,
            });
        }
        let offset = paging::decode_offset(req.page_token.as_deref())?;
        let search = store::LoggedModelQuery {
            experiment_ids: &ids,
            clauses: &clauses,
            datasets: &req.datasets,
            order: &order,
        };
        let items = store::search_logged_models(self.db(), &search, offset, limit + 1).await?;
        Ok(Page::from_overfetch(items, offset, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_common_forms() {
        let c = parse_logged_model_filter(
            "name = 'm' AND params.alpha = '0.1' and tags.`t k` LIKE 'x%' AND creation_timestamp > 5",
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[3],
            LmClause::Attribute {
                column: "creation_timestamp_ms",
                op: ">",
                value: LmValue::Number(5)
            }
        );
        assert!(parse_logged_model_filter("status IN ('LOGGED_MODEL_READY')").is_ok());
        assert!(parse_logged_model_filter("bogus = 'x'").is_err());
        assert!(parse_logged_model_filter("name > 'x'").is_err());
        assert!(parse_logged_model_filter("").unwrap().is_empty());
    }
}
