//! All SQL of the model registry. Static statements use `$N` placeholders (SQLite and
//! PostgreSQL both accept them); statements built at run time go through tracking's
//! backend-aware `SqlBuilder`. Every function takes a connection so the service decides what
//! runs in one transaction.

use std::collections::HashMap;

use ferroflow_core::search::CompareOp;
use ferroflow_core::search_registry::{
    RegistryComparison, RegistryKey, RegistryOrderBy, RegistryValue,
};
use ferroflow_core::sql::SqlBuilder;
use ferroflow_core::{Backend, Error, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::model::{Alias, KeyValue, ModelVersion};

/// Keys per `IN` list, well under both backends' bound-parameter limits.
const CHUNK: usize = 500;

/// A `registered_models` row.
#[derive(Debug, Clone)]
pub struct ModelRow {
    pub name: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: Option<String>,
}

fn model_row(row: &AnyRow) -> Result<ModelRow> {
    Ok(ModelRow {
        name: row.try_get("name").context("read registered model")?,
        creation_time: row
            .try_get("creation_time")
            .context("read registered model")?,
        last_updated_time: row
            .try_get("last_updated_time")
            .context("read registered model")?,
        description: row
            .try_get::<Option<String>, _>("description")
            .context("read registered model")?,
    })
}

const VERSION_COLUMNS: &str = "v.name, v.version, v.creation_time, v.last_updated_time, \
    v.description, v.user_id, v.current_stage, v.source, v.run_id, v.run_link, v.status, \
    v.status_message, v.model_id";

fn version_row(row: &AnyRow) -> Result<ModelVersion> {
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

/// A unique-key violation on a model name (a concurrent create or rename) is
/// RESOURCE_ALREADY_EXISTS; anything else a storage error.
fn unique_violation(err: sqlx::Error, name: &str, context: &str) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::already_exists(format!("Registered Model (name={name}) already exists."))
        }
        _ => Error::storage(context, err),
    }
}

// ----- registered models -----

pub async fn get_model(conn: &mut AnyConnection, name: &str) -> Result<Option<ModelRow>> {
    let row = sqlx::query(
        "SELECT name, creation_time, last_updated_time, description \
         FROM registered_models WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .context("failed to read registered model")?;
    row.as_ref().map(model_row).transpose()
}

pub async fn get_models(
    conn: &mut AnyConnection,
    backend: Backend,
    names: &[String],
) -> Result<Vec<ModelRow>> {
    let mut out = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            "SELECT name, creation_time, last_updated_time, description \
             FROM registered_models WHERE name IN ",
        );
        q.bind_text_list(chunk.iter().map(String::as_str));
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read registered models")?
        {
            out.push(model_row(&row)?);
        }
    }
    Ok(out)
}

pub async fn insert_model(
    conn: &mut AnyConnection,
    name: &str,
    now: i64,
    description: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description, next_version) \
         VALUES ($1, $2, $2, $3, 1)",
    )
    .bind(name)
    .bind(now)
    .bind(description)
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, name, "failed to insert registered model"))?;
    Ok(())
}

pub async fn touch_model(conn: &mut AnyConnection, name: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("failed to update registered model")?;
    Ok(())
}

pub async fn set_model_description(
    conn: &mut AnyConnection,
    name: &str,
    description: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE registered_models SET description = $1, last_updated_time = $2 WHERE name = $3",
    )
    .bind(description)
    .bind(now)
    .bind(name)
    .execute(&mut *conn)
    .await
    .context("failed to update registered model")?;
    Ok(())
}

/// Renames a model; versions, their tags and aliases follow through `ON UPDATE CASCADE`.
pub async fn rename_model(
    conn: &mut AnyConnection,
    name: &str,
    new_name: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE registered_models SET name = $1, last_updated_time = $2 WHERE name = $3")
        .bind(new_name)
        .bind(now)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_violation(e, new_name, "failed to rename registered model"))?;
    sqlx::query("UPDATE model_versions SET last_updated_time = $1 WHERE name = $2")
        .bind(now)
        .bind(new_name)
        .execute(&mut *conn)
        .await
        .context("failed to rename model versions")?;
    Ok(())
}

/// Deletes a model; versions, tags and aliases go with it (`ON DELETE CASCADE`).
pub async fn delete_model(conn: &mut AnyConnection, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM registered_models WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("failed to delete registered model")?;
    Ok(())
}

pub async fn set_model_tag(
    conn: &mut AnyConnection,
    name: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await
    .context("failed to set registered model tag")?;
    Ok(())
}

pub async fn delete_model_tag(conn: &mut AnyConnection, name: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2")
        .bind(name)
        .bind(key)
        .execute(&mut *conn)
        .await
        .context("failed to delete registered model tag")?;
    Ok(())
}

/// Tags of the given models, by model name, in key order.
pub async fn model_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    names: &[String],
) -> Result<HashMap<String, Vec<KeyValue>>> {
    let mut out: HashMap<String, Vec<KeyValue>> = HashMap::new();
    for chunk in names.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            "SELECT name, key, value FROM registered_model_tags WHERE name IN ",
        );
        q.bind_text_list(chunk.iter().map(String::as_str))
            .push(" ORDER BY name, key");
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read registered model tags")?
        {
            out.entry(row.try_get("name").context("read tag")?)
                .or_default()
                .push(KeyValue {
                    key: row.try_get("key").context("read tag")?,
                    value: row.try_get("value").context("read tag")?,
                });
        }
    }
    Ok(out)
}

/// Aliases of the given models, by model name, in alias order.
pub async fn model_aliases(
    conn: &mut AnyConnection,
    backend: Backend,
    names: &[String],
) -> Result<HashMap<String, Vec<Alias>>> {
    let mut out: HashMap<String, Vec<Alias>> = HashMap::new();
    for chunk in names.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            "SELECT name, alias, version FROM registered_model_aliases WHERE name IN ",
        );
        q.bind_text_list(chunk.iter().map(String::as_str))
            .push(" ORDER BY name, alias");
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read registered model aliases")?
        {
            out.entry(row.try_get("name").context("read alias")?)
                .or_default()
                .push(Alias {
                    alias: row.try_get("alias").context("read alias")?,
                    version: row
                        .try_get::<i64, _>("version")
                        .context("read alias")?
                        .to_string(),
                });
        }
    }
    Ok(out)
}

/// The latest version of each stage of the given models, as (name, version), each model's
/// stages in the order their first version was created (MLflow's order).
pub async fn latest_version_keys(
    conn: &mut AnyConnection,
    backend: Backend,
    names: &[String],
) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            backend,
            "SELECT name, MAX(version) AS latest, MIN(version) AS first FROM model_versions \
             WHERE name IN ",
        );
        q.bind_text_list(chunk.iter().map(String::as_str))
            .push(" GROUP BY name, current_stage ORDER BY name, first");
        for row in q
            .query()
            .fetch_all(&mut *conn)
            .await
            .context("failed to read latest versions")?
        {
            out.push((
                row.try_get("name").context("read latest version")?,
                row.try_get("latest").context("read latest version")?,
            ));
        }
    }
    Ok(out)
}

// ----- model versions -----

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

async fn fill_version_tags(
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

/// Aliases pointing at one version, in alias order.
pub async fn version_aliases(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT alias FROM registered_model_aliases WHERE name = $1 AND version = $2 ORDER BY alias",
    )
    .bind(name)
    .bind(version)
    .fetch_all(&mut *conn)
    .await
    .context("failed to read model version aliases")
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

pub async fn set_version_tag(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(version)
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await
    .context("failed to set model version tag")?;
    Ok(())
}

pub async fn delete_version_tag(
    conn: &mut AnyConnection,
    name: &str,
    version: i64,
    key: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3")
        .bind(name)
        .bind(version)
        .bind(key)
        .execute(&mut *conn)
        .await
        .context("failed to delete model version tag")?;
    Ok(())
}

// ----- aliases -----

pub async fn set_alias(
    conn: &mut AnyConnection,
    name: &str,
    alias: &str,
    version: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(name)
    .bind(alias)
    .bind(version)
    .execute(&mut *conn)
    .await
    .context("failed to set registered model alias")?;
    Ok(())
}

pub async fn delete_alias(conn: &mut AnyConnection, name: &str, alias: &str) -> Result<()> {
    sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2")
        .bind(name)
        .bind(alias)
        .execute(&mut *conn)
        .await
        .context("failed to delete registered model alias")?;
    Ok(())
}

pub async fn alias_version(
    conn: &mut AnyConnection,
    name: &str,
    alias: &str,
) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2",
    )
    .bind(name)
    .bind(alias)
    .fetch_optional(&mut *conn)
    .await
    .context("failed to read registered model alias")
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

// ----- search -----

fn push_text_comparison(q: &mut SqlBuilder, column: &str, op: CompareOp, value: &str) {
    match op {
        CompareOp::ILike => {
            q.push(&format!("LOWER({column}) LIKE LOWER("))
                .bind_text(value)
                .push(")");
        }
        _ => {
            q.push(&format!("{column} {} ", sql_op(op)))
                .bind_text(value);
        }
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    // ILIKE is written as LOWER(..) LIKE LOWER(..) by the caller; the rest are plain SQL.
    match op {
        CompareOp::ILike => "LIKE",
        other => other.as_str(),
    }
}

fn push_comparison(
    q: &mut SqlBuilder,
    c: &RegistryComparison,
    alias: &str,
    tag_table: &str,
    tag_join: &str,
) {
    q.push(" AND ");
    match (&c.key, &c.value) {
        (RegistryKey::Tag(key), RegistryValue::Text(v)) => {
            q.push(&format!(
                "EXISTS (SELECT 1 FROM {tag_table} t WHERE {tag_join} AND t.key = "
            ))
            .bind_text(key)
            .push(" AND ");
            push_text_comparison(q, "t.value", c.op, v);
            q.push(")");
        }
        (RegistryKey::Attribute(attr), value) => {
            let column = match attr.as_str() {
                "name" => format!("{alias}.name"),
                "run_id" => format!("{alias}.run_id"),
                "source_path" => format!("{alias}.source"),
                _ => format!("{alias}.version"),
            };
            match value {
                RegistryValue::Text(v) => push_text_comparison(q, &column, c.op, v),
                RegistryValue::Int(n) => {
                    q.push(&format!("{column} {} ", sql_op(c.op))).bind_int(*n);
                }
                RegistryValue::List(items) => {
                    if items.is_empty() {
                        q.push(if c.op == CompareOp::In {
                            "1 = 0"
                        } else {
                            "1 = 1"
                        });
                    } else {
                        q.push(&format!("{column} {} ", sql_op(c.op)))
                            .bind_text_list(items.iter().map(String::as_str));
                    }
                }
            }
        }
        // The grammar gives tags only text values.
        (RegistryKey::Tag(_), _) => {
            q.push("1 = 0");
        }
    }
}

fn push_order(q: &mut SqlBuilder, order: &[RegistryOrderBy], alias: &str) {
    q.push(" ORDER BY ");
    for (i, o) in order.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        let column = match o.key.as_str() {
            "creation_timestamp" => "creation_time",
            "last_updated_timestamp" => "last_updated_time",
            "version_number" => "version",
            _ => "name",
        };
        q.push(&format!(
            "{alias}.{column} {}",
            if o.ascending { "ASC" } else { "DESC" }
        ));
    }
}

/// Names of the registered models matching `filter`, one page (`limit` rows from `offset`).
/// `exclude_prompts` leaves out models tagged `mlflow.prompt.is_prompt = 'true'` (an
/// anti-join, so models without the tag stay, unlike a tag `!=` term).
pub async fn search_models(
    conn: &mut AnyConnection,
    backend: Backend,
    filter: &[RegistryComparison],
    exclude_prompts: bool,
    order: &[RegistryOrderBy],
    offset: i64,
    limit: i64,
) -> Result<Vec<String>> {
    let mut q = SqlBuilder::new(
        backend,
        "SELECT r.name FROM registered_models r WHERE 1 = 1",
    );
    for c in filter {
        push_comparison(&mut q, c, "r", "registered_model_tags", "t.name = r.name");
    }
    if exclude_prompts {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.name = r.name \
             AND t.key = 'mlflow.prompt.is_prompt' AND t.value = 'true')",
        );
    }
    push_order(&mut q, order, "r");
    q.push(" LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    q.query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to search registered models")?
        .iter()
        .map(|r| r.try_get("name").context("read registered model name"))
        .collect()
}

/// The model versions matching `filter` (with tags), one page; `exclude_prompts` leaves out
/// versions of models any of whose versions is tagged `mlflow.prompt.is_prompt = 'true'`.
pub async fn search_versions(
    conn: &mut AnyConnection,
    backend: Backend,
    filter: &[RegistryComparison],
    exclude_prompts: bool,
    order: &[RegistryOrderBy],
    offset: i64,
    limit: i64,
) -> Result<Vec<ModelVersion>> {
    let mut q = SqlBuilder::new(
        backend,
        format!("SELECT {VERSION_COLUMNS} FROM model_versions v WHERE 1 = 1"),
    );
    for c in filter {
        push_comparison(
            &mut q,
            c,
            "v",
            "model_version_tags",
            "t.name = v.name AND t.version = v.version",
        );
    }
    if exclude_prompts {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM model_version_tags t WHERE t.name = v.name \
             AND t.key = 'mlflow.prompt.is_prompt' AND t.value = 'true')",
        );
    }
    push_order(&mut q, order, "v");
    q.push(" LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    let mut out = q
        .query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to search model versions")?
        .iter()
        .map(version_row)
        .collect::<Result<Vec<_>>>()?;
    fill_version_tags(conn, backend, &mut out).await?;
    Ok(out)
}
