//! Point-in-time training sets: a spine (entity keys, event time, label) joined with feature
//! lookups "as of" each spine row — the latest feature row with the same key at or before the
//! spine's time, within the lookback window.
//!
//! Each looked-up table is indexed in memory (only the columns asked for): key → rows sorted by
//! time. The spine streams through in batches of 64k rows and the output is written batch by
//! batch, so a large Parquet spine needs memory for the indexes and one batch, not for itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::array::{new_null_array, Array, ArrayRef, Int64Array, RecordBatch};
use deltalake::arrow::compute::{cast, cast_with_options, interleave, CastOptions};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::ipc::writer::StreamWriter;
use deltalake::arrow::row::{RowConverter, SortField};
use deltalake::arrow::util::display::FormatOptions;
use deltalake::parquet::arrow::arrow_reader::ArrowReaderOptions;
use deltalake::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use deltalake::parquet::arrow::{AsyncArrowWriter, ParquetRecordBatchStreamBuilder};
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;
use ferroflow_core::{new_id, now_millis, Error, Result};
use ferroflow_tracking::model::{Dataset, DatasetInput, KeyValue};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::convert;
use crate::delta::At;
use crate::model::FeatureTable;
use crate::records::{self, Origin};
use crate::service::FeatureService;
use crate::store;

const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSetRequest {
    pub spine: Option<SpineSpec>,
    #[serde(default)]
    pub feature_lookups: Vec<FeatureLookup>,
    pub label: Option<String>,
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    pub output: Option<OutputSpec>,
    pub run_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpineSpec {
    pub records: Option<Vec<Value>>,
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureLookup {
    pub table_name: Option<String>,
    pub lookup_key: Option<OneOrMany>,
    pub feature_names: Option<Vec<String>>,
    #[serde(default)]
    pub rename_outputs: BTreeMap<String, String>,
    pub timestamp_lookup_key: Option<String>,
    pub lookback_window_seconds: Option<f64>,
    #[serde(default)]
    pub default_values: Map<String, Value>,
    /// Pins the Delta version read (the latest when absent).
    pub version: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub format: Option<String>,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Arrow,
    Parquet,
    Delta,
}

impl OutputFormat {
    fn parse(s: Option<&str>) -> Result<OutputFormat> {
        match s.unwrap_or("parquet").to_ascii_lowercase().as_str() {
            "json" | "records" => Ok(OutputFormat::Json),
            "arrow" => Ok(OutputFormat::Arrow),
            "parquet" => Ok(OutputFormat::Parquet),
            "delta" => Ok(OutputFormat::Delta),
            other => Err(Error::invalid(format!(
                "Unknown output format '{other}': use json, arrow, parquet or delta"
            ))),
        }
    }
}

/// Key bytes → (time µs, batch, row) of every feature row with that key, sorted by time.
type KeyIndex = HashMap<Box<[u8]>, Vec<(i64, u32, u32)>>;

/// One lookup, checked and indexed.
struct Prepared {
    table: FeatureTable,
    version: i64,
    spine_keys: Vec<String>,
    key_types: Vec<DataType>,
    spine_ts: Option<String>,
    lookback_us: Option<i64>,
    /// (output name, type) per feature.
    outputs: Vec<(String, DataType)>,
    /// Per feature: its array in every indexed batch, then a one-row fill (default or null).
    arrays: Vec<Vec<ArrayRef>>,
    converter: RowConverter,
    /// Key → (time µs, batch, row), sorted by time.
    index: KeyIndex,
}

/// A Parquet file on the artifact store, read by byte ranges (row group by row group).
pub struct StoreFile {
    store: Arc<dyn ObjectStore>,
    path: StorePath,
    size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, deltalake::parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, deltalake::parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

/// A spine being read batch by batch.
enum SpineReader {
    Batches(std::vec::IntoIter<RecordBatch>),
    Parquet(Box<ParquetRecordBatchStream<StoreFile>>),
}

impl SpineReader {
    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        match self {
            SpineReader::Batches(it) => Ok(it.next()),
            SpineReader::Parquet(stream) => match stream.next().await {
                None => Ok(None),
                Some(Ok(b)) => Ok(Some(b)),
                Some(Err(e)) => Err(Error::invalid(format!("Cannot read the spine: {e}"))),
            },
        }
    }
}

/// A finished training set: its description, and its rows when answered inline.
pub struct TrainingSet {
    pub description: Value,
    pub rows: Vec<RecordBatch>,
}

/// A checked request, ready to run.
pub struct Plan {
    id: String,
    name: String,
    spine: SpineReader,
    lookups: Vec<Prepared>,
    /// Spine columns kept, in output order.
    kept: Vec<usize>,
    schema: SchemaRef,
    pub format: OutputFormat,
    run_id: Option<String>,
    relative: String,
}

/// Where output batches go.
enum Sink {
    Collect(Vec<RecordBatch>),
    Arrow(
        Box<StreamWriter<Vec<u8>>>,
        mpsc::Sender<std::result::Result<Bytes, Error>>,
    ),
    Parquet(Box<AsyncArrowWriter<BufWriter>>),
    Delta {
        location: String,
        pending: Vec<RecordBatch>,
        created: bool,
    },
}

fn micros(array: &ArrayRef, what: &str) -> Result<Int64Array> {
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let ts = cast_with_options(
        array,
        &DataType::Timestamp(TimeUnit::Microsecond, Some(crate::model::UTC.into())),
        &options,
    )
    .map_err(|e| Error::invalid(format!("{what} is not a time: {e}")))?;
    let ints = cast(&ts, &DataType::Int64).map_err(|e| Error::internal(e.to_string()))?;
    ints.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| Error::internal("timestamp cast"))
}

fn fnv(text: &str) -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in text.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!("{h:08x}")
}

impl FeatureService {
    /// Checks a training-set request, opens the spine and indexes the looked-up tables.
    /// Every mistake in the request is found here, before any output is written.
    pub async fn plan_training_set(&self, req: TrainingSetRequest) -> Result<Plan> {
        let format = OutputFormat::parse(req.output.as_ref().and_then(|o| o.format.as_deref()))?;
        if req.feature_lookups.is_empty() {
            return Err(Error::invalid(
                "feature_lookups must hold at least one lookup",
            ));
        }
        if let Some(run_id) = &req.run_id {
            self.tracking.get_run(run_id).await?;
        }
        let spine_spec = req
            .spine
            .ok_or_else(|| ferroflow_core::http::missing_value("spine"))?;
        // Spine columns used as timestamps, so JSON strings are read as times.
        let ts_columns: Vec<String> = req
            .feature_lookups
            .iter()
            .filter_map(|l| l.timestamp_lookup_key.clone())
            .collect();
        let (spine, spine_schema) = match (spine_spec.records, spine_spec.uri) {
            (Some(records), None) => {
                let refs: Vec<&str> = ts_columns.iter().map(String::as_str).collect();
                let incoming = records::infer(&records, &refs, Origin::Rows("spine.records"))?;
                let mut batches = Vec::new();
                for b in incoming.batches {
                    let mut offset = 0;
                    while offset < b.num_rows() {
                        let len = BATCH_ROWS.min(b.num_rows() - offset);
                        batches.push(b.slice(offset, len));
                        offset += len;
                    }
                }
                (SpineReader::Batches(batches.into_iter()), incoming.schema)
            }
            (None, Some(uri)) => {
                let resolved = self.artifacts.resolve_runs_uri(&uri).await?;
                let (store, path) = self.artifacts.locate(&resolved)?;
                let meta = store.head(&path).await.map_err(|e| match e {
                    object_store::Error::NotFound { .. } => {
                        Error::not_found(format!("Spine '{uri}' does not exist"))
                    }
                    e => Error::internal(format!("Cannot read spine '{uri}': {e}")),
                })?;
                if meta.size == 0 {
                    return Err(Error::invalid(format!("Spine '{uri}' is empty")));
                }
                let file = StoreFile {
                    store,
                    path,
                    size: meta.size,
                };
                let builder = ParquetRecordBatchStreamBuilder::new(file)
                    .await
                    .map_err(|e| Error::invalid(format!("Spine '{uri}' is not Parquet: {e}")))?;
                let schema = builder.schema().clone();
                let stream = builder
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| Error::invalid(format!("Spine '{uri}': {e}")))?;
                (SpineReader::Parquet(Box::new(stream)), schema)
            }
            _ => {
                return Err(Error::invalid(
                    "spine takes exactly one of 'records' or 'uri' (a Parquet artifact)",
                ))
            }
        };
        let spine_names: Vec<String> = spine_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Some(label) = &req.label {
            if !spine_names.contains(label) {
                return Err(Error::invalid(format!(
                    "Label '{label}' is not a spine column"
                )));
            }
            if req.exclude_columns.contains(label) {
                return Err(Error::invalid(format!(
                    "Label '{label}' cannot be excluded"
                )));
            }
        }
        for c in &req.exclude_columns {
            if !spine_names.contains(c) {
                return Err(Error::invalid(format!(
                    "Excluded column '{c}' is not a spine column"
                )));
            }
        }
        let mut kept: Vec<usize> = (0..spine_names.len())
            .filter(|&i| {
                !req.exclude_columns.contains(&spine_names[i])
                    && Some(&spine_names[i]) != req.label.as_ref()
            })
            .collect();
        if let Some(label) = &req.label {
            kept.push(
                spine_schema
                    .index_of(label)
                    .map_err(|e| Error::internal(e.to_string()))?,
            );
        }
        let mut out_names: Vec<String> = kept.iter().map(|&i| spine_names[i].clone()).collect();
        let mut lookups = Vec::with_capacity(req.feature_lookups.len());
        for (i, lookup) in req.feature_lookups.into_iter().enumerate() {
            let p = self
                .prepare_lookup(i, lookup, &spine_schema, &mut out_names)
                .await?;
            lookups.push(p);
        }
        let mut fields: Vec<Field> = kept
            .iter()
            .map(|&i| spine_schema.field(i).as_ref().clone())
            .collect();
        for p in &lookups {
            for (name, dt) in &p.outputs {
                fields.push(Field::new(name, dt.clone(), true));
            }
        }
        let id = new_id();
        let relative = match req.output.as_ref().and_then(|o| o.path.clone()) {
            Some(p) => p.trim_matches('/').to_string(),
            None => format!("training-sets/{id}"),
        };
        if matches!(format, OutputFormat::Parquet | OutputFormat::Delta) {
            // Refuses escapes (`..`, absolute paths) before anything is written.
            self.artifacts.locate(&relative).map_err(|e| {
                Error::invalid(format!(
                    "output.path '{relative}' is not a path under the artifacts destination: {}",
                    e.message
                ))
            })?;
        }
        Ok(Plan {
            id,
            name: req.name.unwrap_or_else(|| "training_set".to_string()),
            spine,
            lookups,
            kept,
            schema: Arc::new(Schema::new(fields)),
            format,
            run_id: req.run_id,
            relative,
        })
    }

    async fn prepare_lookup(
        &self,
        i: usize,
        lookup: FeatureLookup,
        spine: &Schema,
        out_names: &mut Vec<String>,
    ) -> Result<Prepared> {
        let at = |field: &str| format!("feature_lookups[{i}].{field}");
        let name = lookup
            .table_name
            .clone()
            .ok_or_else(|| ferroflow_core::http::missing_value(&at("table_name")))?;
        let table = self.get(&name).await?;
        let spine_keys = lookup
            .lookup_key
            .clone()
            .ok_or_else(|| ferroflow_core::http::missing_value(&at("lookup_key")))?
            .into_vec();
        if spine_keys.len() != table.primary_keys.len() {
            return Err(Error::invalid(format!(
                "{}: table '{name}' has primary keys ({}); give one spine column for each",
                at("lookup_key"),
                table.primary_keys.join(", ")
            )));
        }
        let mut key_types = Vec::new();
        for (k, pk) in spine_keys.iter().zip(&table.primary_keys) {
            let field = spine.field_with_name(k).map_err(|_| {
                Error::invalid(format!("{}: '{k}' is not a spine column", at("lookup_key")))
            })?;
            let target = table
                .arrow_schema()
                .field_with_name(pk)
                .map_err(|e| Error::internal(e.to_string()))?
                .data_type()
                .clone();
            let numeric = |t: &DataType| t.is_integer();
            let stringy = |t: &DataType| {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            };
            if !(numeric(field.data_type()) && numeric(&target)
                || stringy(field.data_type()) && stringy(&target))
            {
                return Err(Error::invalid(format!(
                    "{}: spine column '{k}' ({}) cannot be compared with key '{pk}' ({target})",
                    at("lookup_key"),
                    field.data_type()
                )));
            }
            key_types.push(target);
        }
        let spine_ts = match (&table.timestamp_key, &lookup.timestamp_lookup_key) {
            (Some(_), Some(ts)) => {
                let f = spine.field_with_name(ts).map_err(|_| {
                    Error::invalid(format!(
                        "{}: '{ts}' is not a spine column",
                        at("timestamp_lookup_key")
                    ))
                })?;
                if !matches!(
                    f.data_type(),
                    DataType::Timestamp(_, _)
                        | DataType::Date32
                        | DataType::Date64
                        | DataType::Utf8
                ) {
                    return Err(Error::invalid(format!(
                        "{}: spine column '{ts}' has type {}, not a time",
                        at("timestamp_lookup_key"),
                        f.data_type()
                    )));
                }
                Some(ts.clone())
            }
            (Some(key), None) => {
                return Err(Error::invalid(format!(
                    "{}: table '{name}' is a time series (timestamp key '{key}'); name the spine's \
                     event time column for the point-in-time join",
                    at("timestamp_lookup_key")
                )))
            }
            (None, _) => None,
        };
        let lookback_us = match lookup.lookback_window_seconds {
            Some(s) if !(s.is_finite() && s >= 0.0) => {
                return Err(Error::invalid(format!(
                    "{}: {s} is not a non-negative number of seconds",
                    at("lookback_window_seconds")
                )))
            }
            Some(s) => Some((s * 1e6).round() as i64),
            None => None,
        };
        let features = table
            .features(lookup.feature_names.as_deref(), false)
            .map_err(|e| Error::invalid(format!("{}: {}", at("feature_names"), e.message)))?;
        for k in lookup
            .rename_outputs
            .keys()
            .chain(lookup.default_values.keys())
        {
            if !features.contains(k) {
                return Err(Error::invalid(format!(
                    "feature_lookups[{i}]: '{k}' (in rename_outputs or default_values) is not one of the looked-up features"
                )));
            }
        }
        let schema = table.arrow_schema();
        let mut outputs = Vec::with_capacity(features.len());
        for f in &features {
            let out = lookup
                .rename_outputs
                .get(f)
                .cloned()
                .unwrap_or_else(|| f.clone());
            if out_names.contains(&out) {
                return Err(Error::invalid(format!(
                    "feature_lookups[{i}]: output column '{out}' already exists; rename it with rename_outputs"
                )));
            }
            out_names.push(out.clone());
            let dt = schema
                .field_with_name(f)
                .map_err(|e| Error::internal(e.to_string()))?
                .data_type()
                .clone();
            outputs.push((out, dt));
        }
        // The one-row fills: the default value, or null.
        let fill_schema = Arc::new(Schema::new(
            features
                .iter()
                .map(|f| {
                    schema
                        .field_with_name(f)
                        .map(|x| x.as_ref().clone().with_nullable(true))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::internal(e.to_string()))?,
        ));
        let defaults = Value::Object(lookup.default_values.clone());
        let fill = records::decode(
            &[defaults],
            &fill_schema,
            Origin::Object(&at("default_values")),
        )?;
        let fill = fill
            .batches
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("default values"))?;

        let delta = self
            .delta
            .open(
                &table.location,
                lookup.version.map(At::Version).unwrap_or(At::Latest),
            )
            .await?;
        let version = delta.version().map(|v| v as i64).unwrap_or(0);
        let mut columns = table.primary_keys.clone();
        columns.extend(table.timestamp_key.clone());
        columns.extend(features.iter().cloned());
        let df = self.delta.scan(&delta, &columns, None).await?;
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| Error::internal(format!("Cannot read '{name}': {e}")))?;
        let converter = RowConverter::new(
            key_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect(),
        )
        .map_err(|e| Error::internal(e.to_string()))?;
        let mut index: KeyIndex = HashMap::new();
        let mut arrays: Vec<Vec<ArrayRef>> = vec![Vec::new(); features.len()];
        let nkeys = table.primary_keys.len();
        let mut b = 0u32;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| Error::internal(format!("Cannot read '{name}': {e}")))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = convert::to_table_types(&batch, &schema)?;
            let keys = converter
                .convert_columns(&batch.columns()[..nkeys])
                .map_err(|e| Error::internal(e.to_string()))?;
            let times = match &table.timestamp_key {
                Some(_) => Some(micros(batch.column(nkeys), "timestamp key")?),
                None => None,
            };
            for (row, key) in keys.iter().enumerate() {
                let t = times.as_ref().map(|t| t.value(row)).unwrap_or(0);
                index
                    .entry(key.as_ref().into())
                    .or_default()
                    .push((t, b, row as u32));
            }
            let first = nkeys + table.timestamp_key.is_some() as usize;
            for (f, arrays) in arrays.iter_mut().enumerate() {
                arrays.push(batch.column(first + f).clone());
            }
            b += 1;
        }
        for entries in index.values_mut() {
            entries.sort_by_key(|e| e.0);
        }
        for (f, arrays) in arrays.iter_mut().enumerate() {
            arrays.push(fill.column(f).clone());
        }
        Ok(Prepared {
            table,
            version,
            spine_keys,
            key_types,
            spine_ts,
            lookback_us,
            outputs,
            arrays,
            converter,
            index,
        })
    }

    /// Runs a plan into its output; returns the training set's description (and its rows
    /// when they are answered rather than written).
    pub async fn run_training_set(
        &self,
        mut plan: Plan,
        stream_to: Option<mpsc::Sender<std::result::Result<Bytes, Error>>>,
    ) -> Result<TrainingSet> {
        let mut sink = match (plan.format, stream_to) {
            (OutputFormat::Json, _) => Sink::Collect(Vec::new()),
            (OutputFormat::Arrow, Some(tx)) => Sink::Arrow(
                Box::new(
                    StreamWriter::try_new(Vec::new(), &plan.schema)
                        .map_err(|e| Error::internal(e.to_string()))?,
                ),
                tx,
            ),
            (OutputFormat::Arrow, None) => Sink::Collect(Vec::new()),
            (OutputFormat::Parquet, _) => {
                let (store, path) = self
                    .artifacts
                    .locate(&format!("{}/data.parquet", plan.relative))?;
                let props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(131_072))
                    .build();
                let writer = AsyncArrowWriter::try_new(
                    BufWriter::new(store, path),
                    plan.schema.clone(),
                    Some(props),
                )
                .map_err(|e| Error::internal(format!("cannot write the training set: {e}")))?;
                Sink::Parquet(Box::new(writer))
            }
            (OutputFormat::Delta, _) => Sink::Delta {
                location: self
                    .delta
                    .url_under(&plan.relative)?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
                pending: Vec::new(),
                created: false,
            },
        };
        let mut rows = 0usize;
        while let Some(batch) = plan.spine.next().await? {
            let out = join_batch(&plan, &batch)?;
            rows += out.num_rows();
            self.sink_write(&mut sink, out).await?;
        }
        let (location, collected) = self.sink_finish(sink, &plan).await?;
        let tables: Vec<(String, i64)> = plan
            .lookups
            .iter()
            .map(|p| (p.table.name.clone(), p.version))
            .collect();
        let mut description = json!({
            "id": plan.id,
            "name": plan.name,
            "format": match plan.format {
                OutputFormat::Json => "json",
                OutputFormat::Arrow => "arrow",
                OutputFormat::Parquet => "parquet",
                OutputFormat::Delta => "delta",
            },
            "num_rows": rows,
            "schema": convert::schema_json(&plan.schema),
            "feature_tables": tables.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
        });
        if let Some((uri, storage)) = &location {
            description["location"] = json!(uri);
            description["storage_location"] = json!(storage);
        }
        if let Some(run_id) = &plan.run_id {
            self.record_training_set(
                run_id,
                &plan,
                location.as_ref().map(|l| l.1.as_str()),
                &tables,
            )
            .await?;
            description["run_id"] = json!(run_id);
        }
        Ok(TrainingSet {
            description,
            rows: collected,
        })
    }

    async fn sink_write(&self, sink: &mut Sink, batch: RecordBatch) -> Result<()> {
        match sink {
            Sink::Collect(v) => v.push(batch),
            Sink::Arrow(writer, tx) => {
                writer
                    .write(&batch)
                    .map_err(|e| Error::internal(e.to_string()))?;
                let bytes = std::mem::take(writer.get_mut());
                if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                    return Err(Error::invalid("the client went away"));
                }
            }
            Sink::Parquet(writer) => writer
                .write(&batch)
                .await
                .map_err(|e| Error::internal(format!("cannot write the training set: {e}")))?,
            Sink::Delta {
                location,
                pending,
                created,
            } => {
                pending.push(batch);
                if pending.iter().map(|b| b.num_rows()).sum::<usize>() >= 8 * BATCH_ROWS {
                    self.flush_delta(location, pending, created).await?;
                }
            }
        }
        Ok(())
    }

    async fn flush_delta(
        &self,
        location: &str,
        pending: &mut Vec<RecordBatch>,
        created: &mut bool,
    ) -> Result<()> {
        let handle = if *created {
            self.delta.open(location, At::Latest).await?
        } else {
            self.delta.handle(location)?
        };
        let mode = if *created {
            SaveMode::Append
        } else {
            SaveMode::ErrorIfExists
        };
        handle
            .write(std::mem::take(pending))
            .with_save_mode(mode)
            .await
            .map_err(|e| crate::delta::delta_error("Cannot write the training set", e))?;
        *created = true;
        Ok(())
    }

    /// Closes the sink; returns the `(mlflow-artifacts URI, storage URL)` of written output,
    /// or the collected rows.
    async fn sink_finish(
        &self,
        sink: Sink,
        plan: &Plan,
    ) -> Result<(Option<(String, String)>, Vec<RecordBatch>)> {
        let location = match sink {
            Sink::Collect(batches) => return Ok((None, batches)),
            Sink::Arrow(mut writer, tx) => {
                writer
                    .finish()
                    .map_err(|e| Error::internal(e.to_string()))?;
                let bytes = std::mem::take(writer.get_mut());
                let _ = tx.send(Ok(Bytes::from(bytes))).await;
                None
            }
            Sink::Parquet(writer) => {
                writer
                    .close()
                    .await
                    .map_err(|e| Error::internal(format!("cannot write the training set: {e}")))?;
                let relative = format!("{}/data.parquet", plan.relative);
                Some((
                    format!("mlflow-artifacts:/{relative}"),
                    self.delta
                        .url_under(&relative)?
                        .as_str()
                        .trim_end_matches('/')
                        .to_string(),
                ))
            }
            Sink::Delta {
                location,
                mut pending,
                mut created,
            } => {
                if !pending.is_empty() || !created {
                    if pending.is_empty() {
                        pending.push(RecordBatch::new_empty(plan.schema.clone()));
                    }
                    self.flush_delta(&location, &mut pending, &mut created)
                        .await?;
                }
                Some((format!("mlflow-artifacts:/{}", plan.relative), location))
            }
        };
        Ok((location, Vec::new()))
    }

    /// Lineage rows and the run's input datasets: each feature table at its version, and
    /// the training set itself.
    async fn record_training_set(
        &self,
        run_id: &str,
        plan: &Plan,
        location: Option<&str>,
        tables: &[(String, i64)],
    ) -> Result<()> {
        store::record_lineage(&self.db, run_id, tables, now_millis()).await?;
        let mut inputs = Vec::new();
        for p in &plan.lookups {
            inputs.push(DatasetInput {
                tags: vec![KeyValue {
                    key: "mlflow.data.context".into(),
                    value: "feature_lookup".into(),
                }],
                dataset: Dataset {
                    name: p.table.name.clone(),
                    digest: fnv(&format!("{}@{}", p.table.location, p.version)),
                    source_type: "delta_table".into(),
                    source: json!({
                        "path": p.table.location,
                        "delta_table_name": p.table.name,
                        "delta_table_version": p.version,
                    })
                    .to_string(),
                    schema: None,
                    profile: None,
                },
            });
        }
        if let Some(location) = location {
            inputs.push(DatasetInput {
                tags: vec![KeyValue {
                    key: "mlflow.data.context".into(),
                    value: "training".into(),
                }],
                dataset: Dataset {
                    name: plan.name.clone(),
                    digest: fnv(location),
                    source_type: if plan.format == OutputFormat::Delta {
                        "delta_table"
                    } else {
                        "local"
                    }
                    .into(),
                    source: json!({ "path": location }).to_string(),
                    schema: None,
                    profile: Some(json!({"num_rows": null}).to_string()),
                },
            });
        }
        self.tracking.log_inputs(run_id, &inputs, &[]).await
    }
}

/// Joins one spine batch with every lookup.
fn join_batch(plan: &Plan, spine: &RecordBatch) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = plan.kept.iter().map(|&i| spine.column(i).clone()).collect();
    let n = spine.num_rows();
    for p in &plan.lookups {
        let mut keys = Vec::with_capacity(p.spine_keys.len());
        for (k, t) in p.spine_keys.iter().zip(&p.key_types) {
            let c = spine.column_by_name(k).ok_or_else(|| {
                Error::invalid(format!("spine column '{k}' is missing from a batch"))
            })?;
            keys.push(cast(c, t).map_err(|e| Error::invalid(format!("spine column '{k}': {e}")))?);
        }
        let null_key: Vec<bool> = (0..n).map(|r| keys.iter().any(|k| k.is_null(r))).collect();
        let converted = p
            .converter
            .convert_columns(&keys)
            .map_err(|e| Error::internal(e.to_string()))?;
        let times = match &p.spine_ts {
            Some(ts) => {
                let c = spine
                    .column_by_name(ts)
                    .ok_or_else(|| Error::invalid(format!("spine column '{ts}' is missing")))?;
                Some(micros(c, &format!("spine column '{ts}'"))?)
            }
            None => None,
        };
        let fill = p.arrays[0].len() - 1;
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(n);
        for (row, key) in converted.iter().enumerate() {
            let found = if null_key[row] {
                None
            } else {
                p.index.get(key.as_ref()).and_then(|entries| match &times {
                    None => entries.last().copied(),
                    Some(t) if t.is_null(row) => None,
                    Some(t) => {
                        let at = t.value(row);
                        let i = entries.partition_point(|e| e.0 <= at);
                        if i == 0 {
                            return None;
                        }
                        let e = entries[i - 1];
                        match p.lookback_us {
                            Some(window) if at - e.0 > window => None,
                            _ => Some(e),
                        }
                    }
                })
            };
            picks.push(match found {
                Some((_, b, r)) => (b as usize, r as usize),
                None => (fill, 0),
            });
        }
        for arrays in &p.arrays {
            let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let out = interleave(&refs, &picks).map_err(|e| Error::internal(e.to_string()))?;
            columns.push(out);
        }
    }
    if columns.is_empty() {
        return Ok(RecordBatch::new_empty(plan.schema.clone()));
    }
    let columns = columns
        .into_iter()
        .zip(plan.schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else if c.data_type() == &DataType::Null {
                Ok(new_null_array(f.data_type(), n))
            } else {
                cast(&c, f.data_type()).map_err(|e| Error::internal(e.to_string()))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(plan.schema.clone(), columns).map_err(|e| Error::internal(e.to_string()))
}
