//! SQL of serving endpoints: the `serving_endpoints` table (migration 0005).

use ferroflow_core::{Db, Result, StorageContext};
use sqlx::Row;

/// An endpoint row: its name, config JSON and timestamps.
pub struct StoredEndpoint {
    pub name: String,
    pub config: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

pub async fn load_all(db: &Db) -> Result<Vec<StoredEndpoint>> {
    let rows = sqlx::query(
        "SELECT name, config, creation_timestamp, last_updated_timestamp \
         FROM serving_endpoints ORDER BY name",
    )
    .fetch_all(db.reader())
    .await
    .context("failed to read serving endpoints")?;
    let decode = "failed to decode a serving endpoint";
    rows.iter()
        .map(|row| {
            Ok(StoredEndpoint {
                name: row.try_get(0).context(decode)?,
                config: row.try_get(1).context(decode)?,
                creation_timestamp: row.try_get(2).context(decode)?,
                last_updated_timestamp: row.try_get(3).context(decode)?,
            })
        })
        .collect()
}

pub async fn insert(db: &Db, name: &str, config: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO serving_endpoints (name, config, creation_timestamp, \
         last_updated_timestamp) VALUES ($1, $2, $3, $4)",
    )
    .bind(name)
    .bind(config)
    .bind(now)
    .bind(now)
    .execute(db.writer())
    .await
    .context("failed to store serving endpoint")?;
    Ok(())
}

pub async fn update(db: &Db, name: &str, config: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE serving_endpoints SET config = $1, last_updated_timestamp = $2 WHERE name = $3",
    )
    .bind(config)
    .bind(now)
    .bind(name)
    .execute(db.writer())
    .await
    .context("failed to update serving endpoint")?;
    Ok(())
}

pub async fn delete(db: &Db, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM serving_endpoints WHERE name = $1")
        .bind(name)
        .execute(db.writer())
        .await
        .context("failed to delete serving endpoint")?;
    Ok(())
}
