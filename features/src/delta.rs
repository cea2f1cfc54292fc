//! Delta tables on the artifact destination: open (at a version or time), create, merge,
//! overwrite, scan, history, optimize, vacuum. Remote destinations reuse the artifact store's
//! bucket handle, so one set of credentials serves artifacts and feature tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::common::{Column as DfColumn, ScalarValue};
use deltalake::datafusion::logical_expr::{col, lit, Expr};
use deltalake::datafusion::prelude::{DataFrame, SessionContext};
use deltalake::kernel::transaction::{CommitConflictError, CommitProperties, TransactionError};
use deltalake::logstore::{
    default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use ferroflow_core::{Error, ErrorCode, Result};
use ferroflow_tracking::artifacts::StoreRoot;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use url::Url;

use crate::model::{self, FeatureTable};

/// Which state of a table to open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Latest,
    Version(i64),
    Time(DateTime<Utc>),
}

/// The commit log's plain (put-if-absent) log store, for schemes deltalake has no factory
/// for without its cloud features: we hand it the artifact store's own bucket handle.
struct PlainLogStoreFactory;

impl LogStoreFactory for PlainLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_schemes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3://", "gs://", "az://"] {
            if let Ok(url) = Url::parse(scheme) {
                logstore_factories().insert(url, Arc::new(PlainLogStoreFactory));
            }
        }
    });
}

/// Maps deltalake's errors to API errors: what the caller got wrong is a 400; losing a race
/// to another writer's commit is a 429 (the table is unchanged, the request can be retried).
pub fn delta_error(context: &str, e: DeltaTableError) -> Error {
    match &e {
        _ if is_commit_conflict(&e) => Error::new(
            ErrorCode::RequestLimitExceeded,
            format!(
                "{context}: other writers committed to the table first; the table is \
                 unchanged, retry the request (Delta: {e})"
            ),
        ),
        DeltaTableError::InvalidVersion(v) => {
            Error::invalid(format!("{context}: version {v} does not exist"))
        }
        DeltaTableError::InvalidDateTimeString { .. }
        | DeltaTableError::InvalidTableLocation(_) => Error::invalid(format!("{context}: {e}")),
        DeltaTableError::NotATable(_) => {
            Error::not_found(format!("{context}: no Delta table there ({e})"))
        }
        DeltaTableError::SchemaMismatch { .. } | DeltaTableError::Arrow { .. } => {
            Error::invalid(format!("{context}: {e}"))
        }
        _ => Error::internal(format!("{context}: {e}")),
    }
}

/// Whether a commit failed only because another writer committed to the table between this
/// one's read and its commit (another server on the same store: the per-table lock is per
/// process), so that rerunning the operation on the table's new state can succeed.
fn is_commit_conflict(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => match source {
            TransactionError::VersionAlreadyExists(_) | TransactionError::MaxCommitAttempts(_) => {
                true
            }
            TransactionError::CommitConflict(c) => matches!(
                c,
                CommitConflictError::ConcurrentAppend
                    | CommitConflictError::ConcurrentDeleteRead
                    | CommitConflictError::ConcurrentDeleteDelete
                    | CommitConflictError::MetadataChanged
                    | CommitConflictError::ConcurrentTransaction
                    | CommitConflictError::ProtocolChanged(_)
            ),
            _ => false,
        },
        _ => false,
    }
}

/// How many times a merge or overwrite is run (each on the table's latest state) when other
/// writers keep committing first; after that the caller gets [`delta_error`]'s 429.
const COMMIT_ATTEMPTS: u32 = 8;

/// Runs `attempt` (which opens the table's latest state, writes and commits) until it
/// commits, fails otherwise than by a commit conflict, or has been tried [`COMMIT_ATTEMPTS`]
/// times, with a growing, jittered pause between tries. Deltalake itself retries a commit
/// whose version was taken when no data it read changed; this reruns the whole operation
/// when data it read did change (a concurrent merge's files overlap its key ranges).
async fn with_commit_retries<T, F, Fut>(context: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<DeltaResult<T>>>,
{
    let mut tried = 1;
    loop {
        match attempt().await? {
            Ok(done) => return Ok(done),
            Err(e) if tried < COMMIT_ATTEMPTS && is_commit_conflict(&e) => {
                tracing::debug!("{context}: commit conflict on try {tried}, rerunning: {e}");
                let base = 10u64 << tried.min(5);
                let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
                tried += 1;
            }
            Err(e) => return Err(delta_error(context, e)),
        }
    }
}

/// One commit of a table's log, with the time that both `history` shows and time travel
/// resolves against.
#[derive(Debug, Clone)]
pub struct Commit {
    pub version: i64,
    /// Milliseconds since the epoch: the commit's in-commit timestamp, else its
    /// `commitInfo.timestamp`, else the log file's modification time; raised where needed to
    /// one millisecond after the previous commit's, so the times increase with the versions.
    pub timestamp: i64,
    /// The commit's `commitInfo` action, when it has one.
    pub info: Option<Value>,
}

/// Commit times already read, by log file (URL, e-tag or modification time, size): a commit
/// file never changes, so its time is read once. Cleared when it grows past this many.
const COMMIT_TIME_CACHE: usize = 100_000;

/// Where feature tables live and how they are opened.
#[derive(Clone, Debug)]
pub struct DeltaStore {
    root: StoreRoot,
    /// Local directories besides the artifact root where tables may be placed by `location`.
    allowed: Vec<std::path::PathBuf>,
    commit_times: Arc<Mutex<HashMap<String, i64>>>,
}

impl DeltaStore {
    pub fn new(root: StoreRoot, allowed: Vec<std::path::PathBuf>) -> DeltaStore {
        register_schemes();
        DeltaStore {
            root,
            allowed: allowed
                .iter()
                .filter_map(|p| std::path::absolute(p).ok())
                .collect(),
            commit_times: Arc::default(),
        }
    }

    /// The URL of `<destination>/<relative>`.
    pub fn url_under(&self, relative: &str) -> Result<Url> {
        let relative = relative.trim_matches('/');
        let url = match &self.root {
            StoreRoot::Local(dir) => Url::from_directory_path(dir.join(relative))
                .map_err(|_| Error::internal(format!("bad local path {}", dir.display())))?,
            StoreRoot::Bucket { url, prefix, .. } => {
                let path = [prefix.as_str(), relative]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                Url::parse(&format!("{url}/{path}"))
                    .map_err(|e| Error::internal(format!("bad table URL: {e}")))?
            }
        };
        Ok(url)
    }

    /// The default location of a table: `<destination>/features/<name>`.
    pub fn default_location(&self, name: &str) -> Result<String> {
        Ok(self
            .url_under(&format!("features/{name}"))?
            .as_str()
            .trim_end_matches('/')
            .to_string())
    }

    /// Checks a user-given location: an absolute local path or `file://` URL on a local
    /// destination, a URL in the same bucket on a remote one.
    pub fn check_location(&self, location: &str) -> Result<String> {
        let bad = |why: &str| Error::invalid(format!("Invalid location '{location}': {why}"));
        if location.split(['/', '\\']).any(|seg| seg == "..") {
            return Err(bad("'..' is not allowed"));
        }
        match &self.root {
            StoreRoot::Local(root) => {
                let path = location.strip_prefix("file://").unwrap_or(location);
                if !path.starts_with('/') {
                    return Err(bad("use an absolute path or a file:// URL"));
                }
                // Only under the artifact root or a directory the operator allowed: a client
                // must not make the server write (or expose) Delta files anywhere on its disk.
                let root = std::path::absolute(root).unwrap_or_else(|_| root.clone());
                let inside = |dir: &std::path::Path| std::path::Path::new(path).starts_with(dir);
                if !inside(&root) && !self.allowed.iter().any(|d| inside(d)) {
                    return Err(bad(&format!(
                        "tables live under the artifact root {} or a directory allowed with \
                         --feature-table-locations",
                        root.display()
                    )));
                }
                Ok(Url::from_directory_path(path)
                    .map_err(|_| bad("not a path"))?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string())
            }
            StoreRoot::Bucket { url, .. } => {
                if !location.starts_with(&format!("{url}/")) {
                    return Err(bad(&format!("tables live under {url}/")));
                }
                Ok(location.trim_end_matches('/').to_string())
            }
        }
    }

    fn builder(&self, location: &str) -> Result<DeltaTableBuilder> {
        let url = Url::parse(&format!("{}/", location.trim_end_matches('/')))
            .map_err(|e| Error::invalid(format!("Invalid table location '{location}': {e}")))?;
        let builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(|e| delta_error("Cannot open the table", e))?;
        Ok(match &self.root {
            StoreRoot::Local(_) => builder,
            StoreRoot::Bucket { store, .. } => builder.with_storage_backend(store.clone(), url),
        })
    }

    /// An unloaded handle (for creating a table).
    pub fn handle(&self, location: &str) -> Result<DeltaTable> {
        self.builder(location)?
            .build()
            .map_err(|e| delta_error("Cannot open the table", e))
    }

    /// Opens a table at its latest state, a version or a point in time. A time resolves to
    /// the latest version committed at or before it, by the commit times `history` shows; a
    /// time before the first commit in the log is a 400.
    pub async fn open(&self, location: &str, at: At) -> Result<DeltaTable> {
        let at = match at {
            At::Time(t) => At::Version(self.version_at(location, t).await?),
            other => other,
        };
        let mut builder = self.builder(location)?;
        builder = match at {
            At::Latest | At::Time(_) => builder,
            At::Version(v) => {
                if v < 0 {
                    return Err(Error::invalid(format!("as_of_version {v} is negative")));
                }
                builder.with_version(v as u64)
            }
        };
        match builder.load().await {
            Ok(t) => Ok(t),
            Err(e) => match at {
                At::Version(v) => {
                    let latest = self.latest_version(location).await.unwrap_or(-1);
                    Err(Error::invalid(format!(
                        "Cannot time travel the table to version {v}: available versions \
                         are 0 to {latest}"
                    )))
                }
                At::Latest | At::Time(_) => Err(delta_error("Cannot open the table", e)),
            },
        }
    }

    /// The version a point in time selects: the latest commit at or before it (the latest
    /// version for a time after the last commit).
    pub async fn version_at(&self, location: &str, t: DateTime<Utc>) -> Result<i64> {
        let commits = self.commits(location, None).await?;
        let target = t.timestamp_millis();
        let Some(first) = commits.first() else {
            return Err(Error::not_found(format!(
                "Cannot open the table: no Delta commits at {location}"
            )));
        };
        commits
            .iter()
            .rev()
            .find(|c| c.timestamp <= target)
            .map(|c| c.version)
            .ok_or_else(|| {
                let first_time = DateTime::<Utc>::from_timestamp_millis(first.timestamp)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_else(|| first.timestamp.to_string());
                Error::invalid(format!(
                    "Cannot time travel the table to {}: it is before the table's first \
                     commit (version {} at {first_time}, {} ms)",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    first.version,
                    first.timestamp
                ))
            })
    }

    /// The commits in the table's log, oldest first (only the newest `limit` when given;
    /// their times are still made increasing over the whole log).
    pub async fn commits(&self, location: &str, limit: Option<usize>) -> Result<Vec<Commit>> {
        let handle = self.handle(location)?;
        let log_store = handle.log_store();
        let store = log_store.object_store(None);
        let log_path = log_store.log_path().clone();
        let mut files: Vec<(i64, object_store::ObjectMeta)> = store
            .list(Some(&log_path))
            .try_filter_map(|meta| {
                // Commit files only (`<20 digits>.json` directly in `_delta_log/`).
                let version = meta
                    .location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .filter(|v| v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<i64>().ok())
                    .filter(|_| {
                        meta.location.prefix_match(&log_path).map(|p| p.count()) == Some(1)
                    });
                futures_util::future::ready(Ok(version.map(|v| (v, meta))))
            })
            .try_collect()
            .await
            .map_err(|e| Error::internal(format!("Cannot list the table's log: {e}")))?;
        files.sort_unstable_by_key(|(v, _)| *v);
        let keep_info_from = files.len().saturating_sub(limit.unwrap_or(usize::MAX));
        let table_url = location.trim_end_matches('/');
        let cache_key = |meta: &object_store::ObjectMeta| {
            format!(
                "{table_url}/{}@{}:{}",
                meta.location,
                meta.e_tag
                    .clone()
                    .unwrap_or_else(|| meta.last_modified.timestamp_micros().to_string()),
                meta.size
            )
        };
        let read = files.into_iter().enumerate().map(|(i, (version, meta))| {
            let store = store.clone();
            let key = cache_key(&meta);
            let cached = self
                .commit_times
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .copied();
            async move {
                let want_info = i >= keep_info_from;
                let (time, info) = match (cached, want_info) {
                    (Some(t), false) => (Some(t), None),
                    _ => {
                        let bytes = store
                            .get(&meta.location)
                            .await
                            .map_err(|e| {
                                Error::internal(format!("Cannot read {}: {e}", meta.location))
                            })?
                            .bytes()
                            .await
                            .map_err(|e| {
                                Error::internal(format!("Cannot read {}: {e}", meta.location))
                            })?;
                        let info = commit_info(&bytes);
                        let time = info.as_ref().and_then(|i| {
                            i.get("inCommitTimestamp")
                                .or_else(|| i.get("timestamp"))
                                .and_then(Value::as_i64)
                        });
                        (time, info)
                    }
                };
                let time = time.unwrap_or_else(|| meta.last_modified.timestamp_millis());
                Ok::<_, Error>((version, time, key, info))
            }
        });
        let read: Vec<_> = futures_util::stream::iter(read)
            .buffered(16)
            .try_collect()
            .await?;
        let mut cache = self.commit_times.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() + read.len() > COMMIT_TIME_CACHE {
            cache.clear();
        }
        let mut commits = Vec::with_capacity(read.len());
        let mut previous: Option<i64> = None;
        for (i, (version, time, key, info)) in read.into_iter().enumerate() {
            cache.insert(key, time);
            let timestamp = match previous {
                Some(p) if time <= p => p + 1,
                _ => time,
            };
            previous = Some(timestamp);
            if i >= keep_info_from {
                commits.push(Commit {
                    version,
                    timestamp,
                    info,
                });
            }
        }
        Ok(commits)
    }

    pub async fn latest_version(&self, location: &str) -> Result<i64> {
        let table = self.handle(location)?;
        table
            .get_latest_version()
            .await
            .map(|v| v as i64)
            .map_err(|e| delta_error("Cannot read the table's log", e))
    }

    /// Creates an empty table (version 0).
    pub async fn create(&self, table: &FeatureTable) -> Result<i64> {
        let handle = self.handle(&table.location)?;
        let created = handle
            .create()
            .with_commit_properties(Self::commit_properties(&table.created_by))
            .with_columns(model::delta_fields(&table.schema))
            .with_table_name(table.name.clone())
            .with_comment(table.description.clone())
            .with_save_mode(SaveMode::ErrorIfExists)
            .await
            .map_err(|e| create_error(&table.location, e))?;
        Ok(created.version().map(|v| v as i64).unwrap_or(0))
    }

    /// Creates a table whose version 0 holds these rows.
    pub async fn create_with(&self, table: &FeatureTable, rows: Vec<RecordBatch>) -> Result<i64> {
        let handle = self.handle(&table.location)?;
        let written = handle
            .write(rows)
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_commit_properties(Self::commit_properties(&table.created_by))
            .with_table_name(table.name.clone())
            .with_description(table.description.clone())
            .await
            .map_err(|e| create_error(&table.location, e))?;
        Ok(written.version().map(|v| v as i64).unwrap_or(0))
    }

    /// Replaces the table's rows (rerun on a commit conflict).
    pub async fn overwrite(
        &self,
        location: &str,
        rows: Vec<RecordBatch>,
        user: &str,
    ) -> Result<(i64, Value)> {
        with_commit_retries("Cannot overwrite the table", || {
            self.overwrite_once(location, rows.clone(), user)
        })
        .await
    }

    async fn overwrite_once(
        &self,
        location: &str,
        rows: Vec<RecordBatch>,
        user: &str,
    ) -> Result<DeltaResult<(i64, Value)>> {
        let table = self.open(location, At::Latest).await?;
        let n: usize = rows.iter().map(|b| b.num_rows()).sum();
        // An overwrite with no rows empties the table; deltalake wants one batch for that.
        let rows = if rows.is_empty() {
            let schema = table
                .snapshot()
                .map_err(|e| delta_error("Cannot overwrite the table", e))?
                .snapshot()
                .arrow_schema();
            vec![RecordBatch::new_empty(schema)]
        } else {
            rows
        };
        let written = table
            .write(rows)
            .with_save_mode(SaveMode::Overwrite)
            .with_commit_properties(Self::commit_properties(user))
            .await;
        Ok(written.map(|written| {
            (
                written.version().map(|v| v as i64).unwrap_or(0),
                json!({ "num_output_rows": n }),
            )
        }))
    }

    /// Upserts rows by `keys`: matching rows are updated, others inserted, the rest untouched
    /// (rerun on the table's new state on a commit conflict).
    pub async fn merge(
        &self,
        location: &str,
        schema: SchemaRef,
        keys: &[String],
        rows: Vec<RecordBatch>,
        user: &str,
    ) -> Result<(i64, Value)> {
        with_commit_retries("Cannot merge into the table", || {
            self.merge_once(location, &schema, keys, rows.clone(), user)
        })
        .await
    }

    async fn merge_once(
        &self,
        location: &str,
        schema: &SchemaRef,
        keys: &[String],
        rows: Vec<RecordBatch>,
        user: &str,
    ) -> Result<DeltaResult<(i64, Value)>> {
        let table = self.open(location, At::Latest).await?;
        let ctx = SessionContext::new();
        let source: DataFrame = ctx
            .read_batches(rows)
            .map_err(|e| Error::internal(format!("cannot stage merge input: {e}")))?;
        let qualified = |alias: &str, name: &str| Expr::Column(DfColumn::new(Some(alias), name));
        let predicate = keys
            .iter()
            .map(|k| qualified("target", k).eq(qualified("source", k)))
            .reduce(Expr::and)
            .ok_or_else(|| Error::internal("merge without keys"))?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let merged = table
            .merge(source, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(Self::commit_properties(user))
            .when_matched_update(|mut update| {
                for c in columns.iter().filter(|c| !keys.contains(c)) {
                    update = update.update(DfColumn::new_unqualified(c), qualified("source", c));
                }
                update
            })
            .and_then(|m| {
                m.when_not_matched_insert(|mut insert| {
                    for c in &columns {
                        insert = insert.set(DfColumn::new_unqualified(c), qualified("source", c));
                    }
                    insert
                })
            })
            .map_err(|e| delta_error("Cannot merge into the table", e))?
            .await;
        Ok(merged.map(|(merged, metrics)| {
            let metrics = serde_json::to_value(&metrics).unwrap_or(Value::Null);
            (merged.version().map(|v| v as i64).unwrap_or(0), metrics)
        }))
    }

    /// Scans a table state into a DataFrame of `columns` (all when empty) and `filter`.
    pub async fn scan(
        &self,
        table: &DeltaTable,
        columns: &[String],
        filter: Option<Expr>,
    ) -> Result<DataFrame> {
        let ctx = SessionContext::new();
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| delta_error("Cannot read the table", e))?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| Error::internal(format!("Cannot read the table: {e}")))?;
        self.frame(&ctx, provider, columns, filter)
    }

    /// Scans only the given data files (URIs as `file_uris` gives them) of a table state.
    pub async fn scan_files(&self, table: &DeltaTable, files: Vec<String>) -> Result<DataFrame> {
        let ctx = SessionContext::new();
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| delta_error("Cannot read the table", e))?;
        let mut builder = table.table_provider();
        if !files.is_empty() {
            builder = builder.with_file_paths(files);
        }
        let provider: Arc<dyn deltalake::datafusion::catalog::TableProvider> = builder
            .await
            .map_err(|e| Error::internal(format!("Cannot read the table: {e}")))?;
        self.frame(&ctx, provider, &[], None)
    }

    fn frame(
        &self,
        ctx: &SessionContext,
        provider: Arc<dyn deltalake::datafusion::catalog::TableProvider>,
        columns: &[String],
        filter: Option<Expr>,
    ) -> Result<DataFrame> {
        let mut df = ctx
            .read_table(provider)
            .map_err(|e| Error::internal(format!("Cannot read the table: {e}")))?;
        if let Some(f) = filter {
            df = df
                .filter(f)
                .map_err(|e| Error::invalid(format!("Invalid filter: {e}")))?;
        }
        if !columns.is_empty() {
            let exprs: Vec<Expr> = columns
                .iter()
                .map(|c| Expr::Column(DfColumn::new_unqualified(c)))
                .collect();
            df = df
                .select(exprs)
                .map_err(|e| Error::invalid(format!("Invalid columns: {e}")))?;
        }
        Ok(df)
    }

    /// Commit history, newest first, with the commit times time travel resolves against.
    pub async fn history(&self, location: &str, limit: Option<usize>) -> Result<Vec<Value>> {
        let commits = self.commits(location, limit).await?;
        if commits.is_empty() {
            return Err(Error::not_found(format!(
                "Cannot read the table's history: no Delta commits at {location}"
            )));
        }
        Ok(commits
            .into_iter()
            .rev()
            .map(|c| {
                let info = c.info.unwrap_or(Value::Null);
                json!({
                    "version": c.version,
                    "timestamp": c.timestamp,
                    "operation": info.get("operation"),
                    "operation_parameters": info.get("operationParameters"),
                    "operation_metrics": info.get("operationMetrics"),
                    "read_version": info.get("readVersion"),
                    "user_name": info.get("userName"),
                    "engine_info": info.get("engineInfo"),
                })
            })
            .collect())
    }

    /// Compacts small files.
    pub async fn optimize(&self, location: &str, target_size: Option<u64>) -> Result<(i64, Value)> {
        let table = self.open(location, At::Latest).await?;
        let mut builder = table.optimize();
        if let Some(size) = target_size.and_then(std::num::NonZeroU64::new) {
            builder = builder.with_target_size(size);
        }
        let (table, metrics) = builder
            .await
            .map_err(|e| delta_error("Cannot optimize the table", e))?;
        Ok((
            table.version().map(|v| v as i64).unwrap_or(0),
            serde_json::to_value(&metrics).unwrap_or(Value::Null),
        ))
    }

    /// Deletes files no version within the retention period refers to.
    pub async fn vacuum(
        &self,
        location: &str,
        retention_hours: Option<u64>,
        dry_run: bool,
        enforce_retention: bool,
    ) -> Result<Value> {
        let table = self.open(location, At::Latest).await?;
        let mut builder = table
            .vacuum()
            .with_dry_run(dry_run)
            .with_enforce_retention_duration(enforce_retention);
        if let Some(h) = retention_hours {
            builder = builder.with_retention_period(chrono::Duration::hours(h as i64));
        }
        let (_, metrics) = builder.await.map_err(|e| {
            if e.to_string().contains("retention") {
                Error::invalid(format!(
                    "Cannot vacuum the table: {e} (set enforce_retention_duration to false to \
                     allow a shorter retention)"
                ))
            } else {
                delta_error("Cannot vacuum the table", e)
            }
        })?;
        Ok(json!({ "dry_run": metrics.dry_run, "files_deleted": metrics.files_deleted }))
    }

    /// The URIs of the data files of a table state.
    pub fn file_uris(table: &DeltaTable) -> Result<Vec<String>> {
        Ok(table
            .get_file_uris()
            .map_err(|e| delta_error("Cannot list the table's files", e))?
            .collect())
    }

    /// Deletes everything under a table location.
    pub async fn delete_all(&self, location: &str) -> Result<()> {
        let table = self.handle(location)?;
        let store = table.object_store();
        let paths: Vec<_> = store
            .list(None)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| Error::internal(format!("cannot list {location}: {e}")))?;
        for p in paths {
            store
                .delete(&p)
                .await
                .map_err(|e| Error::internal(format!("cannot delete {p}: {e}")))?;
        }
        if let StoreRoot::Local(_) = self.root {
            if let Some(path) = location.strip_prefix("file://") {
                let _ = std::fs::remove_dir_all(path);
            }
        }
        Ok(())
    }

    /// The commit properties that name the writer in the log.
    pub fn commit_properties(user: &str) -> CommitProperties {
        let mut metadata = HashMap::new();
        metadata.insert("userName".to_string(), Value::String(user.to_string()));
        CommitProperties::default().with_metadata(metadata)
    }
}

/// The `commitInfo` action of a commit file, if it has one.
fn commit_info(bytes: &[u8]) -> Option<Value> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .filter_map(|action| action.ok())
        .find_map(|mut action| action.get_mut("commitInfo").map(Value::take))
}

fn create_error(location: &str, e: DeltaTableError) -> Error {
    let text = e.to_string();
    if text.contains("already exists") {
        Error::invalid(format!(
            "Location '{location}' already holds a Delta table; give another location"
        ))
    } else {
        delta_error("Cannot create the table", e)
    }
}

/// A filter selecting rows whose key columns equal one of the given key objects.
pub fn key_filter(table: &FeatureTable, keys: &[Value]) -> Result<Option<Expr>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut alternatives = Vec::with_capacity(keys.len());
    let mut single: Vec<Expr> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let obj = key.as_object().ok_or_else(|| {
            Error::invalid(format!("keys[{i}] must be an object of primary key values"))
        })?;
        let mut conj: Option<Expr> = None;
        for (name, value) in obj {
            let column = table.column(name).ok_or_else(|| {
                Error::invalid(format!("keys[{i}]: '{name}' is not a column of the table"))
            })?;
            let one = crate::records::value(value, &model::arrow_type(&column.data_type)).map_err(
                |why| {
                    Error::invalid(format!(
                        "keys[{i}]: column '{name}' ({}): {why}",
                        column.data_type
                    ))
                },
            )?;
            let scalar = ScalarValue::try_from_array(&one, 0)
                .map_err(|e| Error::internal(format!("keys[{i}].{name}: {e}")))?;
            if obj.len() == 1 {
                single.push(lit(scalar.clone()));
            }
            let eq = col(DfColumn::new_unqualified(name)).eq(lit(scalar));
            conj = Some(match conj {
                Some(c) => c.and(eq),
                None => eq,
            });
        }
        alternatives.push(conj.ok_or_else(|| Error::invalid(format!("keys[{i}] is empty")))?);
    }
    // One column named by every key: one IN list rather than a deep OR chain.
    let columns: std::collections::BTreeSet<&String> = keys
        .iter()
        .filter_map(|k| k.as_object())
        .flat_map(|o| o.keys())
        .collect();
    if columns.len() == 1 && single.len() == keys.len() {
        if let Some(c) = columns.into_iter().next() {
            return Ok(Some(
                col(DfColumn::new_unqualified(c)).in_list(single, false),
            ));
        }
    }
    Ok(alternatives.into_iter().reduce(Expr::or))
}
