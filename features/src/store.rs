//! SQL of the feature store (migration 0007): table metadata and tags, the online store's
//! rows, and lineage.

use std::collections::BTreeMap;

use ferroflow_core::{Db, Error, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{Column, FeatureTable, OnlinePublication};

const COLUMNS: &str = "name, primary_keys, timestamp_key, description, table_schema, location, \
     managed, creation_time, last_updated_time, created_by, last_updated_by, online_version, \
     online_published_time";

fn decode(row: &AnyRow) -> Result<FeatureTable> {
    let d = "failed to decode a feature table";
    let keys: String = row.try_get(1).context(d)?;
    let schema: String = row.try_get(4).context(d)?;
    let online_version: Option<i64> = row.try_get(11).context(d)?;
    let online_time: Option<i64> = row.try_get(12).context(d)?;
    Ok(FeatureTable {
        name: row.try_get(0).context(d)?,
        primary_keys: serde_json::from_str(&keys)
            .map_err(|e| Error::internal(format!("{d}: {e}")))?,
        timestamp_key: row.try_get(2).context(d)?,
        description: row.try_get(3).context(d)?,
        tags: BTreeMap::new(),
        schema: serde_json::from_str::<Vec<Column>>(&schema)
            .map_err(|e| Error::internal(format!("{d}: {e}")))?,
        location: row.try_get(5).context(d)?,
        managed: row.try_get::<i64, _>(6).context(d)? != 0,
        creation_timestamp: row.try_get(7).context(d)?,
        last_updated_timestamp: row.try_get(8).context(d)?,
        created_by: row.try_get(9).context(d)?,
        last_updated_by: row.try_get(10).context(d)?,
        online: online_version
            .zip(online_time)
            .map(|(version, t)| OnlinePublication {
                version,
                published_timestamp: t,
            }),
    })
}

async fn tags_of(db: &Db, name: &str) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT key, value FROM feature_table_tags WHERE table_name = $1")
        .bind(name)
        .fetch_all(db.reader())
        .await
        .context("failed to read feature table tags")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).context("failed to decode a tag")?,
                r.try_get(1).context("failed to decode a tag")?,
            ))
        })
        .collect()
}

/// A table's metadata without its tags (what lookups and writes need).
pub async fn get(db: &Db, name: &str) -> Result<Option<FeatureTable>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM feature_tables WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db.reader())
    .await
    .context("failed to read feature table")?;
    match row {
        None => Ok(None),
        Some(row) => decode(&row).map(Some),
    }
}

/// A table's metadata with its tags (what describe shows).
pub async fn get_with_tags(db: &Db, name: &str) -> Result<Option<FeatureTable>> {
    match get(db, name).await? {
        None => Ok(None),
        Some(mut t) => {
            t.tags = tags_of(db, name).await?;
            Ok(Some(t))
        }
    }
}

pub async fn insert(db: &Db, t: &FeatureTable) -> Result<()> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to start a transaction")?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO feature_tables ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL)"
    ))
    .bind(&t.name)
    .bind(serde_json::to_string(&t.primary_keys).unwrap_or_default())
    .bind(t.timestamp_key.clone())
    .bind(&t.description)
    .bind(serde_json::to_string(&t.schema).unwrap_or_default())
    .bind(&t.location)
    .bind(t.managed as i64)
    .bind(t.creation_timestamp)
    .bind(t.last_updated_timestamp)
    .bind(&t.created_by)
    .bind(&t.last_updated_by)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("unique") || text.contains("duplicate") {
            return Err(Error::already_exists(format!(
                "Feature table '{}' already exists",
                t.name
            )));
        }
        return Err(Error::storage("failed to store feature table", e));
    }
    for (k, v) in &t.tags {
        sqlx::query("INSERT INTO feature_table_tags (table_name, key, value) VALUES ($1, $2, $3)")
            .bind(&t.name)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await
            .context("failed to store feature table tag")?;
    }
    tx.commit()
        .await
        .context("failed to commit feature table")?;
    Ok(())
}

/// Marks the table updated (a write, a description change).
pub async fn touch(db: &Db, name: &str, user: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE feature_tables SET last_updated_time = $1, last_updated_by = $2 WHERE name = $3",
    )
    .bind(now)
    .bind(user)
    .bind(name)
    .execute(db.writer())
    .await
    .context("failed to update feature table")?;
    Ok(())
}

pub async fn set_description(
    db: &Db,
    name: &str,
    description: &str,
    user: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE feature_tables SET description = $1, last_updated_time = $2, \
         last_updated_by = $3 WHERE name = $4",
    )
    .bind(description)
    .bind(now)
    .bind(user)
    .bind(name)
    .execute(db.writer())
    .await
    .context("failed to update feature table")?;
    Ok(())
}

pub async fn set_tag(db: &Db, name: &str, key: &str, value: &str) -> Result<()> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to start a transaction")?;
    sqlx::query("DELETE FROM feature_table_tags WHERE table_name = $1 AND key = $2")
        .bind(name)
        .bind(key)
        .execute(&mut *tx)
        .await
        .context("failed to set tag")?;
    sqlx::query("INSERT INTO feature_table_tags (table_name, key, value) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .context("failed to set tag")?;
    tx.commit().await.context("failed to set tag")?;
    Ok(())
}

pub async fn delete_tag(db: &Db, name: &str, key: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM feature_table_tags WHERE table_name = $1 AND key = $2")
        .bind(name)
        .bind(key)
        .execute(db.writer())
        .await
        .context("failed to delete tag")?;
    Ok(done.rows_affected() > 0)
}

/// Deletes the metadata, tags, online rows and lineage of a table, in one transaction.
pub async fn delete(db: &Db, name: &str) -> Result<()> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to start a transaction")?;
    for sql in [
        "DELETE FROM feature_table_tags WHERE table_name = $1",
        "DELETE FROM online_features WHERE table_name = $1",
        "DELETE FROM feature_lineage WHERE table_name = $1",
        "DELETE FROM feature_tables WHERE name = $1",
    ] {
        sqlx::query(sql)
            .bind(name)
            .execute(&mut *tx)
            .await
            .context("failed to delete feature table")?;
    }
    tx.commit()
        .await
        .context("failed to delete feature table")?;
    Ok(())
}

/// One page of tables whose names match the SQL conditions (already validated).
pub async fn search(
    db: &Db,
    conditions: &[(String, Vec<String>)],
    offset: i64,
    limit: i64,
) -> Result<Vec<FeatureTable>> {
    let mut sql = format!("SELECT {COLUMNS} FROM feature_tables");
    let mut binds: Vec<&String> = Vec::new();
    for (i, (cond, values)) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        let mut c = cond.clone();
        for v in values {
            binds.push(v);
            c = c.replacen('?', &format!("${}", binds.len()), 1);
        }
        sql.push_str(&c);
    }
    sql.push_str(&format!(" ORDER BY name LIMIT {limit} OFFSET {offset}"));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q
        .fetch_all(db.reader())
        .await
        .context("failed to search feature tables")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut t = decode(row)?;
        t.tags = tags_of(db, &t.name).await?;
        out.push(t);
    }
    Ok(out)
}

// ---------------------------------------------------------------- online store

/// A publication in progress: one transaction, committed with the published version.
pub struct Publication<'a> {
    tx: sqlx::Transaction<'a, sqlx::Any>,
    name: String,
}

/// Starts a publication; a full one first clears the table's online rows.
pub async fn publish_begin<'a>(db: &'a Db, name: &str, full: bool) -> Result<Publication<'a>> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to start a transaction")?;
    if full {
        sqlx::query("DELETE FROM online_features WHERE table_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .context("failed to clear online rows")?;
    }
    Ok(Publication {
        tx,
        name: name.to_string(),
    })
}

impl Publication<'_> {
    /// Upserts `(entity_key, event_time, features JSON)` rows (keys unique within the call); a
    /// row older than the stored one for its key does not replace it.
    pub async fn upsert(&mut self, rows: &[(String, i64, String)]) -> Result<()> {
        for chunk in rows.chunks(200) {
            let mut sql = String::from(
                "INSERT INTO online_features (table_name, entity_key, event_time, features) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let b = i * 4;
                sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
            }
            sql.push_str(
                " ON CONFLICT (table_name, entity_key) DO UPDATE SET event_time = \
                 excluded.event_time, features = excluded.features \
                 WHERE excluded.event_time >= online_features.event_time",
            );
            let mut q = sqlx::query(&sql);
            for (key, t, features) in chunk {
                q = q.bind(&self.name).bind(key).bind(*t).bind(features);
            }
            q.execute(&mut *self.tx)
                .await
                .context("failed to publish online rows")?;
        }
        Ok(())
    }

    /// Deletes the rows of these keys (keys the table no longer has).
    pub async fn delete(&mut self, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(500) {
            let sql = with_key_list(
                "DELETE FROM online_features WHERE table_name = $1 AND entity_key IN (",
                chunk.len(),
            );
            let mut q = sqlx::query(&sql).bind(&self.name);
            for k in chunk {
                q = q.bind(k);
            }
            q.execute(&mut *self.tx)
                .await
                .context("failed to delete online rows")?;
        }
        Ok(())
    }

    /// Records the published version and commits.
    pub async fn commit(mut self, version: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE feature_tables SET online_version = $1, online_published_time = $2 \
             WHERE name = $3",
        )
        .bind(version)
        .bind(now)
        .bind(&self.name)
        .execute(&mut *self.tx)
        .await
        .context("failed to record the publication")?;
        self.tx
            .commit()
            .await
            .context("failed to commit the publication")?;
        Ok(())
    }
}

/// `head` (ending in `IN (`) completed with `n` placeholders `$2, $3, …` and `)`: the key
/// list after the table name bound as `$1`.
fn with_key_list(head: &str, n: usize) -> String {
    let mut sql = String::from(head);
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("${}", i + 2));
    }
    sql.push(')');
    sql
}

/// Records a publication made to an external online store.
pub async fn record_publication(db: &Db, name: &str, version: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE feature_tables SET online_version = $1, online_published_time = $2 WHERE name = $3",
    )
    .bind(version)
    .bind(now)
    .bind(name)
    .execute(db.writer())
    .await
    .context("failed to record the publication")?;
    Ok(())
}

pub async fn drop_online(db: &Db, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM online_features WHERE table_name = $1")
        .bind(name)
        .execute(db.writer())
        .await
        .context("failed to clear online rows")?;
    Ok(())
}

/// The stored feature JSON of each key (None when absent), in key order.
pub async fn lookup(db: &Db, name: &str, keys: &[String]) -> Result<Vec<Option<String>>> {
    let mut found = std::collections::HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let sql = with_key_list(
            "SELECT entity_key, features FROM online_features WHERE table_name = $1 AND entity_key IN (",
            chunk.len(),
        );
        let mut q = sqlx::query(&sql).bind(name);
        for k in chunk {
            q = q.bind(k);
        }
        let rows = q
            .fetch_all(db.reader())
            .await
            .context("failed to look up online rows")?;
        for r in rows {
            let k: String = r.try_get(0).context("failed to decode an online row")?;
            let v: String = r.try_get(1).context("failed to decode an online row")?;
            found.insert(k, v);
        }
    }
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

// ---------------------------------------------------------------- lineage

pub async fn record_lineage(
    db: &Db,
    run_id: &str,
    tables: &[(String, i64)],
    now: i64,
) -> Result<()> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to start a transaction")?;
    for (name, version) in tables {
        sqlx::query(
            "INSERT INTO feature_lineage (table_name, table_version, run_id, creation_time) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (table_name, table_version, run_id) DO NOTHING",
        )
        .bind(name)
        .bind(*version)
        .bind(run_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("failed to record lineage")?;
    }
    tx.commit().await.context("failed to record lineage")?;
    Ok(())
}

/// Runs that read a table: `(run_id, table_version)`, newest first.
pub async fn runs_of(db: &Db, name: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT run_id, table_version FROM feature_lineage WHERE table_name = $1 \
         ORDER BY creation_time DESC, run_id",
    )
    .bind(name)
    .fetch_all(db.reader())
    .await
    .context("failed to read lineage")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).context("lineage")?,
                r.try_get(1).context("lineage")?,
            ))
        })
        .collect()
}

/// Registered model versions built from runs that read a table: `(model, version, table_version)`.
pub async fn model_versions_of(db: &Db, name: &str) -> Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT mv.name, mv.version, l.table_version FROM feature_lineage l \
         JOIN model_versions mv ON mv.run_id = l.run_id WHERE l.table_name = $1 \
         ORDER BY mv.name, mv.version",
    )
    .bind(name)
    .fetch_all(db.reader())
    .await
    .context("failed to read lineage")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).context("lineage")?,
                r.try_get(1).context("lineage")?,
                r.try_get(2).context("lineage")?,
            ))
        })
        .collect()
}

/// Feature tables (and versions) behind a model version, through its run.
pub async fn tables_of_model_version(
    db: &Db,
    model: &str,
    version: i64,
) -> Result<Option<Vec<(String, i64, String)>>> {
    let run: Option<String> =
        sqlx::query_scalar("SELECT run_id FROM model_versions WHERE name = $1 AND version = $2")
            .bind(model)
            .bind(version)
            .fetch_optional(db.reader())
            .await
            .context("failed to read model version")?;
    let Some(run) = run else { return Ok(None) };
    let rows = sqlx::query(
        "SELECT table_name, table_version, run_id FROM feature_lineage WHERE run_id = $1 \
         ORDER BY table_name, table_version",
    )
    .bind(&run)
    .fetch_all(db.reader())
    .await
    .context("failed to read lineage")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).context("lineage")?,
                r.try_get(1).context("lineage")?,
                r.try_get(2).context("lineage")?,
            ))
        })
        .map(|r: Result<(String, i64, String)>| r)
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
