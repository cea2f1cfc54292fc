//! Metric points and each run's latest value per key.

use std::collections::HashMap;

use ferroflow_core::{Backend, Db, Result, StorageContext};
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
    let backend = Backend::of(conn);
    let series = series_ids(conn, run_id, metrics).await?;
    // Sorted by series then time, so concurrent batches lock in the same order and each
    // series' new points land next to each other.
    let mut points: Vec<(i64, &NewMetric)> = metrics
        .iter()
        .map(|m| (series[m.key.as_str()], m))
        .collect();
    points.sort_unstable_by_key(|(id, m)| (*id, m.timestamp, m.step));
    for chunk in points.chunks(METRIC_ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            backend,
            "INSERT INTO metrics (series_id, timestamp, step, value, is_nan) VALUES ",
        );
        for (i, (id, m)) in chunk.iter().enumerate() {
            let (value, is_nan) = m.stored_value();
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_int(*id)
                .push(", ")
                .bind_int(m.timestamp)
                .push(", ")
                .bind_int(m.step)
                .push(", ");
            q.bind(Bind::Float(value))
                .push(", ")
                .bind_int(is_nan as i64)
                .push(")");
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
            backend,
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

/// The series id of each key in the batch, creating the missing ones.
async fn series_ids<'k>(
    conn: &mut AnyConnection,
    run_id: &str,
    metrics: &'k [NewMetric],
) -> Result<HashMap<&'k str, i64>> {
    let mut keys: Vec<&str> = metrics.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(METRIC_ROWS_PER_STATEMENT) {
        // Usually every series exists already: one read, and writes only for new keys.
        lookup_series(conn, run_id, chunk, &mut out).await?;
        let missing: Vec<&str> = chunk
            .iter()
            .copied()
            .filter(|k| !out.contains_key(k))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let mut q = SqlBuilder::new(
            Backend::of(conn),
            "INSERT INTO metric_series (run_uuid, key) VALUES ",
        );
        for (i, k) in missing.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_text(run_id).push(", ").bind_text(k).push(")");
        }
        q.push(" ON CONFLICT DO NOTHING");
        q.query()
            .execute(&mut *conn)
            .await
            .context("failed to create metric series")?;
        lookup_series(conn, run_id, &missing, &mut out).await?;
    }
    Ok(out)
}

/// Adds the ids of the existing series among `keys` (sorted) to `out`.
async fn lookup_series<'k>(
    conn: &mut AnyConnection,
    run_id: &str,
    keys: &[&'k str],
    out: &mut HashMap<&'k str, i64>,
) -> Result<()> {
    let mut q = SqlBuilder::new(
        Backend::of(conn),
        "SELECT key, series_id FROM metric_series WHERE run_uuid = ",
    );
    q.bind_text(run_id)
        .push(" AND key IN ")
        .bind_text_list(keys.iter().copied());
    let rows = q
        .query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to read metric series")?;
    for row in rows {
        let key: String = row.try_get(0).context("failed to decode metric series")?;
        let id: i64 = row.try_get(1).context("failed to decode metric series")?;
        if let Ok(i) = keys.binary_search(&key.as_str()) {
            out.insert(keys[i], id);
        }
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

fn metric_from_row(key: &str, row: &AnyRow) -> std::result::Result<Metric, sqlx::Error> {
    let is_nan: i64 = row.try_get("is_nan")?;
    let value: f64 = row.try_get("value")?;
    Ok(Metric {
        key: key.to_string(),
        value: MetricValue(if is_nan != 0 { f64::NAN } else { value }),
        timestamp: row.try_get("timestamp")?,
        step: row.try_get("step")?,
    })
}

const HISTORY_SELECT: &str = "SELECT m.timestamp, m.step, m.value, m.is_nan FROM metrics m \
     JOIN metric_series s ON s.series_id = m.series_id WHERE s.run_uuid = ";

/// A page of a metric's history in MLflow's order (timestamp, step, value); `limit` None
/// reads everything from `offset`.
pub async fn metric_history(
    db: &Db,
    run_id: &str,
    key: &str,
    offset: i64,
    limit: Option<i64>,
) -> Result<Vec<Metric>> {
    let mut q = SqlBuilder::new(db.backend, HISTORY_SELECT);
    q.bind_text(run_id).push(" AND s.key = ").bind_text(key);
    q.push(" ORDER BY m.timestamp, m.step, m.value, m.is_nan");
    if limit.is_some() || offset > 0 {
        q.push(" LIMIT ").bind_int(limit.unwrap_or(i64::MAX));
        q.push(" OFFSET ").bind_int(offset);
    }
    read_points(db, &q, key).await
}

/// A metric's points in (step, timestamp, value) order, optionally within a step range.
pub async fn metric_points_by_step(
    db: &Db,
    run_id: &str,
    key: &str,
    steps: Option<(i64, i64)>,
) -> Result<Vec<Metric>> {
    let mut q = SqlBuilder::new(db.backend, HISTORY_SELECT);
    q.bind_text(run_id).push(" AND s.key = ").bind_text(key);
    if let Some((start, end)) = steps {
        q.push(" AND m.step >= ")
            .bind_int(start)
            .push(" AND m.step <= ")
            .bind_int(end);
    }
    q.push(" ORDER BY m.step, m.timestamp, m.value, m.is_nan");
    read_points(db, &q, key).await
}

async fn read_points(db: &Db, q: &SqlBuilder, key: &str) -> Result<Vec<Metric>> {
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read metric history")?;
    rows.iter()
        .map(|r| metric_from_row(key, r))
        .collect::<std::result::Result<_, _>>()
        .context("failed to decode metric history")
}
