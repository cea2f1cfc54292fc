//! Tags of registered models and model versions, and registered model aliases.

use std::collections::HashMap;

use ferroflow_core::sql::SqlBuilder;
use ferroflow_core::{Backend, Result, StorageContext};
use sqlx::{AnyConnection, Row};

use super::CHUNK;
use crate::model::{Alias, KeyValue};

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
