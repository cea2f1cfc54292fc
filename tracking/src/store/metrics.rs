//! Metric points and each run's latest value per key.

use std::collections::HashMap;

use ferroflow_core::{Backend, Db, Result, StorageContext};
use sqlx::{AnyConnection, Row};

use super::{Bind, SqlBuilder};
use crate::model::{Metric, MetricValue, NewMetric};

/// Rows per INSERT statement: keeps bound parameters under every backend's limit.
const METRIC_ROWS_PER_STATEMENT: usize = 500;

/// Moves every point of `metrics_recent` into `metrics` in series order, on the caller's
/// transaction; returns how many rows were moved. SQLite only (its writer is the only one).
pub async fn merge_recent_metrics(conn: &mut AnyConnection) -> Result<u64> {
    sqlx::query(
        "INSERT INTO metrics (series_id, timestamp, step, value, is_nan) \
         SELECT series_id, timestamp, step, value, is_nan FROM metrics_recent WHERE true \
         ORDER BY series_id, timestamp, step, value, is_nan ON CONFLICT DO NOTHING",
    )
    .execute(&mut *conn)
    .await
    .context("failed to merge recent metrics")?;
    let moved = sqlx::query("DELETE FROM metrics_recent")
        .execute(&mut *conn)
        .await
        .context("failed to clear merged metrics")?;
    Ok(moved.rows_affected())
}

/// Rows waiting in `metrics_recent`.
pub async fn recent_metric_count(db: &Db) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM metrics_recent")
        .fetch_one(db.reader())
        .await
        .context("failed to count recent metrics")
}

/// A metric point of a run, as handed to [`insert_metrics`].
pub type RunPoint<'a> = (&'a str, &'a NewMetric);

/// Inserts metric points of one or more runs (identical points are ignored, as MLflow does)
/// and advances each (run, key)'s latest value by (step, timestamp, value) order, all on the
/// caller's transaction and in a handful of statements however many runs are involved.
pub async fn insert_metrics(conn: &mut AnyConnection, points: &[RunPoint<'_>]) -> Result<()> {
    let backend = Backend::of(conn);
    let series = series_ids(conn, points).await?;
    // Sorted by series then time, so concurrent batches lock in the same order and each
    // series' new points land next to each other.
    let mut rows: Vec<(i64, &NewMetric)> = points
        .iter()
        .map(|(run, m)| (series[&(*run, m.key.as_str())], *m))
        .collect();
    rows.sort_unstable_by_key(|(id, m)| (*id, m.timestamp, m.step));
    // SQLite's single writer appends to `metrics_recent` and merges it in bulk (see
    // `merge_recent_metrics`); PostgreSQL's concurrent writers go straight to `metrics`.
    let table = match backend {
        Backend::Sqlite => "metrics_recent",
        Backend::Postgres => "metrics",
    };
    for chunk in rows.chunks(METRIC_ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            backend,
            format!("INSERT INTO {table} (series_id, timestamp, step, value, is_nan) VALUES "),
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

    // The newest point per (run, key) among these, by MLflow's (step, timestamp, value) order.
    let mut latest: HashMap<(&str, &str), &NewMetric> = HashMap::new();
    for (run, m) in points {
        latest
            .entry((*run, m.key.as_str()))
            .and_modify(|cur| {
                if order_key(m) > order_key(cur) {
                    *cur = m;
                }
            })
            .or_insert(m);
    }
    // Upsert in (run, key) order so concurrent batches lock rows in the same order.
    let mut latest: Vec<((&str, &str), &NewMetric)> = latest.into_iter().collect();
    latest.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for chunk in latest.chunks(METRIC_ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            backend,
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES ",
        );
        for (i, ((run, _), m)) in chunk.iter().enumerate() {
            let (value, is_nan) = m.stored_value();
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_text(run).push(", ").bind_text(&m.key).push(", ");
            q.bind(Bind::Float(value))
                .push(", ")
                .bind_int(m.timestamp)
                .push(", ");
            q.bind_int(m.step)
                .push(", ")
                .bind_int(is_nan as i64)
                .push(")");
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

type SeriesKey<'a> = (&'a str, &'a str);

/// The series id of each (run, key) among the points, creating the missing ones.
async fn series_ids<'k>(
    conn: &mut AnyConnection,
    points: &[RunPoint<'k>],
) -> Result<HashMap<SeriesKey<'k>, i64>> {
    let mut wanted: Vec<SeriesKey<'k>> = points
        .iter()
        .map(|(run, m)| (*run, m.key.as_str()))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(METRIC_ROWS_PER_STATEMENT) {
        // Usually every series exists already: one read, and writes only for new keys.
        lookup_series(conn, chunk, &mut out).await?;
        let missing: Vec<SeriesKey<'k>> = chunk
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
        for (i, (run, key)) in missing.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind_text(run).push(", ").bind_text(key).push(")");
        }
        q.push(" ON CONFLICT DO NOTHING");
        q.query()
            .execute(&mut *conn)
            .await
            .context("failed to create metric series")?;
        lookup_series(conn, &missing, &mut out).await?;
    }
    Ok(out)
}

/// Adds the ids of the existing series among `wanted` (sorted) to `out`.
async fn lookup_series<'k>(
    conn: &mut AnyConnection,
    wanted: &[SeriesKey<'k>],
    out: &mut HashMap<SeriesKey<'k>, i64>,
) -> Result<()> {
    let mut runs: Vec<&str> = wanted.iter().map(|(run, _)| *run).collect();
    runs.dedup();
    let mut keys: Vec<&str> = wanted.iter().map(|(_, key)| *key).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut q = SqlBuilder::new(
        Backend::of(conn),
        "SELECT run_uuid, key, series_id FROM metric_series WHERE run_uuid IN ",
    );
    q.bind_text_list(runs)
        .push(" AND key IN ")
        .bind_text_list(keys);
    let rows = q
        .query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to read metric series")?;
    for row in rows {
        let read = || -> std::result::Result<(String, String, i64), sqlx::Error> {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
        };
        let (run, key, id) = read().context("failed to decode metric series")?;
        // The query over-fetches (runs × keys); keep only the wanted pairs.
        if let Ok(i) = wanted.binary_search(&(run.as_str(), key.as_str())) {
            out.insert(wanted[i], id);
        }
    }
    Ok(())
}

fn order_key(m: &NewMetric) -> (i64, i64, f64) {
    (m.step, m.timestamp, m.stored_value().0)
}

/// Reads a metric's points as one aggregated text row (`ts,step,value,is_nan;…`) instead of
/// one driver row per point: a 10,000-point history then costs the database scan and one
/// parse, not 10,000 trips through the driver's row decoding.
///
/// `order` is the point order; `range` is an extra `AND …` condition on `m`; `page` is
/// (limit, offset) when the history is paged.
async fn read_points(
    db: &Db,
    run_id: &str,
    key: &str,
    order: &str,
    range: Option<(i64, i64)>,
    page: Option<(i64, i64)>,
) -> Result<Vec<Metric>> {
    // Values must survive the trip as text exactly: SQLite's %!.17g prints 17 significant
    // digits; PostgreSQL prints float8 in its shortest exact form.
    let point = match db.backend {
        Backend::Sqlite => "printf('%d,%d,%!.17g,%d', p.timestamp, p.step, p.value, p.is_nan)",
        Backend::Postgres => "p.timestamp || ',' || p.step || ',' || p.value || ',' || p.is_nan",
    };
    let mut q = SqlBuilder::new(
        db.backend,
        "WITH s AS (SELECT series_id FROM metric_series WHERE run_uuid = ",
    );
    q.bind_text(run_id).push(" AND key = ").bind_text(key);
    q.push(&format!(
        ") SELECT string_agg({point}, ';' ORDER BY {order}) FROM ("
    ));
    // Merged and not-yet-merged points; UNION drops a point logged again after a merge,
    // as the primary key drops it within one table.
    for (i, table) in ["metrics", "metrics_recent"].into_iter().enumerate() {
        if i > 0 {
            q.push(" UNION ");
        }
        q.push(&format!(
            "SELECT m.timestamp, m.step, m.value, m.is_nan FROM {table} m JOIN s ON s.series_id = m.series_id"
        ));
        if let Some((start, end)) = range {
            q.push(" WHERE m.step >= ")
                .bind_int(start)
                .push(" AND m.step <= ")
                .bind_int(end);
        }
    }
    if let Some((limit, offset)) = page {
        q.push(&format!(" ORDER BY {order} LIMIT "))
            .bind_int(limit)
            .push(" OFFSET ")
            .bind_int(offset);
    }
    q.push(") p");
    let text: Option<String> = q
        .query()
        .fetch_one(db.reader())
        .await
        .context("failed to read metric history")?
        .try_get(0)
        .context("failed to decode metric history")?;
    text.as_deref()
        .unwrap_or("")
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| parse_point(key, p))
        .collect()
}

fn parse_point(key: &str, text: &str) -> Result<Metric> {
    let bad = || {
        ferroflow_core::Error::internal(format!("corrupt metric point '{text}' for key '{key}'"))
    };
    let mut parts = text.split(',');
    let mut next = || parts.next().ok_or_else(bad);
    let timestamp = next()?.parse::<i64>().map_err(|_| bad())?;
    let step = next()?.parse::<i64>().map_err(|_| bad())?;
    let value = next()?.parse::<f64>().map_err(|_| bad())?;
    let is_nan = next()? != "0";
    Ok(Metric {
        key: key.to_string(),
        value: MetricValue(if is_nan { f64::NAN } else { value }),
        timestamp,
        step,
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
    let page = (limit.is_some() || offset > 0).then(|| (limit.unwrap_or(i64::MAX), offset));
    read_points(
        db,
        run_id,
        key,
        "timestamp, step, value, is_nan",
        None,
        page,
    )
    .await
}

/// A metric's points in (step, timestamp, value) order, optionally within a step range.
pub async fn metric_points_by_step(
    db: &Db,
    run_id: &str,
    key: &str,
    steps: Option<(i64, i64)>,
) -> Result<Vec<Metric>> {
    read_points(
        db,
        run_id,
        key,
        "step, timestamp, value, is_nan",
        steps,
        None,
    )
    .await
}
