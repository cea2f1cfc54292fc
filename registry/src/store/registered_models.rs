//! Registered models: their rows, create, rename, describe, delete, and latest versions.

use ferroflow_core::sql::SqlBuilder;
use ferroflow_core::{Backend, Error, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::CHUNK;

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

/// Stamps the model's last update as the first statement of a transaction, to take the
/// model's write lock until commit, so that writers of one model's versions run one after the
/// other: on PostgreSQL the model row's lock (a concurrent writer waits here, then reads what
/// this one committed); on SQLite the database write lock, taken with `busy_timeout` before any
/// read, instead of later from a read snapshot that another connection (a second server on the
/// same file) may have outdated, which SQLite refuses with "database is locked".
/// A missing model matches no row and locks nothing; the caller's checks report it.
pub async fn lock_model(conn: &mut AnyConnection, name: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("failed to lock registered model")?;
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
