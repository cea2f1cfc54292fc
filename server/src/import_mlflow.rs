//! `ferroflow import-mlflow`: copies an MLflow SQL backend store (MLflow's own schema, as
//! `mlflow server` 3.x migrates it, on SQLite, PostgreSQL or MySQL/MariaDB) into a ferroflow
//! backend store,
//! keeping ids, timestamps and artifact URIs (artifacts stay where they are).
//!
//! This module is the one place that knows MLflow's tables. Every table is copied in batches,
//! each batch its own transaction with `INSERT … ON CONFLICT DO NOTHING`, so a second run adds
//! only what is new and a run killed half-way resumes where it stopped. Deleted model versions
//! (MLflow keeps them as `Deleted_Internal`) are not copied; their numbers stay used.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use clap::Args;
use ferroflow_core::sql::{Bind, SqlBuilder};
use ferroflow_core::{Backend, Db, Error, Result, StorageContext, StoreUri};
use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Connection, Row};

/// The alembic revision of MLflow 3.17.2's schema (older stores are accepted with a warning).
pub const MLFLOW_HEAD_REVISION: &str = "dc11669786a5";

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The MLflow backend store: `sqlite:///path/mlflow.db`, `postgresql://user@host/db` or
    /// `mysql://user@host/db` (SQLAlchemy's `+driver` suffixes are accepted).
    #[arg(long = "from")]
    pub from: String,
    /// The ferroflow backend store to fill (created and migrated if new).
    #[arg(
        long = "to",
        env = "FERROFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlruns.db"
    )]
    pub to: String,
    /// Rows per transaction.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Only the MLflow workspace of this name (MLflow 3's multi-workspace stores).
    #[arg(long, default_value = "default")]
    pub workspace: String,
}

/// The SQL dialect of the MLflow store being read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// The copies' SQL is written once, in the dialect SQLite and PostgreSQL share; MySQL casts
    /// to `SIGNED`/`DOUBLE` (sqlx turns on `PIPES_AS_CONCAT`, so `||` concatenates there too).
    fn sql(self, sql: &str) -> String {
        match self {
            Dialect::MySql => sql
                .replace(" AS BIGINT)", " AS SIGNED)")
                .replace(" AS DOUBLE PRECISION)", " AS DOUBLE)"),
            _ => sql.to_string(),
        }
    }

    /// The SQL naming the connection's own schema in `information_schema`.
    fn schema(self) -> &'static str {
        match self {
            Dialect::MySql => "DATABASE()",
            _ => "current_schema()",
        }
    }
}

/// A column value read from MLflow and bound into ferroflow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    OptText,
    Int,
    OptInt,
    Float,
}

/// One table copy: the MLflow query (columns already cast and defaulted to ferroflow's types,
/// in the order of `columns`) and the ferroflow table it fills.
struct Copy {
    label: &'static str,
    source: String,
    count: String,
    target: &'static str,
    columns: &'static [(&'static str, Kind)],
}

/// What one table's copy did.
#[derive(Debug, Default, Clone)]
pub struct Counted {
    pub label: String,
    pub source: i64,
    pub inserted: u64,
    pub target: i64,
}

fn t(col: &str) -> String {
    format!("COALESCE({col}, '')")
}

fn i(col: &str) -> String {
    format!("CAST({col} AS BIGINT)")
}

fn f(col: &str) -> String {
    format!("CAST({col} AS DOUBLE PRECISION)")
}

/// The copies, in foreign-key order. `ws` filters MLflow 3 workspace columns when present.
fn copies(ws: Option<&str>) -> Vec<Copy> {
    let exp_ws = ws
        .map(|w| format!(" AND e.workspace = '{}'", w.replace('\'', "''")))
        .unwrap_or_default();
    let reg_ws = |alias: &str| {
        ws.map(|w| format!(" AND {alias}.workspace = '{}'", w.replace('\'', "''")))
            .unwrap_or_default()
    };
    // A table of per-run rows (`x`), limited to the imported runs.
    let of_runs = |table: &str| {
        format!(
            "{table} x JOIN runs r ON r.run_uuid = x.run_uuid \
             JOIN experiments e ON e.experiment_id = r.experiment_id WHERE 1 = 1{exp_ws}"
        )
    };
    // A table of per-logged-model rows (`x`), limited to the imported models.
    let of_models = |table: &str| {
        format!(
            "{table} x JOIN logged_models m ON m.model_id = x.model_id \
             JOIN experiments e ON e.experiment_id = m.experiment_id WHERE 1 = 1{exp_ws}"
        )
    };
    let runs_of = format!(
        "runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE 1 = 1{exp_ws}"
    );
    let live_version = |alias: &str| {
        format!(
            "(v.current_stage IS NULL OR v.current_stage <> 'Deleted_Internal') \
             AND v.name = {alias}.name AND v.version = {alias}.version"
        )
    };
    let q = |select: String, from: &str| Copy {
        label: "",
        count: format!("SELECT COUNT(*) FROM {from}"),
        source: format!("SELECT {select} FROM {from}"),
        target: "",
        columns: &[],
    };
    let with = |c: Copy, label, target, columns| Copy {
        label,
        target,
        columns,
        ..c
    };
    vec![
        with(
            q(
                format!(
                    "{}, e.name, {}, COALESCE(e.lifecycle_stage, 'active'), \
                     {}, {}",
                    i("e.experiment_id"),
                    t("e.artifact_location"),
                    i("COALESCE(e.creation_time, e.last_update_time, 0)"),
                    i("COALESCE(e.last_update_time, e.creation_time, 0)")
                ),
                &format!("experiments e WHERE 1 = 1{exp_ws}"),
            ),
            "experiments",
            "experiments",
            &[
                ("experiment_id", Kind::Int),
                ("name", Kind::Text),
                ("artifact_location", Kind::Text),
                ("lifecycle_stage", Kind::Text),
                ("creation_time", Kind::Int),
                ("last_update_time", Kind::Int),
            ],
        ),
        with(
            q(
                format!("{}, x.key, {}", i("x.experiment_id"), t("x.value")),
                &format!(
                    "experiment_tags x JOIN experiments e ON e.experiment_id = x.experiment_id \
                     WHERE 1 = 1{exp_ws}"
                ),
            ),
            "experiment tags",
            "experiment_tags",
            &[
                ("experiment_id", Kind::Int),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!(
                    "r.run_uuid, {i_exp}, \
                     COALESCE(NULLIF(r.name, ''), (SELECT g.value FROM tags g WHERE g.run_uuid = r.run_uuid \
                       AND g.key = 'mlflow.runName'), ''), \
                     {user}, COALESCE(r.status, 'SCHEDULED'), {start}, {end}, \
                     COALESCE(r.lifecycle_stage, 'active'), {art}, {deleted}",
                    i_exp = i("r.experiment_id"),
                    user = t("r.user_id"),
                    start = i("r.start_time"),
                    end = i("r.end_time"),
                    art = t("r.artifact_uri"),
                    deleted = i("r.deleted_time"),
                ),
                &runs_of,
            ),
            "runs",
            "runs",
            &[
                ("run_uuid", Kind::Text),
                ("experiment_id", Kind::Int),
                ("name", Kind::Text),
                ("user_id", Kind::Text),
                ("status", Kind::Text),
                ("start_time", Kind::OptInt),
                ("end_time", Kind::OptInt),
                ("lifecycle_stage", Kind::Text),
                ("artifact_uri", Kind::Text),
                ("deleted_time", Kind::OptInt),
            ],
        ),
        with(
            q(
                format!("x.run_uuid, x.key, {}", t("x.value")),
                &of_runs("tags"),
            ),
            "run tags",
            "tags",
            &[
                ("run_uuid", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                "x.run_uuid, x.key, x.value".to_string(),
                &of_runs("params"),
            ),
            "params",
            "params",
            &[
                ("run_uuid", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!(
                    "x.run_uuid, x.key, {}, {}, {}, {}",
                    i("x.timestamp"),
                    i("COALESCE(x.step, 0)"),
                    f("x.value"),
                    i("CASE WHEN x.is_nan THEN 1 ELSE 0 END")
                ),
                &of_runs("metrics"),
            ),
            "metric points",
            "metrics",
            &[
                ("run_uuid", Kind::Text),
                ("key", Kind::Text),
                ("timestamp", Kind::Int),
                ("step", Kind::Int),
                ("value", Kind::Float),
                ("is_nan", Kind::Int),
            ],
        ),
        with(
            q(
                format!(
                    "x.run_uuid, x.key, {}, {}, {}, {}",
                    f("x.value"),
                    i("COALESCE(x.timestamp, 0)"),
                    i("x.step"),
                    i("CASE WHEN x.is_nan THEN 1 ELSE 0 END")
                ),
                &of_runs("latest_metrics"),
            ),
            "latest metrics",
            "latest_metrics",
            &[
                ("run_uuid", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Float),
                ("timestamp", Kind::Int),
                ("step", Kind::Int),
                ("is_nan", Kind::Int),
            ],
        ),
        with(
            q(
                format!(
                    "d.dataset_uuid, {}, d.name, d.digest, d.dataset_source_type, d.dataset_source, \
                     d.dataset_schema, d.dataset_profile",
                    i("d.experiment_id")
                ),
                &format!(
                    "datasets d JOIN experiments e ON e.experiment_id = d.experiment_id \
                     WHERE 1 = 1{exp_ws}"
                ),
            ),
            "datasets",
            "datasets",
            &[
                ("dataset_uuid", Kind::Text),
                ("experiment_id", Kind::Int),
                ("name", Kind::Text),
                ("digest", Kind::Text),
                ("dataset_source_type", Kind::Text),
                ("dataset_source", Kind::Text),
                ("dataset_schema", Kind::OptText),
                ("dataset_profile", Kind::OptText),
            ],
        ),
        with(
            q(
                format!(
                    "x.input_uuid, x.source_type, x.source_id, x.destination_type, x.destination_id, {}",
                    i("COALESCE(x.step, 0)")
                ),
                &format!(
                    "inputs x WHERE EXISTS (SELECT 1 FROM runs r JOIN experiments e \
                     ON e.experiment_id = r.experiment_id WHERE (r.run_uuid = x.destination_id \
                     OR r.run_uuid = x.source_id){exp_ws})"
                ),
            ),
            "inputs",
            "inputs",
            &[
                ("input_uuid", Kind::Text),
                ("source_type", Kind::Text),
                ("source_id", Kind::Text),
                ("destination_type", Kind::Text),
                ("destination_id", Kind::Text),
                ("step", Kind::Int),
            ],
        ),
        with(
            q(
                "x.input_uuid, x.name, x.value".to_string(),
                &format!(
                    "input_tags x JOIN inputs n ON n.input_uuid = x.input_uuid WHERE EXISTS \
                     (SELECT 1 FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id \
                     WHERE (r.run_uuid = n.destination_id OR r.run_uuid = n.source_id){exp_ws})"
                ),
            ),
            "input tags",
            "input_tags",
            &[
                ("input_uuid", Kind::Text),
                ("name", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!(
                    "m.model_id, {}, m.name, m.artifact_location, {}, {}, \
                     CASE {} WHEN 1 THEN 'LOGGED_MODEL_PENDING' WHEN 2 THEN 'LOGGED_MODEL_READY' \
                     WHEN 3 THEN 'LOGGED_MODEL_UPLOAD_FAILED' ELSE 'LOGGED_MODEL_STATUS_UNSPECIFIED' END, \
                     COALESCE(m.lifecycle_stage, 'active'), m.model_type, m.source_run_id, m.status_message",
                    i("m.experiment_id"),
                    i("m.creation_timestamp_ms"),
                    i("m.last_updated_timestamp_ms"),
                    i("m.status")
                ),
                &format!(
                    "logged_models m JOIN experiments e ON e.experiment_id = m.experiment_id \
                     WHERE 1 = 1{exp_ws}"
                ),
            ),
            "logged models",
            "logged_models",
            &[
                ("model_id", Kind::Text),
                ("experiment_id", Kind::Int),
                ("name", Kind::Text),
                ("artifact_location", Kind::Text),
                ("creation_timestamp_ms", Kind::Int),
                ("last_updated_timestamp_ms", Kind::Int),
                ("status", Kind::Text),
                ("lifecycle_stage", Kind::Text),
                ("model_type", Kind::OptText),
                ("source_run_id", Kind::OptText),
                ("status_message", Kind::OptText),
            ],
        ),
        with(
            q(
                "x.model_id, x.tag_key, x.tag_value".to_string(),
                &of_models("logged_model_tags"),
            ),
            "logged model tags",
            "logged_model_tags",
            &[
                ("model_id", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                "x.model_id, x.param_key, x.param_value".to_string(),
                &of_models("logged_model_params"),
            ),
            "logged model params",
            "logged_model_params",
            &[
                ("model_id", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!(
                    "x.model_id, x.metric_name, {}, {}, {}, \
                     CASE WHEN x.metric_value IS NULL THEN 1 ELSE 0 END, {}, x.run_id, \
                     x.dataset_name, x.dataset_digest",
                    i("x.metric_timestamp_ms"),
                    i("x.metric_step"),
                    f("COALESCE(x.metric_value, 0)"),
                    i("x.experiment_id")
                ),
                &of_models("logged_model_metrics"),
            ),
            "logged model metrics",
            "logged_model_metrics",
            &[
                ("model_id", Kind::Text),
                ("metric_name", Kind::Text),
                ("metric_timestamp_ms", Kind::Int),
                ("metric_step", Kind::Int),
                ("metric_value", Kind::Float),
                ("is_nan", Kind::Int),
                ("experiment_id", Kind::Int),
                ("run_id", Kind::Text),
                ("dataset_name", Kind::OptText),
                ("dataset_digest", Kind::OptText),
            ],
        ),
        with(
            q(
                format!(
                    "m.name, {}, {}, m.description, \
                     {} + 1",
                    i("COALESCE(m.creation_time, m.last_updated_time, 0)"),
                    i("COALESCE(m.last_updated_time, m.creation_time, 0)"),
                    // Version numbers are never reused: deleted versions count.
                    i("COALESCE((SELECT MAX(v.version) FROM model_versions v WHERE v.name = m.name), 0)")
                ),
                &format!("registered_models m WHERE 1 = 1{}", reg_ws("m")),
            ),
            "registered models",
            "registered_models",
            &[
                ("name", Kind::Text),
                ("creation_time", Kind::Int),
                ("last_updated_time", Kind::Int),
                ("description", Kind::OptText),
                ("next_version", Kind::Int),
            ],
        ),
        with(
            q(
                format!("x.name, x.key, {}", t("x.value")),
                &format!("registered_model_tags x WHERE 1 = 1{}", reg_ws("x")),
            ),
            "registered model tags",
            "registered_model_tags",
            &[
                ("name", Kind::Text),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!(
                    "v.name, {}, {}, {}, {}, v.user_id, COALESCE(v.current_stage, 'None'), {}, {}, \
                     {}, COALESCE(v.status, 'READY'), v.status_message, \
                     CASE WHEN v.source LIKE 'models:/m-%' AND EXISTS (SELECT 1 FROM logged_models lm \
                       WHERE v.source = 'models:/' || lm.model_id) THEN SUBSTR(v.source, 9) ELSE NULL END",
                    i("v.version"),
                    i("COALESCE(v.creation_time, v.last_updated_time, 0)"),
                    i("COALESCE(v.last_updated_time, v.creation_time, 0)"),
                    t("v.description"),
                    t("v.source"),
                    t("v.run_id"),
                    t("v.run_link"),
                ),
                &format!(
                    "model_versions v WHERE (v.current_stage IS NULL OR \
                     v.current_stage <> 'Deleted_Internal'){}",
                    reg_ws("v")
                ),
            ),
            "model versions",
            "model_versions",
            &[
                ("name", Kind::Text),
                ("version", Kind::Int),
                ("creation_time", Kind::Int),
                ("last_updated_time", Kind::Int),
                ("description", Kind::Text),
                ("user_id", Kind::OptText),
                ("current_stage", Kind::Text),
                ("source", Kind::Text),
                ("run_id", Kind::Text),
                ("run_link", Kind::Text),
                ("status", Kind::Text),
                ("status_message", Kind::OptText),
                ("model_id", Kind::OptText),
            ],
        ),
        with(
            q(
                format!("x.name, {}, x.key, {}", i("x.version"), t("x.value")),
                &format!(
                    "model_version_tags x WHERE EXISTS (SELECT 1 FROM model_versions v WHERE {}){}",
                    live_version("x"),
                    reg_ws("x")
                ),
            ),
            "model version tags",
            "model_version_tags",
            &[
                ("name", Kind::Text),
                ("version", Kind::Int),
                ("key", Kind::Text),
                ("value", Kind::Text),
            ],
        ),
        with(
            q(
                format!("x.name, x.alias, {}", i("x.version")),
                &format!(
                    "registered_model_aliases x WHERE EXISTS (SELECT 1 FROM model_versions v WHERE {}){}",
                    live_version("x"),
                    reg_ws("x")
                ),
            ),
            "aliases",
            "registered_model_aliases",
            &[
                ("name", Kind::Text),
                ("alias", Kind::Text),
                ("version", Kind::Int),
            ],
        ),
    ]
}

fn source_url(uri: &str) -> Result<(String, Dialect)> {
    if let Some((scheme, rest)) = uri.split_once("://") {
        if matches!(scheme.split('+').next(), Some("mysql" | "mariadb")) {
            // SQLAlchemy's `mysql+pymysql://…` is sqlx's `mysql://…`.
            return Ok((format!("mysql://{rest}"), Dialect::MySql));
        }
    }
    match uri.parse::<StoreUri>()? {
        StoreUri::Sqlite(path) => {
            if !path.is_file() {
                return Err(Error::invalid(format!(
                    "MLflow store {uri}: no such file {}",
                    path.display()
                )));
            }
            Ok((
                format!("sqlite://{}?mode=ro", path.display()),
                Dialect::Sqlite,
            ))
        }
        StoreUri::Postgres(url) => Ok((url, Dialect::Postgres)),
    }
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn has_table(conn: &mut AnyConnection, dialect: Dialect, table: &str) -> Result<bool> {
    let sql = match dialect {
        Dialect::Sqlite => format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = {}",
            quoted(table)
        ),
        Dialect::Postgres | Dialect::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} \
             AND table_name = {}",
            dialect.schema(),
            quoted(table)
        ),
    };
    let n: i64 = sqlx::query_scalar(&sql)
        .fetch_one(&mut *conn)
        .await
        .context("failed to read the source schema")?;
    Ok(n > 0)
}

async fn has_column(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &str,
    column: &str,
) -> Result<bool> {
    let (table, column) = (quoted(table), quoted(column));
    let sql = match dialect {
        Dialect::Sqlite => {
            format!("SELECT COUNT(*) FROM pragma_table_info({table}) WHERE name = {column}")
        }
        Dialect::Postgres | Dialect::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = {} \
             AND table_name = {table} AND column_name = {column}",
            dialect.schema()
        ),
    };
    let n: i64 = sqlx::query_scalar(&sql)
        .fetch_one(&mut *conn)
        .await
        .context("failed to read the source schema")?;
    Ok(n > 0)
}

/// The alembic revision of an MLflow store behind `conn`, or `None` when it is not one.
async fn mlflow_revision(conn: &mut AnyConnection, dialect: Dialect) -> Result<Option<String>> {
    if !has_table(conn, dialect, "alembic_version").await? {
        return Ok(None);
    }
    let rev: Option<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_optional(&mut *conn)
        .await
        .context("failed to read alembic_version")?;
    Ok(Some(rev.unwrap_or_default()))
}

/// A text column. MySQL reports `TEXT` columns as blobs, which sqlx's Any driver hands over as
/// bytes: those are read as UTF-8 (MLflow's MySQL tables are utf8mb4).
fn text_at(row: &sqlx::any::AnyRow, i: usize) -> std::result::Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<String>, _>(i) {
        Ok(v) => Ok(v),
        Err(e) => match row.try_get::<Option<Vec<u8>>, _>(i) {
            Ok(bytes) => bytes
                .map(|b| String::from_utf8(b).map_err(|u| sqlx::Error::Decode(Box::new(u))))
                .transpose(),
            Err(_) => Err(e),
        },
    }
}

fn value_bind(row: &sqlx::any::AnyRow, i: usize, kind: Kind) -> Result<Bind> {
    let err = |e: sqlx::Error| Error::internal(format!("reading column {i} of MLflow's row: {e}"));
    Ok(match kind {
        Kind::Text => Bind::Text(
            text_at(row, i)
                .map_err(err)?
                .ok_or_else(|| err(sqlx::Error::Decode("unexpected NULL".into())))?,
        ),
        Kind::OptText => Bind::OptText(text_at(row, i).map_err(err)?),
        Kind::Int => Bind::Int(row.try_get::<i64, _>(i).map_err(err)?),
        Kind::OptInt => Bind::OptInt(row.try_get::<Option<i64>, _>(i).map_err(err)?),
        Kind::Float => Bind::Float(row.try_get::<f64, _>(i).map_err(err)?),
    })
}

/// Inserts `rows` into `table` (`INSERT … ON CONFLICT DO NOTHING`); returns the rows added.
async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Bind>],
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut q = SqlBuilder::new(
        backend,
        format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")),
    );
    for (n, row) in rows.iter().enumerate() {
        q.push(if n == 0 { "(" } else { ", (" });
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                q.push(", ");
            }
            q.bind(v.clone());
        }
        q.push(")");
    }
    q.push(" ON CONFLICT DO NOTHING");
    let done = q
        .query()
        .execute(&mut *conn)
        .await
        .context(&format!("failed to insert into {table}"))?;
    Ok(done.rows_affected())
}

/// Metric points: each (run, key) becomes a `metric_series` row, the points reference it.
async fn insert_points(
    conn: &mut AnyConnection,
    backend: Backend,
    series: &mut HashMap<(String, String), i64>,
    rows: &[Vec<Bind>],
) -> Result<u64> {
    let text = |b: &Bind| match b {
        Bind::Text(s) => s.clone(),
        _ => String::new(),
    };
    let missing: Vec<(String, String)> = {
        let mut m: Vec<(String, String)> = rows
            .iter()
            .map(|r| (text(&r[0]), text(&r[1])))
            .filter(|k| !series.contains_key(k))
            .collect();
        m.sort();
        m.dedup();
        m
    };
    if !missing.is_empty() {
        let pairs: Vec<Vec<Bind>> = missing
            .iter()
            .map(|(r, k)| vec![Bind::Text(r.clone()), Bind::Text(k.clone())])
            .collect();
        insert_rows(conn, backend, "metric_series", &["run_uuid", "key"], &pairs).await?;
        for (run, key) in missing {
            let id: i64 = SqlBuilder::new(
                backend,
                "SELECT series_id FROM metric_series WHERE run_uuid = ",
            )
            .bind_text(&run)
            .push(" AND key = ")
            .bind_text(&key)
            .query()
            .fetch_one(&mut *conn)
            .await
            .context("failed to read metric series")?
            .try_get(0)
            .context("failed to read metric series")?;
            series.insert((run, key), id);
        }
    }
    let points: Vec<Vec<Bind>> = rows
        .iter()
        .map(|r| {
            let id = series[&(text(&r[0]), text(&r[1]))];
            let mut p = vec![Bind::Int(id)];
            p.extend(r[2..].iter().cloned());
            p
        })
        .collect();
    insert_rows(
        conn,
        backend,
        "metrics",
        &["series_id", "timestamp", "step", "value", "is_nan"],
        &points,
    )
    .await
}

struct Progress {
    label: &'static str,
    total: i64,
    done: i64,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn show(&mut self, force: bool) {
        if !force && self.last.elapsed().as_millis() < 200 {
            return;
        }
        self.last = Instant::now();
        let width = 30usize;
        let filled = if self.total > 0 {
            (self.done as usize * width / self.total as usize).min(width)
        } else {
            width
        };
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r  {:<22} [{}{}] {:>10}/{:<10} {:>9.0} rows/s",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total,
            rate
        );
        let _ = std::io::stderr().flush();
        if force {
            eprintln!();
        }
    }
}

/// Copies one table; returns (source rows, rows inserted).
async fn copy_table(
    source: &mut AnyConnection,
    dialect: Dialect,
    target: &Db,
    copy: &Copy,
    batch: usize,
) -> Result<(i64, u64)> {
    let total: i64 = sqlx::query_scalar(&dialect.sql(&copy.count))
        .fetch_one(&mut *source)
        .await
        .context(&format!("failed to count MLflow's {}", copy.label))?;
    let mut progress = Progress {
        label: copy.label,
        total,
        done: 0,
        started: Instant::now(),
        last: Instant::now(),
    };
    let columns: Vec<&str> = copy.columns.iter().map(|(c, _)| *c).collect();
    let kinds: Vec<Kind> = copy.columns.iter().map(|(_, k)| *k).collect();
    let mut series = HashMap::new();
    let mut inserted = 0u64;
    let mut pending: Vec<Vec<Bind>> = Vec::with_capacity(batch);
    let backend = target.backend;
    let select = dialect.sql(&copy.source);
    let mut rows = sqlx::query(&select).fetch(&mut *source);
    loop {
        let row = rows
            .try_next()
            .await
            .context(&format!("failed to read MLflow's {}", copy.label))?;
        let end = row.is_none();
        if let Some(row) = row {
            let values = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| value_bind(&row, i, *k))
                .collect::<Result<Vec<_>>>()?;
            pending.push(values);
        }
        if pending.len() >= batch || (end && !pending.is_empty()) {
            let mut tx = target
                .writer()
                .begin()
                .await
                .context("failed to begin transaction")?;
            inserted += if copy.target == "metrics" {
                insert_points(&mut tx, backend, &mut series, &pending).await?
            } else {
                insert_rows(&mut tx, backend, copy.target, &columns, &pending).await?
            };
            tx.commit().await.context("failed to commit a batch")?;
            progress.done += pending.len() as i64;
            pending.clear();
            progress.show(false);
        }
        if end {
            break;
        }
    }
    progress.show(true);
    Ok((total, inserted))
}

async fn target_count(target: &Db, table: &str) -> Result<i64> {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(target.reader())
        .await
        .context(&format!("failed to count {table}"))
}

/// Runs the import; returns one line per table.
pub async fn run(args: &ImportArgs) -> Result<Vec<Counted>> {
    sqlx::any::install_default_drivers();
    let (url, dialect) = source_url(&args.from)?;
    let mut source = AnyConnection::connect(&url)
        .await
        .map_err(|e| Error::invalid(format!("cannot open the MLflow store {}: {e}", args.from)))?;
    let Some(revision) = mlflow_revision(&mut source, dialect).await? else {
        return Err(Error::invalid(format!(
            "{} is not an MLflow store (it has no alembic_version table)",
            args.from
        )));
    };
    if revision != MLFLOW_HEAD_REVISION {
        eprintln!(
            "note: the MLflow store is at schema revision {revision}; ferroflow reads MLflow \
             3.17.2's ({MLFLOW_HEAD_REVISION}). Upgrading it first with `mlflow db upgrade` is safest."
        );
    }
    let ws = has_column(&mut source, dialect, "experiments", "workspace")
        .await?
        .then_some(args.workspace.as_str());
    let target_uri: StoreUri = args.to.parse()?;
    let target = Db::connect(&target_uri, 2).await?;
    check_experiments(&mut source, dialect, &target, ws).await?;
    eprintln!(
        "importing {} (MLflow schema {revision}) into {}",
        args.from,
        target_uri.redacted()
    );
    let mut out = Vec::new();
    let started = Instant::now();
    for copy in copies(ws) {
        if !has_table(&mut source, dialect, copy.source_table()).await? {
            continue;
        }
        let (source_rows, inserted) =
            copy_table(&mut source, dialect, &target, &copy, args.batch).await?;
        out.push(Counted {
            label: copy.label.to_string(),
            source: source_rows,
            inserted,
            target: target_count(&target, copy.target).await?,
        });
    }
    // PostgreSQL: the experiment id sequence continues after the imported ids.
    if target.backend == Backend::Postgres {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), \
             GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))",
        )
        .execute(target.writer())
        .await
        .context("failed to move the experiment id sequence")?;
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    target.close().await;
    Ok(out)
}

/// Refuses an import whose experiments clash with the target's: an id that names another
/// experiment there, or a name held there under another id (its runs would land in the wrong
/// experiment). The same experiment (same id and name) is fine: that is a re-run.
async fn check_experiments(
    source: &mut AnyConnection,
    dialect: Dialect,
    target: &Db,
    ws: Option<&str>,
) -> Result<()> {
    let filter = ws
        .map(|w| format!(" WHERE workspace = '{}'", w.replace('\'', "''")))
        .unwrap_or_default();
    let theirs: Vec<(i64, String)> = sqlx::query_as(&dialect.sql(&format!(
        "SELECT CAST(experiment_id AS BIGINT), name FROM experiments{filter}"
    )))
    .fetch_all(&mut *source)
    .await
    .context("failed to read MLflow's experiments")?;
    let ours: Vec<(i64, String)> =
        sqlx::query_as("SELECT CAST(experiment_id AS BIGINT), name FROM experiments")
            .fetch_all(target.reader())
            .await
            .context("failed to read the target's experiments")?;
    let by_id: HashMap<i64, &str> = ours.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let by_name: HashMap<&str, i64> = ours.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    for (id, name) in &theirs {
        // ferroflow's own Default experiment (id 0) takes MLflow's.
        if *id == 0 && by_id.get(id) == Some(&"Default") {
            continue;
        }
        let clash = match (by_id.get(id), by_name.get(name.as_str())) {
            (Some(n), _) if n != name => Some(format!("experiment id {id} is '{n}' there")),
            (_, Some(i)) if i != id => Some(format!("experiment '{name}' has id {i} there")),
            _ => None,
        };
        if let Some(why) = clash {
            return Err(Error::invalid(format!(
                "cannot import MLflow's experiment {id} ('{name}'): {why}. Import into a new \
                 ferroflow store (--to), or rename the experiment on one side."
            )));
        }
    }
    Ok(())
}

impl Copy {
    /// The MLflow table the copy reads (its `FROM`).
    fn source_table(&self) -> &str {
        let from = &self.count["SELECT COUNT(*) FROM ".len()..];
        from.split_whitespace().next().unwrap_or_default()
    }
}

/// The final table: per entity, MLflow's rows, rows added by this run, and ferroflow's rows.
pub fn render(counts: &[Counted]) -> String {
    let mut s = format!(
        "{:<24} {:>12} {:>12} {:>12}\n",
        "entity", "in MLflow", "added now", "in ferroflow"
    );
    for c in counts {
        s.push_str(&format!(
            "{:<24} {:>12} {:>12} {:>12}{}\n",
            c.label,
            c.source,
            c.inserted,
            c.target,
            if c.target < c.source { "  MISSING" } else { "" }
        ));
    }
    s
}
