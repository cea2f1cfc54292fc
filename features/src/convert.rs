//! Rows in and out: JSON records, Arrow IPC streams and Parquet files, and Delta-style schema
//! enforcement of incoming rows against a table's schema.

use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use deltalake::arrow::compute::{cast_with_options, CastOptions};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::ipc::reader::{FileReader, StreamReader};
use deltalake::arrow::ipc::writer::StreamWriter;
use deltalake::arrow::json::reader::infer_json_schema_from_iterator;
use deltalake::arrow::json::{ReaderBuilder, WriterBuilder};
use deltalake::arrow::util::display::FormatOptions;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::arrow::ArrowWriter;
use ferroflow_core::{Error, Result};
use serde_json::Value;

use crate::model::{self, Column, FeatureTable};

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
pub const PARQUET: &str = "application/vnd.apache.parquet";
pub const JSON: &str = "application/json";

/// How rows travel on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Arrow,
    Parquet,
}

impl Format {
    /// The format of a request body, from its content type (JSON when absent).
    pub fn of_content_type(content_type: Option<&str>) -> Result<Format> {
        let ct = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match ct.as_str() {
            "" | "application/json" | "text/json" => Ok(Format::Json),
            ARROW_STREAM | "application/vnd.apache.arrow.file" | "application/x-arrow" => {
                Ok(Format::Arrow)
            }
            PARQUET | "application/x-parquet" | "application/parquet" => Ok(Format::Parquet),
            other => Err(Error::new(
                ferroflow_core::ErrorCode::BadRequest,
                format!(
                    "Unsupported content type '{other}': use {JSON}, {ARROW_STREAM} or {PARQUET}"
                ),
            )),
        }
    }

    /// The answer format: the `format` field when given, else the `Accept` header, else JSON.
    pub fn for_answer(field: Option<&str>, accept: Option<&str>) -> Result<Format> {
        if let Some(f) = field {
            return match f.to_ascii_lowercase().as_str() {
                "json" | "records" => Ok(Format::Json),
                "arrow" | "ipc" => Ok(Format::Arrow),
                "parquet" => Ok(Format::Parquet),
                other => Err(Error::invalid(format!(
                    "Unknown format '{other}': use json, arrow or parquet"
                ))),
            };
        }
        let accept = accept.unwrap_or("").to_ascii_lowercase();
        Ok(if accept.contains("arrow") {
            Format::Arrow
        } else if accept.contains("parquet") {
            Format::Parquet
        } else {
            Format::Json
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Arrow => ARROW_STREAM,
            Format::Parquet => PARQUET,
        }
    }
}

/// Rows as they arrived, in their own schema.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Incoming {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

fn bad_data(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("Cannot read {what}: {e}"))
}

/// Decodes an Arrow IPC stream (or file) body.
pub fn decode_ipc(body: Bytes) -> Result<Incoming> {
    if body.starts_with(b"ARROW1") {
        let reader = FileReader::try_new(std::io::Cursor::new(body), None)
            .map_err(|e| bad_data("Arrow file", e))?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad_data("Arrow file", e))?;
        return Ok(Incoming { schema, batches });
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(body), None)
        .map_err(|e| bad_data("Arrow IPC stream", e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_data("Arrow IPC stream", e))?;
    Ok(Incoming { schema, batches })
}

/// Decodes a Parquet file body.
pub fn decode_parquet(body: Bytes) -> Result<Incoming> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(body).map_err(|e| bad_data("Parquet", e))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| bad_data("Parquet", e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_data("Parquet", e))?;
    Ok(Incoming { schema, batches })
}

pub fn decode_body(format: Format, body: Bytes) -> Result<Incoming> {
    match format {
        Format::Arrow => decode_ipc(body),
        Format::Parquet => decode_parquet(body),
        Format::Json => Err(Error::invalid("JSON rows go in the 'records' field")),
    }
}

fn record_objects(records: &[Value]) -> Result<()> {
    match records.iter().position(|r| !r.is_object()) {
        Some(i) => Err(Error::invalid(format!(
            "records[{i}] is not an object of column values"
        ))),
        None => Ok(()),
    }
}

/// Casts scanned columns back to the table's types (DataFusion reads strings as views).
pub fn to_table_types(batch: &RecordBatch, table: &Schema) -> Result<RecordBatch> {
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| match table.field_with_name(f.name()) {
            Ok(t) => Field::new(f.name(), t.data_type().clone(), f.is_nullable()),
            Err(_) => f.as_ref().clone(),
        })
        .collect();
    let columns = batch
        .columns()
        .iter()
        .zip(&fields)
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                deltalake::arrow::compute::cast(c, f.data_type()).map_err(|e| {
                    Error::internal(format!("cannot convert column '{}': {e}", f.name()))
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::internal(format!("cannot assemble rows: {e}")))
}

/// Decodes JSON records into the given schema; a field the schema does not have is an error.
pub fn decode_records(records: &[Value], schema: &SchemaRef) -> Result<Incoming> {
    record_objects(records)?;
    for (i, r) in records.iter().enumerate() {
        if let Some(unknown) = r
            .as_object()
            .and_then(|o| o.keys().find(|k| schema.field_with_name(k).is_err()))
        {
            return Err(unknown_column(unknown, schema, Some(i)));
        }
    }
    // Decoded as nullable: `conform` names a missing key better than the decoder would.
    let nullable = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let mut decoder = ReaderBuilder::new(nullable.clone())
        .with_batch_size(records.len().max(1))
        .build_decoder()
        .map_err(|e| bad_data("records", e))?;
    decoder
        .serialize(records)
        .map_err(|e| Error::invalid(format!("Records do not fit the table schema: {e}")))?;
    let batch = decoder
        .flush()
        .map_err(|e| Error::invalid(format!("Records do not fit the table schema: {e}")))?;
    Ok(Incoming {
        schema: nullable,
        batches: batch.into_iter().collect(),
    })
}

/// Decodes JSON records whose schema is inferred (a table created from data, a spine);
/// `timestamps` names columns that hold RFC 3339 strings to be read as timestamps.
pub fn infer_records(records: &[Value], timestamps: &[&str]) -> Result<Incoming> {
    if records.is_empty() {
        return Err(Error::invalid(
            "records is empty: nothing to take a schema from",
        ));
    }
    record_objects(records)?;
    let inferred = infer_json_schema_from_iterator(records.iter().map(|v| Ok(v.clone())))
        .map_err(|e| bad_data("records", e))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            if timestamps.contains(&f.name().as_str()) && f.data_type() == &DataType::Utf8 {
                Field::new(f.name(), model::arrow_type("timestamp"), true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    decode_records(records, &Arc::new(Schema::new(fields)))
}

fn unknown_column(name: &str, schema: &Schema, row: Option<usize>) -> Error {
    let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let at = row.map(|i| format!(" (records[{i}])")).unwrap_or_default();
    Error::invalid(format!(
        "Unknown column '{name}'{at}: the table's columns are {}",
        known.join(", ")
    ))
}

/// The schema a table created from data gets: each column's Delta type.
pub fn columns_of(schema: &Schema) -> Result<Vec<Column>> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let t = model::type_of_arrow(f.data_type()).ok_or_else(|| {
                Error::invalid(format!(
                    "Column '{}' has type {} which a feature table cannot hold",
                    f.name(),
                    f.data_type()
                ))
            })?;
            Ok(Column {
                name: f.name().clone(),
                data_type: t.to_string(),
                nullable: true,
                description: None,
            })
        })
        .collect()
}

/// Whether data of type `from` may be written to a column of type `to` without loss or
/// reinterpretation (Delta's implicit upcasts).
fn writable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || from == &Null {
        return true;
    }
    let int_rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 | UInt8 => Some(2),
        Int32 | UInt16 => Some(3),
        Int64 | UInt32 => Some(4),
        _ => None,
    };
    match (from, to) {
        (f, t) if int_rank(f).is_some() && int_rank(t).is_some() => int_rank(f) <= int_rank(t),
        (f, Float64 | Float32) if int_rank(f).is_some() => true,
        (Float16 | Float32, Float64) => true,
        (Float16, Float32) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8) => true,
        (Binary | LargeBinary | BinaryView, Binary) => true,
        (Timestamp(_, _) | Date32 | Date64, Timestamp(_, _)) => true,
        (Date64, Date32) => true,
        _ => false,
    }
}

/// Fits incoming rows to the table's schema as Delta's schema enforcement does: a missing
/// column becomes nulls, an unknown column or a type that does not convert is an error, and
/// primary keys and the timestamp key must not be null. Nothing is written on error.
pub fn conform(incoming: &Incoming, table: &FeatureTable) -> Result<Vec<RecordBatch>> {
    let target = table.arrow_schema();
    for f in incoming.schema.fields() {
        if target.field_with_name(f.name()).is_err() {
            return Err(unknown_column(f.name(), &target, None));
        }
    }
    for key in table.merge_keys() {
        if incoming.schema.field_with_name(&key).is_err() {
            return Err(Error::invalid(format!(
                "Key column '{key}' is missing from the data"
            )));
        }
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut out = Vec::with_capacity(incoming.batches.len());
    for batch in &incoming.batches {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let array = match incoming.schema.index_of(field.name()) {
                Ok(i) => {
                    let source = batch.column(i);
                    if !writable(source.data_type(), field.data_type()) {
                        return Err(Error::invalid(format!(
                            "Type mismatch for column '{}': the table has {}, the data {}",
                            field.name(),
                            model::type_of_arrow(field.data_type()).unwrap_or("?"),
                            source.data_type()
                        )));
                    }
                    cast_with_options(source, field.data_type(), &options)
                        .map_err(|e| Error::invalid(format!("Column '{}': {e}", field.name())))?
                }
                Err(_) => new_null_array(field.data_type(), batch.num_rows()),
            };
            if !field.is_nullable() && array.null_count() > 0 {
                return Err(Error::invalid(format!(
                    "Column '{}' is a key and cannot be null ({} null values)",
                    field.name(),
                    array.null_count()
                )));
            }
            columns.push(array);
        }
        if batch.num_rows() > 0 {
            out.push(
                RecordBatch::try_new(target.clone(), columns)
                    .map_err(|e| Error::invalid(format!("Cannot assemble rows: {e}")))?,
            );
        }
    }
    Ok(out)
}

/// JSON records (an array of objects, nulls written out).
pub fn records_json(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, deltalake::arrow::json::writer::JsonArray>(Vec::new());
    for b in batches {
        writer
            .write(b)
            .map_err(|e| Error::internal(format!("cannot encode rows as JSON: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| Error::internal(format!("cannot encode rows as JSON: {e}")))?;
    let mut out = writer.into_inner();
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
}

/// An Arrow IPC stream.
pub fn arrow_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let fail = |e| Error::internal(format!("cannot encode rows as Arrow: {e}"));
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(fail)?;
    for b in batches {
        writer.write(b).map_err(fail)?;
    }
    writer.finish().map_err(fail)?;
    writer.into_inner().map_err(fail)
}

/// A Parquet file.
pub fn parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let fail = |e| Error::internal(format!("cannot encode rows as Parquet: {e}"));
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), None).map_err(fail)?;
    for b in batches {
        writer.write(b).map_err(fail)?;
    }
    writer.into_inner().map_err(fail)
}

/// The schema as the API shows it.
pub fn schema_json(schema: &Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": model::type_of_arrow(f.data_type()).unwrap_or("unknown"),
                    "nullable": f.is_nullable(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_definition;
    use serde_json::json;

    fn table() -> FeatureTable {
        let cols: Vec<Column> = serde_json::from_value(json!([
            {"name": "id", "type": "long"},
            {"name": "ts", "type": "timestamp"},
            {"name": "x", "type": "double"},
            {"name": "s", "type": "string"}
        ]))
        .unwrap();
        let schema = validate_definition("t", &["id".into()], Some("ts"), &cols).unwrap();
        FeatureTable {
            name: "t".into(),
            primary_keys: vec!["id".into()],
            timestamp_key: Some("ts".into()),
            description: String::new(),
            tags: Default::default(),
            schema,
            location: String::new(),
            managed: true,
            creation_timestamp: 0,
            last_updated_timestamp: 0,
            created_by: String::new(),
            last_updated_by: String::new(),
            online: None,
        }
    }

    #[test]
    fn records_are_enforced() {
        let t = table();
        let ok = decode_records(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": 1.5})],
            &t.arrow_schema(),
        )
        .unwrap();
        let rows = conform(&ok, &t).unwrap();
        assert_eq!(rows[0].num_rows(), 1);
        assert_eq!(rows[0].column(3).null_count(), 1, "missing column is null");
        let text = String::from_utf8(records_json(&rows).unwrap()).unwrap();
        assert!(text.contains("\"ts\":\"2024-05-01T12:00:00Z\""), "{text}");
        assert!(text.contains("\"s\":null"), "{text}");

        let unknown = decode_records(
            &[json!({"id": 1, "ts": "2024-05-01T00:00:00Z", "y": 2})],
            &t.arrow_schema(),
        );
        assert!(unknown.unwrap_err().message.contains("Unknown column 'y'"));
        let mismatch = decode_records(
            &[json!({"id": "abc", "ts": "2024-05-01T00:00:00Z"})],
            &t.arrow_schema(),
        );
        assert!(mismatch.is_err());
        let null_key = decode_records(
            &[json!({"ts": "2024-05-01T00:00:00Z", "x": 1})],
            &t.arrow_schema(),
        )
        .unwrap();
        assert!(conform(&null_key, &t).is_err());
    }

    #[test]
    fn arrow_types_are_checked() {
        let t = table();
        let inferred = infer_records(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": 2, "s": "a"})],
            &["ts"],
        )
        .unwrap();
        // Integer x into a double column is an upcast.
        conform(&inferred, &t).unwrap();
        let bad = infer_records(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": "2"})],
            &["ts"],
        )
        .unwrap();
        let err = conform(&bad, &t).unwrap_err();
        assert!(
            err.message.contains("Type mismatch for column 'x'"),
            "{}",
            err.message
        );
        // Round trip through IPC and Parquet.
        let rows = conform(&inferred, &t).unwrap();
        let ipc = arrow_ipc(&t.arrow_schema(), &rows).unwrap();
        assert_eq!(decode_ipc(Bytes::from(ipc)).unwrap().batches, rows);
        let pq = parquet(&t.arrow_schema(), &rows).unwrap();
        assert_eq!(decode_parquet(Bytes::from(pq)).unwrap().num_rows(), 1);
    }
}
