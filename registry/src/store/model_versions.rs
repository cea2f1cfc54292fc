//! Model versions: version numbering, reads with their tags, description, stage and delete.

use std::collections::HashMap;

use ferroflow_core::sql::SqlBuilder;
use ferroflow_core::{Backend, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::aliases_tags::set_version_tag;
use super::CHUNK;
use crate::model::{KeyValue, ModelVersion};

pub(super) const VERSION_COLUMNS: &str =
    "v.name, v.version, v.creation_time, v.last_updated_time, \
    v.description, v.user_id, v.current_stage, v.source, v.run_id, v.run_link, v.status, \
    v.status_message, v.model_id";

pub(super) fn version_row(row: &AnyRow) -> Result<ModelVersion> {
    let ctx = "read model version";
    Ok(ModelVersion {
        name: row.try_get("name").context(ctx)?,
        version: row.try_get::<i64, _>("version").context(ctx)?.to_string(),
        creation_timestamp: row.try_get("creation_time").context(ctx)?,
        last_updated_timestamp: row.try_get("last_updated_time").context(ctx)?,
        user_id: row.try_get::<Option<String>, _>("user_id").context(ctx)?,
        current_stage: row.try_get("current_stage").context(ctx)?,
        description: row.try_get("description").context(ctx)?,
        source: row.try_get("source").context(ctx)?,
        run_id: row.try_get("run_id").context(ctx)?,
        status: row.try_get("status").context(ctx)?,
        status_message: row
            .try_get::<Option<String>, _>("status_message")
            .context(ctx)?,
        tags: Vec::new(),
        run_link: row.try_get("run_link").context(ctx)?,
        aliases: Vec::new(),
        model_id: row.try_get::<Option<String>, _>("model_id").context(ctx)?,
    })
}

/// Takes the model's next version number (never reused after deletes) and touches the model.
/// The UPDATE comes first so that on PostgreSQL it row-locks the model: concurrent creates
/// queue on the lock and each reads its own increment.
pub async fn allocate_version(conn: &mut AnyConnection, name: &str, now: i64) -> Result<i64> {
    sqlx::query(
        "UPDATE registered_models SET next_version = next_version + 1, last_updated_time = $1 \
         WHERE name = $2",
    )
    .bind(now)
    .bind(name)
    .execute(&mut *conn)
    .await
    .context("failed to allocate model version")?;
    let next: i64 =
        sqlx::query_scalar("SELECT next_version FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .context("failed to read next model version")?;
    Ok(next - 1)
}

pub async fn insert_version(conn: &mut AnyConnection, mv: &ModelVersion) -> Result<()> {
    sqlx::query(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, \
         user_id, current_stage, source, run_id, run_link, status, status_message, model_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&mv.name)
    .bind(mv.number())
    .bind(mv.creation_timestamp)
    .bind(mv.last_updated_timestamp)
    .bind(&mv.description)
    .bind(mv.user_id.as_deref())
    .bind(&mv.current_stage)
    .bind(&mv.source)
    .bind(&mv.run_id)
    .bind(&mv.run_link)
    .bind(&mv.status)
    .bind(mv.status_message.as_deref())
    .bind(mv.model_id.as_deref())
    .execute(&mut *conn)
    .await
    .context("failed to insert model version")?;
    for tag in &mv.tags {
        set_version_tag(conn, &mv.name, mv.number(), &tag.key, &tag.value).await?;
    }
    Ok(())
}

/// One version with its tags (aliases are left to the caller).
pub async fn get_version(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
    version: i64,
) -> Result<Option<ModelVersion>> {
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM model_versions v WHERE v.name = $1 AND v.version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .context("failed to read model version")?;
    let Some(row) = row else { return Ok(None) };
    let mut versions = vec![version_row(&row)?];
    fill_version_tags(conn, backend, &mut versions).await?;
    Ok(versions.pop())
}

/// The given versions with their tags, in the order of `keys` (missing ones skipped).
pub async fn get_versions(
    conn: &mut AnyConnection,
    backend: Backend,
    keys: &[(String, i64)],
) -> Result<Vec<ModelVersion>> {
    let mut found: HashMap<(String, i64), ModelVersion> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            format!("SELECT {VERSION_COLUMNS} FROM model_versions v WHERE "),
        );
        push_key_match(&mut q, chunk, "v.");
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read model versions")?
        {
            let mv = version_row(&row)?;
            found.insert((mv.name.clone(), mv.number()), mv);
        }
    }
    let mut out: Vec<ModelVersion> = keys.iter().filter_map(|k| found.remove(k)).collect();
    fill_version_tags(conn, backend, &mut out).await?;
    Ok(out)
}

/// `((name = ? AND version = ?) OR …)`
fn push_key_match(q: &mut SqlBuilder, keys: &[(String, i64)], prefix: &str) {
    q.push("(");
    for (i, (name, version)) in keys.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push(&format!("({prefix}name = "))
            .bind_text(name)
            .push(&format!(" AND {prefix}version = "))
            .bind_int(*version)
            .push(")");
    }
    if keys.is_empty() {
        q.push("1 = 0");
    }
    q.push(")");
}

pub(super) async fn fill_version_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    versions: &mut [ModelVersion],
) -> Result<()> {
    let keys: Vec<(String, i64)> = versions
        .iter()
        .map(|v| (v.name.clone(), v.number()))
        .collect();
    let mut tags: HashMap<(String, i64), Vec<KeyValue>> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            "SELECT t.name, t.version, t.key, t.value FROM model_version_tags t WHERE ",
        );
        push_key_match(&mut q, chunk, "t.");
        q.push(" ORDER BY t.name, t.version, t.key");
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read model version tags")?
        {
            tags.entry((
                row.try_get("name").context("read tag")?,
                row.try_get("version").context("read tag")?,
            ))
            .or_default()
            .push(KeyValue {
                key: row.try_get("key").context("read tag")?,
                value: row.try_get("value").context("read tag")?,
            });
        }
    }
    for v in versions.iter_mut() {
        v.tags = tags
            .remove(&(v.name.clone(), v.number()))
            .unwrap_or_default();
    }
    Ok(())
}

pub async fn set_version_description(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
    description: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE model_versions SET description = $1, last_updated_time = $2 \
         WHERE name = $3 AND version = $4",
    )
    .bind(description)
    .bind(now)
    .bind(name)
    .bind(version)
    .execute(&mut *conn)
    .await
    .context("failed to update model version")?;
    Ok(())
}

pub async fn set_version_stage(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
    stage: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE model_versions SET current_stage = $1, last_updated_time = $2 \
         WHERE name = $3 AND version = $4",
    )
    .bind(stage)
    .bind(now)
    .bind(name)
    .bind(version)
    .execute(&mut *conn)
    .await
    .context("failed to transition model version")?;
    Ok(())
}

/// Moves every other version of the model in `stage` to Archived.
pub async fn archive_other_versions(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
    stage: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = $1 \
         WHERE name = $2 AND version <> $3 AND current_stage = $4",
    )
    .bind(now)
    .bind(name)
    .bind(version)
    .bind(stage)
    .execute(&mut *conn)
    .await
    .context("failed to archive model versions")?;
    Ok(())
}

/// Deletes a version; its tags and aliases go with it (`ON DELETE CASCADE`).
pub async fn delete_version(conn: &mut AnyConnection, name: &str, version: i64) -> Result<()> {
    sqlx::query("DELETE FROM model_versions WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(version)
        .execute(&mut *conn)
        .await
        .context("failed to delete model version")?;
    Ok(())
}

/// The highest version of a model, optionally only among versions in `stage`.
pub async fn max_version(
    conn: &mut AnyConnection,
    name: &str,
    stage: Option<&str>,
) -> Result<Option<i64>> {
    let q = match stage {
        Some(stage) => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM model_versions WHERE name = $1 AND current_stage = $2",
        )
        .bind(name)
        .bind(stage),
        None => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM model_versions WHERE name = $1",
        )
        .bind(name),
    };
    q.fetch_one(&mut *conn)
        .await
        .context("failed to read latest model version")
}
