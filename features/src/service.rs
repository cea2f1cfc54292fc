//! The feature store's operations: feature tables (metadata in the backend store, rows in
//! Delta), writes with schema enforcement, time-travel reads, history and maintenance.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::row::{RowConverter, SortField};
use ferroflow_core::paging::{decode_offset, Page};
use ferroflow_core::search::CompareOp;
use ferroflow_core::search_registry::{parse_registered_model_filter, RegistryKey, RegistryValue};
use ferroflow_core::{now_millis, Db, Error, Result};
use ferroflow_tracking::artifacts::ArtifactService;
use ferroflow_tracking::TrackingService;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::convert::{self, Incoming};
use crate::delta::{key_filter, At, DeltaStore};
use crate::model::{self, Column, FeatureTable};
use crate::online::OnlineStore;
use crate::records::{self, Origin};
use crate::store;

/// What a create call carries.
#[derive(Debug, Default)]
pub struct CreateTable {
    pub name: String,
    pub primary_keys: Vec<String>,
    pub timestamp_key: Option<String>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub schema: Option<Vec<Column>>,
    pub location: Option<String>,
    pub data: Option<Incoming>,
    /// JSON records, decoded once the schema is known.
    pub records: Option<Vec<Value>>,
    pub user: String,
}

/// How a write treats existing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Merge,
    Overwrite,
}

impl WriteMode {
    pub fn parse(s: Option<&str>) -> Result<WriteMode> {
        match s.unwrap_or("merge").to_ascii_lowercase().as_str() {
            "merge" | "upsert" => Ok(WriteMode::Merge),
            "overwrite" => Ok(WriteMode::Overwrite),
            other => Err(Error::invalid(format!(
                "Unknown write mode '{other}': use merge or overwrite"
            ))),
        }
    }
}

/// Rows read from a table state.
pub struct ReadResult {
    pub version: i64,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

#[derive(Clone)]
pub struct FeatureService {
    pub(crate) db: Db,
    pub(crate) delta: DeltaStore,
    pub(crate) tracking: TrackingService,
    pub(crate) artifacts: ArtifactService,
    pub(crate) online: OnlineStore,
    /// One writer per table in this process: Delta would reject the loser of two concurrent
    /// merges; queueing them here turns that into a wait.
    locks: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>>,
}

impl FeatureService {
    pub fn new(
        db: Db,
        tracking: TrackingService,
        artifacts: ArtifactService,
        online: OnlineStore,
        allowed_locations: Vec<std::path::PathBuf>,
    ) -> FeatureService {
        let delta = DeltaStore::new(artifacts.store().root().clone(), allowed_locations);
        FeatureService {
            db,
            delta,
            tracking,
            artifacts,
            online,
            locks: Default::default(),
        }
    }

    pub(crate) fn lock(&self, name: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(name.to_string()).or_default().clone()
    }

    pub async fn get(&self, name: &str) -> Result<FeatureTable> {
        model::validate_name(name)?;
        store::get(&self.db, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("Feature table '{name}' does not exist")))
    }

    /// Creates a table from a schema, from data, or both (the data must fit the schema).
    /// Everything is checked before anything is written; a failed metadata insert removes
    /// the Delta files it created.
    pub async fn create(&self, req: CreateTable) -> Result<FeatureTable> {
        model::validate_name(&req.name)?;
        for (k, v) in &req.tags {
            if k.is_empty() || k.len() > 250 || v.len() > 5000 {
                return Err(Error::invalid(format!(
                    "Invalid tag '{k}': keys are 1-250 characters, values at most 5000"
                )));
            }
        }
        if store::get(&self.db, &req.name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Feature table '{}' already exists",
                req.name
            )));
        }
        let ts = req.timestamp_key.as_deref().filter(|s| !s.is_empty());
        let mut data = req.data;
        let columns = match (&req.schema, &data, &req.records) {
            (Some(schema), _, _) => schema.clone(),
            (None, Some(d), _) => convert::columns_of(&d.schema)?,
            (None, None, Some(records)) => {
                let d = records::infer(
                    records,
                    &ts.into_iter().collect::<Vec<_>>(),
                    Origin::Rows("records"),
                )?;
                let cols = convert::columns_of(&d.schema)?;
                data = Some(d);
                cols
            }
            (None, None, None) => {
                return Err(Error::invalid(
                    "Give the table a 'schema', or data ('records' or an Arrow/Parquet body) to take it from",
                ))
            }
        };
        let schema = model::validate_definition(&req.name, &req.primary_keys, ts, &columns)?;
        let managed = req.location.is_none();
        let location = match &req.location {
            Some(l) => self.delta.check_location(l)?,
            None => self.delta.default_location(&req.name)?,
        };
        let now = now_millis();
        let table = FeatureTable {
            name: req.name.clone(),
            primary_keys: req.primary_keys.clone(),
            timestamp_key: ts.map(str::to_string),
            description: req.description.clone(),
            tags: req.tags.clone(),
            schema,
            location,
            managed,
            creation_timestamp: now,
            last_updated_timestamp: now,
            created_by: req.user.clone(),
            last_updated_by: req.user.clone(),
            online: None,
        };
        if data.is_none() {
            if let (Some(records), Some(_)) = (&req.records, &req.schema) {
                data = Some(records::decode(
                    records,
                    &table.arrow_schema(),
                    Origin::Rows("records"),
                )?);
            }
        }
        let rows = match &data {
            Some(d) => {
                let rows = convert::conform(d, &table)?;
                check_unique(&table, &rows)?;
                Some(rows)
            }
            None => None,
        };
        let guard = self.lock(&table.name);
        let _guard = guard.lock().await;
        // Checked again under the lock: a concurrent create of the same name won.
        if store::get(&self.db, &table.name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Feature table '{}' already exists",
                table.name
            )));
        }
        if managed {
            // Leftovers of a table deleted while its files could not all be removed.
            if self.delta.latest_version(&table.location).await.is_ok() {
                self.delta.delete_all(&table.location).await?;
            }
        }
        match rows {
            Some(rows) if !rows.is_empty() => self.delta.create_with(&table, rows).await?,
            _ => self.delta.create(&table).await?,
        };
        if let Err(e) = store::insert(&self.db, &table).await {
            let _ = self.delta.delete_all(&table.location).await;
            return Err(e);
        }
        Ok(table)
    }

    /// The table with its latest Delta version, online state and lineage.
    pub async fn describe(&self, name: &str) -> Result<Value> {
        model::validate_name(name)?;
        let table = store::get_with_tags(&self.db, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("Feature table '{name}' does not exist")))?;
        let latest = self.delta.latest_version(&table.location).await.ok();
        let runs = store::runs_of(&self.db, name).await?;
        let versions = store::model_versions_of(&self.db, name).await?;
        let mut v = serde_json::to_value(&table).unwrap_or_default();
        v["latest_version"] = json!(latest);
        v["lineage"] = json!({
            "runs": runs.iter().map(|(r, tv)| json!({"run_id": r, "table_version": tv})).collect::<Vec<_>>(),
            "model_versions": versions.iter().map(|(m, mv, tv)| json!({"name": m, "version": mv.to_string(), "table_version": tv})).collect::<Vec<_>>(),
        });
        Ok(v)
    }

    pub async fn search(
        &self,
        filter: Option<&str>,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<FeatureTable>> {
        let limit = max_results.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid(format!(
                "Invalid value {limit} for parameter 'max_results': it must be between 1 and 1000"
            )));
        }
        let offset = decode_offset(page_token)?;
        let mut conditions = Vec::new();
        for c in parse_registered_model_filter(filter.unwrap_or(""))? {
            let RegistryValue::Text(value) = c.value else {
                return Err(Error::invalid(
                    "Feature table filters compare with a string",
                ));
            };
            let (lhs, extra) = match &c.key {
                RegistryKey::Attribute(_) => ("name".to_string(), None),
                RegistryKey::Tag(k) => ("t.value".to_string(), Some(k.clone())),
            };
            let cmp = match c.op {
                CompareOp::Eq => format!("{lhs} = ?"),
                CompareOp::Ne => format!("{lhs} != ?"),
                CompareOp::Like => format!("{lhs} LIKE ?"),
                CompareOp::ILike => format!("LOWER({lhs}) LIKE LOWER(?)"),
                other => {
                    return Err(Error::invalid(format!(
                        "Unsupported comparator '{}' in a feature table filter",
                        other.as_str()
                    )))
                }
            };
            match extra {
                None => conditions.push((cmp, vec![value])),
                Some(key) => conditions.push((
                    format!(
                        "EXISTS (SELECT 1 FROM feature_table_tags t WHERE \
                         t.table_name = feature_tables.name AND t.key = ? AND {cmp})"
                    ),
                    vec![key, value],
                )),
            }
        }
        let items = store::search(&self.db, &conditions, offset, limit + 1).await?;
        Ok(Page::from_overfetch(items, offset, limit))
    }

    pub async fn update_description(
        &self,
        name: &str,
        description: &str,
        user: &str,
    ) -> Result<()> {
        self.get(name).await?;
        store::set_description(&self.db, name, description, user, now_millis()).await
    }

    pub async fn set_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.get(name).await?;
        if key.is_empty() || key.len() > 250 || value.len() > 5000 {
            return Err(Error::invalid(format!(
                "Invalid tag '{key}': keys are 1-250 characters, values at most 5000"
            )));
        }
        store::set_tag(&self.db, name, key, value).await
    }

    pub async fn delete_tag(&self, name: &str, key: &str) -> Result<()> {
        self.get(name).await?;
        if !store::delete_tag(&self.db, name, key).await? {
            return Err(Error::not_found(format!(
                "No tag with key '{key}' on feature table '{name}'"
            )));
        }
        Ok(())
    }

    /// Deletes the metadata and online rows, then the files of a managed table.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let table = self.get(name).await?;
        let guard = self.lock(name);
        let _guard = guard.lock().await;
        store::delete(&self.db, name).await?;
        self.online.drop_table(name).await?;
        if table.managed {
            if let Err(e) = self.delta.delete_all(&table.location).await {
                tracing::warn!(
                    "feature table {name} deleted, its files not all: {}",
                    e.message
                );
            }
        }
        Ok(())
    }

    /// Writes rows (merge or overwrite) after schema enforcement; nothing is written when
    /// any row does not fit.
    pub async fn write(
        &self,
        name: &str,
        mode: WriteMode,
        data: Incoming,
        user: &str,
    ) -> Result<Value> {
        let table = self.get(name).await?;
        let rows = convert::conform(&data, &table)?;
        check_unique(&table, &rows)?;
        let n: usize = rows.iter().map(|b| b.num_rows()).sum();
        let guard = self.lock(name);
        let _guard = guard.lock().await;
        let (version, metrics) = match mode {
            WriteMode::Overwrite => self.delta.overwrite(&table.location, rows, user).await?,
            WriteMode::Merge if n == 0 => {
                let v = self.delta.latest_version(&table.location).await?;
                return Ok(json!({"version": v, "num_rows": 0, "metrics": {}}));
            }
            WriteMode::Merge => {
                self.delta
                    .merge(
                        &table.location,
                        table.arrow_schema(),
                        &table.merge_keys(),
                        rows,
                        user,
                    )
                    .await?
            }
        };
        store::touch(&self.db, name, user, now_millis()).await?;
        Ok(json!({"version": version, "num_rows": n, "metrics": metrics}))
    }

    /// Decodes JSON records against a table's schema.
    pub async fn decode_records(&self, name: &str, records: &[Value]) -> Result<Incoming> {
        let table = self.get(name).await?;
        records::decode(records, &table.arrow_schema(), Origin::Rows("records"))
    }

    pub async fn read(
        &self,
        name: &str,
        at: At,
        columns: &[String],
        keys: &[Value],
    ) -> Result<ReadResult> {
        let table = self.get(name).await?;
        for c in columns {
            if table.column(c).is_none() {
                return Err(Error::invalid(format!(
                    "Column '{c}' is not a column of feature table '{name}'"
                )));
            }
        }
        let filter = key_filter(&table, keys)?;
        let delta = self.delta.open(&table.location, at).await?;
        let version = delta.version().map(|v| v as i64).unwrap_or(0);
        let df = self.delta.scan(&delta, columns, filter).await?;
        let batches = df
            .collect()
            .await
            .map_err(|e| Error::internal(format!("Cannot read feature table '{name}': {e}")))?;
        let target = table.arrow_schema();
        let batches = batches
            .iter()
            .map(|b| convert::to_table_types(b, &target))
            .collect::<Result<Vec<_>>>()?;
        let schema: SchemaRef = match batches.first() {
            Some(b) => b.schema(),
            None => {
                let names: Vec<String> = if columns.is_empty() {
                    table.schema.iter().map(|c| c.name.clone()).collect()
                } else {
                    columns.to_vec()
                };
                Arc::new(deltalake::arrow::datatypes::Schema::new(
                    names
                        .iter()
                        .filter_map(|n| target.field_with_name(n).ok().cloned())
                        .collect::<Vec<_>>(),
                ))
            }
        };
        Ok(ReadResult {
            version,
            schema,
            batches,
        })
    }

    pub async fn history(&self, name: &str, limit: Option<usize>) -> Result<Vec<Value>> {
        let table = self.get(name).await?;
        self.delta.history(&table.location, limit).await
    }

    pub async fn optimize(&self, name: &str, target_size: Option<u64>) -> Result<Value> {
        let table = self.get(name).await?;
        let guard = self.lock(name);
        let _guard = guard.lock().await;
        let (version, metrics) = self.delta.optimize(&table.location, target_size).await?;
        Ok(json!({"version": version, "metrics": metrics}))
    }

    pub async fn vacuum(
        &self,
        name: &str,
        retention_hours: Option<u64>,
        dry_run: bool,
        enforce: bool,
    ) -> Result<Value> {
        let table = self.get(name).await?;
        let guard = self.lock(name);
        let _guard = guard.lock().await;
        self.delta
            .vacuum(&table.location, retention_hours, dry_run, enforce)
            .await
    }

    /// Feature tables (and versions) behind a registered model version.
    pub async fn model_version_lineage(&self, model: &str, version: i64) -> Result<Value> {
        let tables = store::tables_of_model_version(&self.db, model, version)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "Model Version (name={model}, version={version}) not found"
                ))
            })?;
        Ok(json!({
            "name": model,
            "version": version.to_string(),
            "feature_tables": tables.iter().map(|(t, v, run)| json!({"name": t, "version": v, "run_id": run})).collect::<Vec<_>>(),
        }))
    }
}

/// Rejects input with two rows for the same key (and time): Delta's merge would fail on
/// them, and a table's keys identify one row.
pub fn check_unique(table: &FeatureTable, rows: &[RecordBatch]) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let keys = table.merge_keys();
    let idx: Vec<usize> = keys
        .iter()
        .filter_map(|k| first.schema().index_of(k).ok())
        .collect();
    let fields: Vec<SortField> = idx
        .iter()
        .map(|&i| SortField::new(first.schema().field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)
        .map_err(|e| Error::internal(format!("cannot compare keys: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for batch in rows {
        let cols: Vec<_> = idx.iter().map(|&i| batch.column(i).clone()).collect();
        let converted = converter
            .convert_columns(&cols)
            .map_err(|e| Error::internal(format!("cannot compare keys: {e}")))?;
        for (row, key) in converted.iter().enumerate() {
            if !seen.insert(key.as_ref().to_vec()) {
                let shown: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        deltalake::arrow::util::display::array_value_to_string(c, row)
                            .unwrap_or_default()
                    })
                    .collect();
                return Err(Error::invalid(format!(
                    "Duplicate key ({}) = ({}) in the data: each key appears once per write",
                    keys.join(", "),
                    shown.join(", ")
                )));
            }
        }
    }
    Ok(())
}
