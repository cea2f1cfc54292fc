//! Metric points and each run's latest value per key.

use std::collections::HashMap;

use ferroflow_core::{Db, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Bind, SqlBuilder};
use crate::model::{Metric, MetricValue, NewMetric};

/// Rows per INSERT statement: keeps bound parameters under every backend's limit.
const METRIC_ROWS_PER_STATEMENT: usize = 500;

/// Inserts metric points (identical points are ignored, as MLflow does) and advances each
/// key's latest value by (step, timestamp, value) order, all on the caller's transaction.
pub async fn insert_metrics(
    conn: &mut AnyConnection,
    run_id: &str,
    metrics: &[NewMetric],
) -> Result<()> {
    for chunk in metrics.chunks(METRIC_ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            push_metric_row(&mut q, i, run_id, m);
        }
        q.push(" ON CONFLICT DO NOTHING");
        q.query()
            .execute(&mut *conn)
            .await
            .context("failed to insert metrics")?;
    }

    // The newest point per key within this batch, by MLflow's (step, timestamp, value) order.
    let mut latest: HashMap<&str, &NewMetric> = HashMap::new();
    for m in metrics {
        latest
            .entry(m.key.as_str())
            .and_modify(|cur| {
                if order_key(m) > order_key(cur) {
                    *cur = m;
                }
            })
            .or_insert(m);
    }
    // Upsert in key order so concurrent batches lock rows in the same order (no deadlocks).
    let mut latest: Vec<&NewMetric> = latest.into_values().collect();
    latest.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    for chunk in latest.chunks(METRIC_ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES ",
        );
        for (i, m) in chunk.iter().enumerate() {
            push_metric_row(&mut q, i, run_id, m);
        }
        q.push(
            " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, \
             step = excluded.step, is_nan = excluded.is_nan \
             WHERE excluded.step > latest_metrics.step \
             OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
             OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
                 AND excluded.value > latest_metrics.value)",
        );
        q.query()
            .execute(&mut *conn)
            .await
            .context("failed to update latest metrics")?;
    }
    Ok(())
}

fn order_key(m: &NewMetric) -> (i64, i64, f64) {
    (m.step, m.timestamp, m.stored_value().0)
}

fn push_metric_row(q: &mut SqlBuilder, i: usize, run_id: &str, m: &NewMetric) {
    let (value, is_nan) = m.stored_value();
    q.push(if i == 0 { "(" } else { ", (" });
    q.bind_text(run_id).push(", ").bind_text(&m.key).push(", ");
    q.bind(Bind::Float(value))
        .push(", ")
        .bind_int(m.timestamp)
        .push(", ");
    q.bind_int(m.step)
        .push(", ")
        .bind_int(is_nan as i64)
        .push(")");
}

fn metric_from_row(row: &AnyRow) -> std::result::Result<Metric, sqlx::Error> {
    let is_nan: i64 = row.try_get("is_nan")?;
    let value: f64 = row.try_get("value")?;
    Ok(Metric {
        key: row.try_get("key")?,
        value: MetricValue(if is_nan != 0 { f64::NAN } else { value }),
        timestamp: row.try_get("timestamp")?,
        step: row.try_get("step")?,
    })
}

/// A page of a metric's history in MLflow's order (timestamp, step, value); `limit` None
/// reads everything from `offset`.
pub async fn metric_history(
    db: &Db,
    run_id: &str,
    key: &str,
    offset: i64,
    limit: Option<i64>,
) -> Result<Vec<Metric>> {
    let mut q = SqlBuilder::new(
        "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ",
    );
    q.bind_text(run_id).push(" AND key = ").bind_text(key);
    q.push(" ORDER BY timestamp, step, value, is_nan");
    if limit.is_some() || offset > 0 {
        q.push(" LIMIT ").bind_int(limit.unwrap_or(i64::MAX));
        q.push(" OFFSET ").bind_int(offset);
    }
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read metric history")?;
    rows.iter()
        .map(metric_from_row)
        .collect::<std::result::Result<_, _>>()
        .context("failed to decode metric history")
}

/// A metric's points in (step, timestamp, value) order, optionally within a step range.
pub async fn metric_points_by_step(
    db: &Db,
    run_id: &str,
    key: &str,
    steps: Option<(i64, i64)>,
) -> Result<Vec<Metric>> {
    let mut q = SqlBuilder::new(
        "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ",
    );
    q.bind_text(run_id).push(" AND key = ").bind_text(key);
    if let Some((start, end)) = steps {
        q.push(" AND step >= ")
            .bind_int(start)
            .push(" AND step <= ")
            .bind_int(end);
    }
    q.push(" ORDER BY step, timestamp, value, is_nan");
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read metric history")?;
    rows.iter()
        .map(metric_from_row)
        .collect::<std::result::Result<_, _>>()
        .context("failed to decode metric history")
}
