//! The online store: the latest row per primary key, copied from a feature table's Delta
//! version ("publish") and read by key at serving time ("lookup").
//!
//! The rows live in the backend store (`online_features`), keyed by table and a canonical
//! JSON rendering of the key: every replica reads the same rows, so replicas agree as soon as
//! a publication commits, and the publication and its recorded version commit together.

use std::collections::{HashMap, HashSet};

use deltalake::arrow::array::{Array, ArrayRef, RecordBatch};
use deltalake::arrow::array::{Int64Array, UInt32Array};
use deltalake::arrow::compute::{cast, take};
use deltalake::arrow::datatypes::{DataType, TimeUnit};
use deltalake::arrow::json::writer::LineDelimited;
use deltalake::arrow::json::WriterBuilder;
use deltalake::datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use ferroflow_core::{now_millis, Db, Error, Result};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::delta::{At, DeltaStore};
use crate::model::FeatureTable;
use crate::service::FeatureService;
use crate::store;

/// Where published rows are kept.
#[derive(Clone)]
pub enum OnlineStore {
    /// The backend store's `online_features` table.
    Sql(Db),
    /// A Redis hash per table (`ferroflow:online:<table>`: key → `<event time>|<features>`).
    Redis(redis::aio::ConnectionManager),
}

/// Upserts `(key, event time, features)` triples into a hash unless the stored row is newer.
const REDIS_UPSERT: &str = r#"
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local t = tonumber(ARGV[i + 1])
  if (not cur) or tonumber(string.match(cur, '^(-?%d+)|')) <= t then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. '|' .. ARGV[i + 2])
  end
end
return 0
"#;

fn redis_key(name: &str) -> String {
    format!("ferroflow:online:{name}")
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::new(
        ferroflow_core::ErrorCode::TemporarilyUnavailable,
        format!("online store (Redis): {e}"),
    )
}

impl OnlineStore {
    /// Opens the store named by `--online-store`: `sql` (the backend store) or a
    /// `redis://host:port[/db]` URL.
    pub async fn open(spec: Option<&str>, db: &Db) -> Result<OnlineStore> {
        match spec.map(str::trim).filter(|s| !s.is_empty() && *s != "sql") {
            None => Ok(OnlineStore::Sql(db.clone())),
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                let client = redis::Client::open(url).map_err(|e| {
                    Error::invalid(format!("Invalid online store URL '{url}': {e}"))
                })?;
                let conn = client.get_connection_manager().await.map_err(|e| {
                    Error::invalid(format!("Cannot connect to the online store '{url}': {e}"))
                })?;
                Ok(OnlineStore::Redis(conn))
            }
            Some(other) => Err(Error::invalid(format!(
                "Unknown online store '{other}': use sql or redis://host:port"
            ))),
        }
    }

    pub async fn drop_table(&self, name: &str) -> Result<()> {
        match self {
            OnlineStore::Sql(db) => store::drop_online(db, name).await,
            OnlineStore::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("DEL")
                    .arg(redis_key(name))
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(redis_error)?;
                Ok(())
            }
        }
    }

    async fn get(&self, name: &str, keys: &[String]) -> Result<Vec<Option<String>>> {
        match self {
            OnlineStore::Sql(db) => store::lookup(db, name, keys).await,
            OnlineStore::Redis(conn) => {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let mut conn = conn.clone();
                let found: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(redis_key(name))
                    .arg(keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                Ok(found
                    .into_iter()
                    .map(|v| v.and_then(|s| s.split_once('|').map(|(_, f)| f.to_string())))
                    .collect())
            }
        }
    }

    /// Starts a publication of `name` (a full one replaces every row when it commits).
    async fn begin<'a>(&'a self, db: &'a Db, name: &str, full: bool) -> Result<Writer<'a>> {
        match self {
            OnlineStore::Sql(_) => Ok(Writer::Sql(store::publish_begin(db, name, full).await?)),
            OnlineStore::Redis(conn) => {
                let live = redis_key(name);
                let target = if full {
                    format!("{live}:staging:{}", ferroflow_core::new_id())
                } else {
                    live.clone()
                };
                Ok(Writer::Redis {
                    conn: conn.clone(),
                    db,
                    name: name.to_string(),
                    live,
                    target,
                })
            }
        }
    }
}

/// A publication in progress.
enum Writer<'a> {
    Sql(store::Publication<'a>),
    Redis {
        conn: redis::aio::ConnectionManager,
        db: &'a Db,
        name: String,
        live: String,
        /// The live hash (incremental) or a staging hash renamed over it at commit (full).
        target: String,
    },
}

impl Writer<'_> {
    async fn upsert(&mut self, rows: &[(String, i64, String)]) -> Result<()> {
        match self {
            Writer::Sql(p) => p.upsert(rows).await,
            Writer::Redis { conn, target, .. } => {
                let script = redis::Script::new(REDIS_UPSERT);
                for chunk in rows.chunks(1000) {
                    let mut invocation = script.key(target.as_str());
                    for (k, t, f) in chunk {
                        invocation.arg(k).arg(*t).arg(f);
                    }
                    invocation
                        .invoke_async::<i64>(conn)
                        .await
                        .map_err(redis_error)?;
                }
                Ok(())
            }
        }
    }

    /// Removes the rows of keys the table no longer has (an incremental publication).
    async fn delete(&mut self, keys: &[String]) -> Result<()> {
        match self {
            Writer::Sql(p) => p.delete(keys).await,
            Writer::Redis { conn, target, .. } => {
                for chunk in keys.chunks(1000) {
                    redis::cmd("HDEL")
                        .arg(target.as_str())
                        .arg(chunk)
                        .query_async::<i64>(conn)
                        .await
                        .map_err(redis_error)?;
                }
                Ok(())
            }
        }
    }

    async fn commit(self, version: i64, now: i64) -> Result<()> {
        match self {
            Writer::Sql(p) => p.commit(version, now).await,
            Writer::Redis {
                mut conn,
                db,
                name,
                live,
                target,
            } => {
                if target != live {
                    // An empty full publication leaves no staging hash: clear the live one.
                    let exists: i64 = redis::cmd("EXISTS")
                        .arg(&target)
                        .query_async(&mut conn)
                        .await
                        .map_err(redis_error)?;
                    if exists == 1 {
                        redis::cmd("RENAME")
                            .arg(&target)
                            .arg(&live)
                            .query_async::<()>(&mut conn)
                            .await
                            .map_err(redis_error)?;
                    } else {
                        redis::cmd("DEL")
                            .arg(&live)
                            .query_async::<i64>(&mut conn)
                            .await
                            .map_err(redis_error)?;
                    }
                }
                store::record_publication(db, &name, version, now).await
            }
        }
    }
}

/// The canonical text of one key: a JSON array of the key values, integers as numbers.
pub fn entity_key(table: &FeatureTable, values: &[&Value]) -> Result<String> {
    let mut parts = Vec::with_capacity(values.len());
    for (pk, v) in table.primary_keys.iter().zip(values) {
        let column = table
            .column(pk)
            .ok_or_else(|| Error::internal(format!("key column {pk} missing")))?;
        let part = crate::records::key_part(v, &crate::model::arrow_type(&column.data_type))
            .map_err(|why| {
                Error::invalid(format!(
                    "Key '{pk}' of '{}' ({}): {why}",
                    table.name, column.data_type
                ))
            })?;
        parts.push(part);
    }
    Ok(Value::Array(parts).to_string())
}

/// The key texts of every row of a batch.
fn batch_keys(table: &FeatureTable, batch: &RecordBatch) -> Result<Vec<String>> {
    let mut columns = Vec::with_capacity(table.primary_keys.len());
    for pk in &table.primary_keys {
        let array = batch
            .column_by_name(pk)
            .ok_or_else(|| Error::internal(format!("key column {pk} missing from a scan")))?;
        columns.push(array.clone());
    }
    // Render through JSON once per column, then build each row's key from the parts.
    let rendered: Vec<Vec<Value>> = columns.iter().map(column_values).collect::<Result<_>>()?;
    (0..batch.num_rows())
        .map(|row| {
            let values: Vec<&Value> = rendered.iter().map(|c| &c[row]).collect();
            entity_key(table, &values)
        })
        .collect()
}

fn column_values(array: &ArrayRef) -> Result<Vec<Value>> {
    let n = array.len();
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(array, &DataType::Utf8).map_err(internal)?;
            let s = s
                .as_any()
                .downcast_ref::<deltalake::arrow::array::StringArray>()
                .ok_or_else(|| Error::internal("string key"))?;
            Ok((0..n)
                .map(|i| Value::String(s.value(i).to_string()))
                .collect())
        }
        _ => {
            let ints = cast(array, &DataType::Int64).map_err(internal)?;
            let ints = ints
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| Error::internal("integer key"))?;
            Ok((0..n).map(|i| json!(ints.value(i))).collect())
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("online store: {e}"))
}

/// Event times in microseconds (0 for tables without a timestamp key).
fn event_times(table: &FeatureTable, batch: &RecordBatch) -> Result<Vec<i64>> {
    let Some(ts) = &table.timestamp_key else {
        return Ok(vec![0; batch.num_rows()]);
    };
    let array = batch
        .column_by_name(ts)
        .ok_or_else(|| Error::internal("timestamp column missing from a scan"))?;
    let micros = cast(
        array,
        &DataType::Timestamp(TimeUnit::Microsecond, Some(crate::model::UTC.into())),
    )
    .and_then(|a| cast(&a, &DataType::Int64))
    .map_err(internal)?;
    let micros = micros
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::internal("timestamp"))?;
    Ok((0..micros.len()).map(|i| micros.value(i)).collect())
}

/// One JSON object per row of the non-key columns.
fn feature_json(table: &FeatureTable, batch: &RecordBatch) -> Result<Vec<String>> {
    let keep: Vec<usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !table.primary_keys.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let projected = batch.project(&keep).map_err(internal)?;
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    writer.write(&projected).map_err(internal)?;
    writer.finish().map_err(internal)?;
    let text = String::from_utf8(writer.into_inner()).map_err(internal)?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Keeps, per key, the row with the latest event time (the last one on ties). Keys of a
/// table without a timestamp key are unique already; this guards against duplicates in a
/// table written by another engine (one statement must not upsert a key twice).
fn latest_per_key(
    keys: Vec<String>,
    times: Vec<i64>,
    batch: &RecordBatch,
) -> Result<(Vec<String>, Vec<i64>, RecordBatch)> {
    let mut best: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        match best.get(k.as_str()) {
            Some(&j) if times[j] > times[i] => {}
            _ => {
                best.insert(k, i);
            }
        }
    }
    if best.len() == keys.len() {
        return Ok((keys, times, batch.clone()));
    }
    let mut rows: Vec<u32> = best.values().map(|&i| i as u32).collect();
    rows.sort_unstable();
    take_rows(keys, times, batch, rows)
}

/// The newest event time of each key in `df`, read from the key and timestamp columns
/// only. A time-series table holds a row per key and time; with this first pass, a
/// publication writes each key once instead of every row that is newest within its batch.
/// Its memory is one entry per distinct key, as the online store itself.
async fn newest_per_key(table: &FeatureTable, df: DataFrame) -> Result<HashMap<String, i64>> {
    let mut newest: HashMap<String, i64> = HashMap::new();
    scan_keys(table, df, true, |batch| {
        let keys = batch_keys(table, batch)?;
        let times = event_times(table, batch)?;
        for (k, t) in keys.into_iter().zip(times) {
            newest
                .entry(k)
                .and_modify(|best| *best = (*best).max(t))
                .or_insert(t);
        }
        Ok(())
    })
    .await?;
    Ok(newest)
}

fn scan_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("cannot scan feature table: {e}"))
}

/// Streams the key columns of `df` (and the timestamp key, `with_time`) batch by batch.
async fn scan_keys(
    table: &FeatureTable,
    df: DataFrame,
    with_time: bool,
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let mut columns: Vec<&str> = table.primary_keys.iter().map(String::as_str).collect();
    if with_time {
        columns.extend(table.timestamp_key.as_deref());
    }
    let mut stream = df
        .select_columns(&columns)
        .map_err(internal)?
        .execute_stream()
        .await
        .map_err(scan_error)?;
    while let Some(batch) = stream.next().await {
        each(&batch.map_err(scan_error)?)?;
    }
    Ok(())
}

/// Keeps the rows that carry their key's newest event time, each key once (the first such
/// row; a time-series table has one row per key and time).
fn newest_rows(
    keys: Vec<String>,
    times: Vec<i64>,
    batch: &RecordBatch,
    newest: &mut HashMap<String, i64>,
) -> Result<(Vec<String>, Vec<i64>, RecordBatch)> {
    let mut rows: Vec<u32> = Vec::with_capacity(keys.len());
    for (i, (k, t)) in keys.iter().zip(&times).enumerate() {
        if newest.get(k) == Some(t) {
            newest.remove(k); // written once: a later row with the same time is skipped
            rows.push(i as u32);
        }
    }
    if rows.len() == keys.len() {
        return Ok((keys, times, batch.clone()));
    }
    take_rows(keys, times, batch, rows)
}

/// The given rows (ascending) of a batch with their keys and times.
fn take_rows(
    keys: Vec<String>,
    times: Vec<i64>,
    batch: &RecordBatch,
    rows: Vec<u32>,
) -> Result<(Vec<String>, Vec<i64>, RecordBatch)> {
    let indices = UInt32Array::from(rows.clone());
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c, &indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(internal)?;
    let batch = RecordBatch::try_new(batch.schema(), columns).map_err(internal)?;
    Ok((
        rows.iter().map(|&i| keys[i as usize].clone()).collect(),
        rows.iter().map(|&i| times[i as usize]).collect(),
        batch,
    ))
}

/// The distinct keys of the rows of `df`, read from the key columns only.
async fn distinct_keys(table: &FeatureTable, df: DataFrame) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    scan_keys(table, df, false, |batch| {
        keys.extend(batch_keys(table, batch)?);
        Ok(())
    })
    .await?;
    Ok(keys)
}

/// What changed in a table's files between the published version and the latest one.
struct FileChanges {
    /// The table at the published version.
    before: DeltaTable,
    added: Vec<String>,
    removed: Vec<String>,
    unchanged: Vec<String>,
}

/// One table's part of a lookup request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    pub table_name: Option<String>,
    #[serde(default)]
    pub keys: Vec<Value>,
    #[serde(default)]
    pub feature_names: Option<Vec<String>>,
}

impl FeatureService {
    /// Copies the latest row per key into the online store: all rows (`full`), or only what
    /// changed since the last published version (`incremental`): the rows of files added
    /// since, and the removal of keys whose rows were in files removed since and are in the
    /// table no more (an overwrite, a delete). Either way the store then holds the table's
    /// latest row per key. An incremental publication is a full one when nothing was
    /// published yet, when the published version can no longer be read, and when files of a
    /// time-series table were removed (a key's newest row may then be an older one). Returns
    /// the version published and rows written.
    pub async fn publish(&self, name: &str, mode: Option<&str>) -> Result<Value> {
        let full = match mode.unwrap_or("full").to_ascii_lowercase().as_str() {
            "full" | "overwrite" => true,
            "incremental" | "merge" => false,
            other => {
                return Err(Error::invalid(format!(
                    "Unknown publish mode '{other}': use full or incremental"
                )))
            }
        };
        let table = self.get(name).await?;
        let guard = self.lock(&format!("online:{name}"));
        let _guard = guard.lock().await;
        let latest = self.delta.open(&table.location, At::Latest).await?;
        let version = latest.version().map(|v| v as i64).unwrap_or(0);
        let mut changes = None;
        if let Some(p) = table.online.filter(|_| !full) {
            if p.version == version {
                return Ok(json!({
                    "name": name, "mode": "incremental", "version": version,
                    "rows_published": 0, "rows_deleted": 0,
                }));
            }
            // Unreadable (vacuumed, log cleaned up): fall back to a full publication.
            if let Ok(before) = self
                .delta
                .open(&table.location, At::Version(p.version))
                .await
            {
                let was: HashSet<String> = DeltaStore::file_uris(&before)?.into_iter().collect();
                let now: Vec<String> = DeltaStore::file_uris(&latest)?;
                let now_set: HashSet<&String> = now.iter().collect();
                let removed: Vec<String> = was
                    .iter()
                    .filter(|f| !now_set.contains(f))
                    .cloned()
                    .collect();
                if removed.is_empty() || table.timestamp_key.is_none() {
                    let (added, unchanged): (Vec<String>, Vec<String>) =
                        now.into_iter().partition(|f| !was.contains(f));
                    changes = Some(FileChanges {
                        before,
                        added,
                        removed,
                        unchanged,
                    });
                }
            }
        }
        let full = changes.is_none();
        let mut published = 0usize;
        let mut deleted = 0usize;
        let mut written_keys: HashSet<String> = HashSet::new();
        let track_keys = changes.as_ref().is_some_and(|c| !c.removed.is_empty());
        let mut publication = self.online.begin(&self.db, name, full).await?;
        let files = changes.as_ref().map(|c| c.added.clone());
        if files.as_ref().map(|f| !f.is_empty()).unwrap_or(true) {
            let df = self
                .delta
                .scan_files(&latest, files.unwrap_or_default())
                .await?;
            let mut newest = match table.timestamp_key {
                Some(_) => Some(newest_per_key(&table, df.clone()).await?),
                None => None,
            };
            let mut stream = df.execute_stream().await.map_err(scan_error)?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(scan_error)?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let keys = batch_keys(&table, &batch)?;
                let times = event_times(&table, &batch)?;
                let (keys, times, batch) = match newest.as_mut() {
                    Some(newest) => newest_rows(keys, times, &batch, newest)?,
                    None => latest_per_key(keys, times, &batch)?,
                };
                if keys.is_empty() {
                    continue;
                }
                if track_keys {
                    written_keys.extend(keys.iter().cloned());
                }
                let features = feature_json(&table, &batch)?;
                let rows: Vec<(String, i64, String)> = keys
                    .into_iter()
                    .zip(times)
                    .zip(features)
                    .map(|((k, t), f)| (k, t, f))
                    .collect();
                published += rows.len();
                publication.upsert(&rows).await?;
            }
        }
        if let Some(c) = changes.filter(|c| !c.removed.is_empty()) {
            // Keys of removed files that no added file brings back, unless an unchanged
            // file still holds them, are gone from the table.
            let old = self.delta.scan_files(&c.before, c.removed).await?;
            let mut gone = distinct_keys(&table, old).await?;
            gone.retain(|k| !written_keys.contains(k));
            if !gone.is_empty() && !c.unchanged.is_empty() {
                let kept = self.delta.scan_files(&latest, c.unchanged).await?;
                for k in distinct_keys(&table, kept).await? {
                    gone.remove(&k);
                }
            }
            let gone: Vec<String> = gone.into_iter().collect();
            publication.delete(&gone).await?;
            deleted = gone.len();
        }
        publication.commit(version, now_millis()).await?;
        let mut answer = json!({
            "name": name,
            "mode": if full { "full" } else { "incremental" },
            "version": version,
            "rows_published": published,
        });
        if !full {
            answer["rows_deleted"] = json!(deleted);
        }
        Ok(answer)
    }

    /// Looks keys up in several tables; rows come back in key order, `null` for a key that
    /// is not published.
    pub async fn lookup(&self, requests: &[LookupRequest]) -> Result<Value> {
        if requests.is_empty() {
            return Err(Error::invalid("'lookups' must name at least one table"));
        }
        let mut results = Vec::with_capacity(requests.len());
        for (i, req) in requests.iter().enumerate() {
            let name = req.table_name.as_deref().ok_or_else(|| {
                ferroflow_core::http::missing_value(&format!("lookups[{i}].table_name"))
            })?;
            let table = self.published(name).await?;
            if let Some(names) = &req.feature_names {
                table.features(Some(names), true)?;
            }
            let mut keys = Vec::with_capacity(req.keys.len());
            for (j, k) in req.keys.iter().enumerate() {
                keys.push(self.key_text(&table, k).map_err(|e| {
                    Error::invalid(format!("lookups[{i}].keys[{j}]: {}", e.message))
                })?);
            }
            let found = self.online.get(name, &keys).await?;
            let rows: Vec<Value> = found
                .into_iter()
                .map(|f| match f {
                    None => Ok(Value::Null),
                    Some(text) => {
                        let mut obj: Map<String, Value> = serde_json::from_str(&text)
                            .map_err(|e| Error::internal(format!("corrupt online row: {e}")))?;
                        Ok(Value::Object(match &req.feature_names {
                            Some(names) => names
                                .iter()
                                .map(|n| (n.clone(), obj.remove(n).unwrap_or(Value::Null)))
                                .collect(),
                            None => {
                                if let Some(ts) = &table.timestamp_key {
                                    obj.shift_remove(ts);
                                }
                                obj
                            }
                        }))
                    }
                })
                .collect::<Result<_>>()?;
            results.push(json!({"table_name": name, "version": table.online.map(|o| o.version), "rows": rows}));
        }
        Ok(json!({ "results": results }))
    }

    /// A table that has been published to the online store.
    async fn published(&self, name: &str) -> Result<FeatureTable> {
        let table = self.get(name).await?;
        if table.online.is_none() {
            return Err(Error::invalid(format!(
                "Feature table '{name}' is not published to the online store"
            )));
        }
        Ok(table)
    }

    /// The canonical key text of a key given as an object of primary key values (or, for a
    /// one-key table, the bare value).
    pub fn key_text(&self, table: &FeatureTable, key: &Value) -> Result<String> {
        let values: Vec<&Value> = match key {
            Value::Object(obj) => {
                if let Some(extra) = obj.keys().find(|k| !table.primary_keys.contains(k)) {
                    return Err(Error::invalid(format!(
                        "'{extra}' is not a primary key of '{}' (keys: {})",
                        table.name,
                        table.primary_keys.join(", ")
                    )));
                }
                table
                    .primary_keys
                    .iter()
                    .map(|pk| {
                        obj.get(pk)
                            .ok_or_else(|| Error::invalid(format!("primary key '{pk}' is missing")))
                    })
                    .collect::<Result<_>>()?
            }
            v if table.primary_keys.len() == 1 => vec![v],
            _ => {
                return Err(Error::invalid(format!(
                    "give keys as objects of {}",
                    table.primary_keys.join(", ")
                )))
            }
        };
        entity_key(table, &values)
    }
}

impl ferroflow_serving::endpoints::features::FeatureSource for FeatureService {
    fn lookup<'a>(
        &'a self,
        table: &'a str,
        keys: Vec<Vec<Value>>,
        features: Option<&'a [String]>,
    ) -> ferroflow_serving::endpoints::features::BoxFuture<
        'a,
        Result<ferroflow_serving::endpoints::features::FoundRows>,
    > {
        Box::pin(async move {
            let t = self.published(table).await?;
            let names = t.features(features, true)?;
            if keys.iter().any(|k| k.len() != t.primary_keys.len()) {
                return Err(Error::invalid(format!(
                    "Feature table '{table}' is keyed by {}",
                    t.primary_keys.join(", ")
                )));
            }
            let texts = keys
                .iter()
                .map(|k| entity_key(&t, &k.iter().collect::<Vec<_>>()))
                .collect::<Result<Vec<_>>>()?;
            let found = self.online.get(table, &texts).await?;
            let rows = found
                .into_iter()
                .map(|f| {
                    f.map(|text| {
                        serde_json::from_str::<Map<String, Value>>(&text)
                            .map_err(|e| Error::internal(format!("corrupt online row: {e}")))
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ferroflow_serving::endpoints::features::FoundRows {
                features: names,
                rows,
            })
        })
    }
}
