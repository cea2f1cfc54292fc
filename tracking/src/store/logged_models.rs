//! MLflow 3 logged models, their tags and params.

use std::collections::HashMap;

use ferroflow_core::{Backend, Db, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Bind, SqlBuilder};
use crate::logged_models::{
    DatasetRef, LmClause, LmOrder, LmOrderKey, LmValue, LoggedModel, LoggedModelData,
    LoggedModelInfo, LoggedModelMetric,
};
use crate::model::{KeyValue, MetricValue, NewMetric, LIFECYCLE_ACTIVE, LIFECYCLE_DELETED};

const COLUMNS: &str = "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
     last_updated_timestamp_ms, status, model_type, source_run_id, status_message";

fn info_from_row(row: &AnyRow) -> Result<LoggedModelInfo> {
    let read = || -> std::result::Result<LoggedModelInfo, sqlx::Error> {
        Ok(LoggedModelInfo {
            model_id: row.try_get("model_id")?,
            experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
            name: row.try_get("name")?,
            artifact_uri: row.try_get("artifact_location")?,
            creation_timestamp_ms: row.try_get("creation_timestamp_ms")?,
            last_updated_timestamp_ms: row.try_get("last_updated_timestamp_ms")?,
            status: row.try_get("status")?,
            model_type: row.try_get("model_type")?,
            source_run_id: row.try_get("source_run_id")?,
            status_message: row.try_get("status_message")?,
            tags: Vec::new(),
        })
    };
    read().context("failed to decode logged model row")
}

/// The fields of a new logged model.
pub struct NewLoggedModel<'a> {
    pub model_id: &'a str,
    pub experiment_id: i64,
    pub name: &'a str,
    pub artifact_location: &'a str,
    pub status: &'a str,
    pub model_type: Option<&'a str>,
    pub source_run_id: Option<&'a str>,
    pub now: i64,
}

pub async fn insert_logged_model(
    conn: &mut AnyConnection,
    m: &NewLoggedModel<'_>,
    tags: &[KeyValue],
    params: &[KeyValue],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, \
         creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)",
    )
    .bind(m.model_id)
    .bind(m.experiment_id)
    .bind(m.name)
    .bind(m.artifact_location)
    .bind(m.now)
    .bind(m.status)
    .bind(LIFECYCLE_ACTIVE)
    .bind(m.model_type)
    .bind(m.source_run_id)
    .execute(&mut *conn)
    .await
    .context("failed to insert logged model")?;
    upsert_logged_model_tags(conn, m.model_id, tags).await?;
    upsert_logged_model_params(conn, m.model_id, params).await
}

/// Whether an active logged model with this id exists.
pub async fn logged_model_active(conn: &mut AnyConnection, model_id: &str) -> Result<bool> {
    let row =
        sqlx::query("SELECT 1 FROM logged_models WHERE model_id = $1 AND lifecycle_stage = $2")
            .bind(model_id)
            .bind(LIFECYCLE_ACTIVE)
            .fetch_optional(&mut *conn)
            .await
            .context("failed to read logged model")?;
    Ok(row.is_some())
}

/// An active logged model with its tags and params.
pub async fn logged_model_by_id(db: &Db, model_id: &str) -> Result<Option<LoggedModel>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM logged_models WHERE model_id = $1 AND lifecycle_stage = $2"
    ))
    .bind(model_id)
    .bind(LIFECYCLE_ACTIVE)
    .fetch_optional(db.reader())
    .await
    .context("failed to read logged model")?;
    let Some(row) = row else { return Ok(None) };
    let info = info_from_row(&row)?;
    Ok(attach(db, vec![info]).await?.pop())
}

async fn key_values(
    db: &Db,
    table: &str,
    ids: &[String],
) -> Result<HashMap<String, Vec<KeyValue>>> {
    let mut out: HashMap<String, Vec<KeyValue>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = SqlBuilder::new(
        db.backend,
        format!("SELECT model_id, key, value FROM {table} WHERE model_id IN "),
    );
    q.bind_text_list(ids.iter().map(String::as_str));
    q.push(" ORDER BY model_id, key");
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read logged model tags or params")?;
    for row in rows {
        let id: String = row.try_get(0).context("failed to decode model id")?;
        out.entry(id).or_default().push(KeyValue {
            key: row.try_get(1).context("failed to decode key")?,
            value: row.try_get(2).context("failed to decode value")?,
        });
    }
    Ok(out)
}

async fn attach(db: &Db, infos: Vec<LoggedModelInfo>) -> Result<Vec<LoggedModel>> {
    let ids: Vec<String> = infos.iter().map(|i| i.model_id.clone()).collect();
    let mut tags = key_values(db, "logged_model_tags", &ids).await?;
    let mut params = key_values(db, "logged_model_params", &ids).await?;
    let mut metrics = model_metrics(db, &ids).await?;
    Ok(infos
        .into_iter()
        .map(|mut info| {
            info.tags = tags.remove(&info.model_id).unwrap_or_default();
            let params = params.remove(&info.model_id).unwrap_or_default();
            let metrics = metrics.remove(&info.model_id).unwrap_or_default();
            LoggedModel {
                info,
                data: LoggedModelData { params, metrics },
            }
        })
        .collect())
}

pub async fn set_logged_model_status(
    conn: &mut AnyConnection,
    model_id: &str,
    status: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 WHERE model_id = $3",
    )
    .bind(status)
    .bind(now)
    .bind(model_id)
    .execute(&mut *conn)
    .await
    .context("failed to update logged model status")?;
    Ok(())
}

pub async fn set_logged_model_deleted(
    conn: &mut AnyConnection,
    model_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE logged_models SET lifecycle_stage = $1, last_updated_timestamp_ms = $2 WHERE model_id = $3",
    )
    .bind(LIFECYCLE_DELETED)
    .bind(now)
    .bind(model_id)
    .execute(&mut *conn)
    .await
    .context("failed to delete logged model")?;
    Ok(())
}

async fn upsert(
    conn: &mut AnyConnection,
    table: &str,
    model_id: &str,
    kvs: &[KeyValue],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    );
    for kv in kvs {
        sqlx::query(&sql)
            .bind(model_id)
            .bind(&kv.key)
            .bind(&kv.value)
            .execute(&mut *conn)
            .await
            .context("failed to write logged model tag or param")?;
    }
    Ok(())
}

pub async fn upsert_logged_model_tags(
    conn: &mut AnyConnection,
    model_id: &str,
    tags: &[KeyValue],
) -> Result<()> {
    upsert(conn, "logged_model_tags", model_id, tags).await
}

pub async fn upsert_logged_model_params(
    conn: &mut AnyConnection,
    model_id: &str,
    params: &[KeyValue],
) -> Result<()> {
    upsert(conn, "logged_model_params", model_id, params).await
}

/// Deletes a tag; false when the model has no such tag.
pub async fn delete_logged_model_tag(
    conn: &mut AnyConnection,
    model_id: &str,
    key: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
        .bind(model_id)
        .bind(key)
        .execute(&mut *conn)
        .await
        .context("failed to delete logged model tag")?;
    Ok(done.rows_affected() > 0)
}

fn push_value(q: &mut SqlBuilder, v: &LmValue) {
    match v {
        LmValue::Text(s) => {
            q.bind_text(s);
        }
        LmValue::Number(n) => {
            q.bind_int(*n);
        }
        LmValue::List(l) => {
            q.bind_text_list(l.iter().map(String::as_str));
        }
    }
}

/// A logged-model search, its parts already checked.
pub struct LoggedModelQuery<'a> {
    pub experiment_ids: &'a [i64],
    pub clauses: &'a [LmClause],
    pub datasets: &'a [DatasetRef],
    pub order: &'a [LmOrder],
}

/// ` AND (x.dataset_name = … [AND x.dataset_digest = …] OR …)` over the given datasets.
fn push_dataset_filter(q: &mut SqlBuilder, datasets: &[DatasetRef]) {
    if datasets.is_empty() {
        return;
    }
    q.push(" AND (");
    for (i, d) in datasets.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(x.dataset_name = ");
        q.bind(Bind::OptText(d.name.clone()));
        if let Some(digest) = &d.digest {
            q.push(" AND x.dataset_digest = ");
            q.bind_text(digest);
        }
        q.push(")");
    }
    q.push(")");
}

/// The latest value of a model's metric (by timestamp, step, then run id), as MLflow
/// orders logged models by metrics.
fn push_latest_metric(q: &mut SqlBuilder, key: &str, dataset: &DatasetRef) {
    q.push(
        "(SELECT CASE WHEN x.is_nan = 1 THEN NULL ELSE x.metric_value END \
         FROM logged_model_metrics x WHERE x.model_id = m.model_id AND x.metric_name = ",
    );
    q.bind_text(key);
    if let Some(name) = &dataset.name {
        q.push(" AND x.dataset_name = ");
        q.bind_text(name);
    }
    if let Some(digest) = &dataset.digest {
        q.push(" AND x.dataset_digest = ");
        q.bind_text(digest);
    }
    q.push(" ORDER BY x.metric_timestamp_ms DESC, x.metric_step DESC, x.run_id ASC LIMIT 1)");
}

/// Active logged models of the experiments matching the search, in order, from `offset`,
/// at most `limit` rows.
pub async fn search_logged_models(
    db: &Db,
    search: &LoggedModelQuery<'_>,
    offset: i64,
    limit: i64,
) -> Result<Vec<LoggedModel>> {
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("m.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = SqlBuilder::new(
        db.backend,
        format!("SELECT {cols} FROM logged_models m WHERE m.lifecycle_stage = "),
    );
    q.bind_text(LIFECYCLE_ACTIVE);
    q.push(" AND m.experiment_id IN (");
    for (i, id) in search.experiment_ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_int(*id);
    }
    q.push(")");
    let mut metric_filters = false;
    for c in search.clauses {
        match c {
            LmClause::Attribute { column, op, value } => {
                if *op == "ILIKE" {
                    q.push(&format!(" AND LOWER(m.{column}) LIKE LOWER("));
                    push_value(&mut q, value);
                    q.push(")");
                } else {
                    q.push(&format!(" AND m.{column} {op} "));
                    push_value(&mut q, value);
                }
            }
            LmClause::KeyValue {
                table,
                key,
                op,
                value,
            } => {
                q.push(&format!(
                    " AND EXISTS (SELECT 1 FROM {table} x WHERE x.model_id = m.model_id AND x.key = "
                ));
                q.bind_text(key);
                if *op == "ILIKE" {
                    q.push(" AND LOWER(x.value) LIKE LOWER(");
                    push_value(&mut q, value);
                    q.push("))");
                } else {
                    q.push(&format!(" AND x.value {op} "));
                    push_value(&mut q, value);
                    q.push(")");
                }
            }
            LmClause::Metric { key, op, value } => {
                metric_filters = true;
                q.push(
                    " AND EXISTS (SELECT 1 FROM logged_model_metrics x \
                     WHERE x.model_id = m.model_id AND x.is_nan = 0 AND x.metric_name = ",
                );
                q.bind_text(key);
                q.push(&format!(" AND x.metric_value {op} "));
                q.bind(Bind::Float(*value));
                push_dataset_filter(&mut q, search.datasets);
                q.push(")");
            }
        }
    }
    // Datasets without a metric filter: models with any metric on those datasets.
    if !search.datasets.is_empty() && !metric_filters {
        q.push(" AND EXISTS (SELECT 1 FROM logged_model_metrics x WHERE x.model_id = m.model_id");
        push_dataset_filter(&mut q, search.datasets);
        q.push(")");
    }
    q.push(" ORDER BY ");
    for o in search.order {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        match &o.key {
            LmOrderKey::Column(column) => {
                q.push(&format!(
                    "CASE WHEN m.{column} IS NULL THEN 1 ELSE 0 END, m.{column} {dir}, "
                ));
            }
            LmOrderKey::Metric { key, dataset } => {
                q.push("CASE WHEN ");
                push_latest_metric(&mut q, key, dataset);
                q.push(" IS NULL THEN 1 ELSE 0 END, ");
                push_latest_metric(&mut q, key, dataset);
                q.push(&format!(" {dir}, "));
            }
        }
    }
    q.push("m.model_id ASC LIMIT ");
    q.bind_int(limit);
    q.push(" OFFSET ");
    q.bind_int(offset);
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to search logged models")?;
    let infos = rows.iter().map(info_from_row).collect::<Result<Vec<_>>>()?;
    attach(db, infos).await
}

/// Records the model-linked points of a run's batch in `logged_model_metrics` (a point
/// logged twice is kept once, as the primary key says).
pub async fn insert_logged_model_metrics(
    conn: &mut AnyConnection,
    run_id: &str,
    experiment_id: i64,
    points: &[&NewMetric],
) -> Result<()> {
    let backend = Backend::of(conn);
    for chunk in points.chunks(100) {
        let mut q = SqlBuilder::new(
            backend,
            "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, \
             metric_step, metric_value, is_nan, experiment_id, run_id, dataset_name, \
             dataset_digest) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            let Some(link) = &m.model else { continue };
            let (value, is_nan) = m.stored_value();
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_text(&link.model_id)
                .push(", ")
                .bind_text(&m.key)
                .push(", ")
                .bind_int(m.timestamp)
                .push(", ")
                .bind_int(m.step)
                .push(", ")
                .bind(Bind::Float(value))
                .push(", ")
                .bind_int(is_nan as i64)
                .push(", ")
                .bind_int(experiment_id)
                .push(", ")
                .bind_text(run_id)
                .push(", ")
                .bind(Bind::OptText(link.dataset_name.clone()))
                .push(", ")
                .bind(Bind::OptText(link.dataset_digest.clone()))
                .push(")");
        }
        q.push(" ON CONFLICT DO NOTHING");
        q.query()
            .execute(&mut *conn)
            .await
            .context("failed to insert logged model metrics")?;
    }
    Ok(())
}

/// Every metric point of the given models, by model, in (name, timestamp, step) order.
async fn model_metrics(db: &Db, ids: &[String]) -> Result<HashMap<String, Vec<LoggedModelMetric>>> {
    let mut out: HashMap<String, Vec<LoggedModelMetric>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = SqlBuilder::new(
        db.backend,
        "SELECT model_id, metric_name, metric_value, is_nan, metric_timestamp_ms, metric_step, \
         run_id, dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN ",
    );
    q.bind_text_list(ids.iter().map(String::as_str));
    q.push(" ORDER BY model_id, metric_name, metric_timestamp_ms, metric_step, run_id");
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read logged model metrics")?;
    for row in rows {
        let decode = "failed to decode a logged model metric";
        let model_id: String = row.try_get(0).context(decode)?;
        let value: f64 = row.try_get(2).context(decode)?;
        let is_nan: i64 = row.try_get(3).context(decode)?;
        out.entry(model_id.clone())
            .or_default()
            .push(LoggedModelMetric {
                key: row.try_get(1).context(decode)?,
                value: MetricValue(if is_nan != 0 { f64::NAN } else { value }),
                timestamp: row.try_get(4).context(decode)?,
                step: row.try_get(5).context(decode)?,
                run_id: row.try_get(6).context(decode)?,
                model_id,
                dataset_name: row.try_get(7).context(decode)?,
                dataset_digest: row.try_get(8).context(decode)?,
            });
    }
    Ok(out)
}
