//! Experiments and experiment tags.

use std::collections::HashMap;

use ferroflow_core::{Db, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::SqlBuilder;
use crate::model::{Experiment, KeyValue, DEFAULT_WORKSPACE, LIFECYCLE_ACTIVE};

const EXPERIMENT_COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    let read = || -> std::result::Result<Experiment, sqlx::Error> {
        Ok(Experiment {
            experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
            name: row.try_get("name")?,
            artifact_location: row.try_get("artifact_location")?,
            lifecycle_stage: row.try_get("lifecycle_stage")?,
            creation_time: row.try_get("creation_time")?,
            last_update_time: row.try_get("last_update_time")?,
            tags: Vec::new(),
            workspace: DEFAULT_WORKSPACE,
        })
    };
    read().context("failed to decode experiment row")
}

/// Inserts an experiment; its artifact location defaults to `<artifact_root>/<id>`.
pub async fn insert_experiment(
    conn: &mut AnyConnection,
    name: &str,
    artifact_location: Option<&str>,
    artifact_root: &str,
    tags: &[KeyValue],
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
         VALUES ($1, $2, $3, $4, $4) RETURNING experiment_id",
    )
    .bind(name)
    .bind(artifact_location.unwrap_or(""))
    .bind(LIFECYCLE_ACTIVE)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("failed to insert experiment")?;
    let id: i64 = row.try_get(0).context("failed to read new experiment id")?;
    if artifact_location.is_none() {
        sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
            .bind(join_uri(artifact_root, &id.to_string()))
            .bind(id)
            .execute(&mut *conn)
            .await
            .context("failed to set experiment artifact location")?;
    }
    for tag in tags {
        upsert_experiment_tag(conn, id, &tag.key, &tag.value).await?;
    }
    Ok(id)
}

/// Creates experiment 0, `Default`, when the store is new.
pub async fn ensure_default_experiment(db: &Db, artifact_root: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
         VALUES (0, 'Default', $1, $2, $3, $3) ON CONFLICT DO NOTHING",
    )
    .bind(join_uri(artifact_root, "0"))
    .bind(LIFECYCLE_ACTIVE)
    .bind(now)
    .execute(db.writer())
    .await
    .context("failed to create the Default experiment")?;
    Ok(())
}

/// `root/child` without doubling a trailing slash (`mlflow-artifacts:/` + `1` → `mlflow-artifacts:/1`).
pub fn join_uri(root: &str, child: &str) -> String {
    if root.ends_with('/') {
        format!("{root}{child}")
    } else {
        format!("{root}/{child}")
    }
}

pub async fn experiment_by_id(db: &Db, id: i64) -> Result<Option<Experiment>> {
    let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .context("failed to read experiment")?;
    with_tags(db, row).await
}

pub async fn experiment_by_name(db: &Db, name: &str) -> Result<Option<Experiment>> {
    let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = $1");
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(db.reader())
        .await
        .context("failed to read experiment")?;
    with_tags(db, row).await
}

async fn with_tags(db: &Db, row: Option<AnyRow>) -> Result<Option<Experiment>> {
    let Some(row) = row else { return Ok(None) };
    let mut exp = experiment_from_row(&row)?;
    let id: i64 = exp.experiment_id.parse().unwrap_or_default();
    exp.tags = experiment_tags(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Some(exp))
}

/// Lifecycle stage of an experiment, or None if it does not exist.
pub async fn experiment_stage(conn: &mut AnyConnection, id: i64) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .context("failed to read experiment lifecycle stage")
}

pub async fn experiment_tags(db: &Db, ids: &[i64]) -> Result<HashMap<i64, Vec<KeyValue>>> {
    let mut out: HashMap<i64, Vec<KeyValue>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q = SqlBuilder::new(
        db.backend,
        "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (",
    );
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_int(*id);
    }
    q.push(") ORDER BY experiment_id, key");
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read experiment tags")?;
    for row in rows {
        let read = || -> std::result::Result<(i64, KeyValue), sqlx::Error> {
            Ok((
                row.try_get(0)?,
                KeyValue {
                    key: row.try_get(1)?,
                    value: row.try_get(2)?,
                },
            ))
        };
        let (id, kv) = read().context("failed to decode experiment tag")?;
        out.entry(id).or_default().push(kv);
    }
    Ok(out)
}

pub async fn rename_experiment(
    conn: &mut AnyConnection,
    id: i64,
    name: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
        .bind(name)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .context("failed to rename experiment")?;
    Ok(())
}

/// Moves an experiment and all its runs to `stage` (MLflow deletes/restores runs with it).
pub async fn set_experiment_stage(
    conn: &mut AnyConnection,
    id: i64,
    stage: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3")
        .bind(stage)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("failed to update experiment lifecycle stage")?;
    let deleted_time = (stage != LIFECYCLE_ACTIVE).then_some(now);
    sqlx::query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3")
        .bind(stage)
        .bind(deleted_time)
        .bind(id)
        .execute(conn)
        .await
        .context("failed to update lifecycle stage of the experiment's runs")?;
    Ok(())
}

pub async fn upsert_experiment_tag(
    conn: &mut AnyConnection,
    id: i64,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(key)
    .bind(value)
    .execute(conn)
    .await
    .context("failed to set experiment tag")?;
    Ok(())
}

/// Deletes a tag; returns whether it existed.
pub async fn delete_experiment_tag(conn: &mut AnyConnection, id: i64, key: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
        .bind(id)
        .bind(key)
        .execute(conn)
        .await
        .context("failed to delete experiment tag")?;
    Ok(done.rows_affected() > 0)
}

/// Runs a built experiments query (`SELECT <EXPERIMENT_COLUMNS> …`) and attaches tags.
pub async fn fetch_experiments(db: &Db, q: &SqlBuilder) -> Result<Vec<Experiment>> {
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to search experiments")?;
    let mut exps = rows
        .iter()
        .map(experiment_from_row)
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<i64> = exps
        .iter()
        .filter_map(|e| e.experiment_id.parse().ok())
        .collect();
    let mut tags = experiment_tags(db, &ids).await?;
    for e in &mut exps {
        if let Some(t) = e
            .experiment_id
            .parse()
            .ok()
            .and_then(|id: i64| tags.remove(&id))
        {
            e.tags = t;
        }
    }
    Ok(exps)
}

/// Column list for `SELECT … FROM experiments e`.
pub fn experiment_select() -> String {
    EXPERIMENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Id of the experiment with this name, read on the caller's connection.
pub async fn experiment_by_name_in(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await
        .context("failed to look up experiment by name")
}

pub async fn experiment_artifact_location(conn: &mut AnyConnection, id: i64) -> Result<String> {
    sqlx::query_scalar("SELECT artifact_location FROM experiments WHERE experiment_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .context("failed to read experiment artifact location")
}
