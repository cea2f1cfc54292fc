//! Rows in and out: JSON records, Arrow IPC streams and Parquet files, and Delta-style schema
//! enforcement of incoming rows against a table's schema.

use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use deltalake::arrow::compute::{cast_with_options, CastOptions};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::ipc::reader::{FileReader, StreamReader};
use deltalake::arrow::ipc::writer::StreamWriter;
use deltalake::arrow::json::WriterBuilder;
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
            other => Err(Error::invalid(format!(
                "Unsupported content type '{other}': use {JSON}, {ARROW_STREAM} or {PARQUET}"
            ))),
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
            if f.data_type() == &DataType::Null {
                return Err(Error::invalid(format!(
                    "Column '{}' holds only nulls, so its type is unknown: give the table a 'schema'",
                    f.name()
                )));
            }
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

/// Whether data of type `from` may be written to a column of type `to` at all: numbers into
/// numbers, text into text, bytes into bytes, times into times. Each value must still fit
/// exactly (`fit`).
fn writable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let numeric = |t: &DataType| t.is_integer() || t.is_floating();
    from == to
        || from == &Null
        || (numeric(from) && numeric(to))
        || matches!(
            (from, to),
            (Utf8 | LargeUtf8 | Utf8View, Utf8)
                | (Binary | LargeBinary | BinaryView, Binary)
                | (Timestamp(_, _) | Date32 | Date64, Timestamp(_, _))
                | (Date64, Date32)
        )
}

/// One incoming column in the table's type, refused (naming the row, counted from
/// `first_row`) when a value does not fit or would change: a fraction or an out-of-range number
/// into an integer, an integer a float cannot hold exactly, nanoseconds into microseconds.
fn fit(source: &ArrayRef, field: &Field, first_row: usize) -> Result<ArrayRef> {
    let to = field.data_type();
    if source.data_type() == to {
        return Ok(source.clone());
    }
    let column = || {
        format!(
            "Column '{}' ({})",
            field.name(),
            model::type_of_arrow(to).unwrap_or("?")
        )
    };
    if !writable(source.data_type(), to) {
        return Err(Error::invalid(format!(
            "Type mismatch for column '{}': the table has {}, the data {}",
            field.name(),
            model::type_of_arrow(to).unwrap_or("?"),
            source.data_type()
        )));
    }
    if source.data_type() == &DataType::Null {
        return Ok(new_null_array(to, source.len()));
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let round_trip = |a: &ArrayRef| -> Option<ArrayRef> {
        let c = cast_with_options(a, to, &options).ok()?;
        let back = cast_with_options(&c, a.data_type(), &options).ok()?;
        (back.as_ref() == a.as_ref()).then_some(c)
    };
    if let Some(c) = round_trip(source) {
        return Ok(c);
    }
    let row = (0..source.len())
        .find(|&i| round_trip(&source.slice(i, 1)).is_none())
        .unwrap_or(0);
    let shown = deltalake::arrow::util::display::array_value_to_string(source, row)
        .unwrap_or_else(|_| "?".into());
    Err(Error::invalid(format!(
        "{}: row {} holds {shown} ({}), which the column cannot hold exactly; nothing was written",
        column(),
        first_row + row,
        source.data_type()
    )))
}

/// Fits incoming rows to the table's schema as Delta's schema enforcement does: a missing
/// column becomes nulls, an unknown column, a type that does not convert or a value that would
/// change is an error, and primary keys and the timestamp key must not be null. Nothing is
/// written on error.
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
    let mut out = Vec::with_capacity(incoming.batches.len());
    let mut first_row = 0;
    for batch in &incoming.batches {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let array = match incoming.schema.index_of(field.name()) {
                Ok(i) => fit(batch.column(i), field, first_row)?,
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
        first_row += batch.num_rows();
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
    use crate::records::{decode, infer, Origin};
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
        let ok = decode(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": 1.5})],
            &t.arrow_schema(),
            Origin::Rows("records"),
        )
        .unwrap();
        let rows = conform(&ok, &t).unwrap();
        assert_eq!(rows[0].num_rows(), 1);
        assert_eq!(rows[0].column(3).null_count(), 1, "missing column is null");
        let text = String::from_utf8(records_json(&rows).unwrap()).unwrap();
        assert!(text.contains("\"ts\":\"2024-05-01T12:00:00Z\""), "{text}");
        assert!(text.contains("\"s\":null"), "{text}");

        let unknown = decode(
            &[json!({"id": 1, "ts": "2024-05-01T00:00:00Z", "y": 2})],
            &t.arrow_schema(),
            Origin::Rows("records"),
        );
        assert!(unknown.unwrap_err().message.contains("Unknown column 'y'"));
        let mismatch = decode(
            &[json!({"id": "abc", "ts": "2024-05-01T00:00:00Z"})],
            &t.arrow_schema(),
            Origin::Rows("records"),
        );
        assert!(mismatch.is_err());
        let null_key = decode(
            &[json!({"ts": "2024-05-01T00:00:00Z", "x": 1})],
            &t.arrow_schema(),
            Origin::Rows("records"),
        )
        .unwrap();
        assert!(conform(&null_key, &t).is_err());
    }

    #[test]
    fn arrow_values_convert_only_when_they_fit_exactly() {
        use deltalake::arrow::array::{Float64Array, Int64Array, TimestampNanosecondArray};
        let int = Field::new("i", DataType::Int32, true);
        let fits: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(-5)]));
        let out = fit(&fits, &int, 0).unwrap();
        assert_eq!(out.data_type(), &DataType::Int32);
        assert_eq!(out.null_count(), 1);
        let too_big: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3_000_000_000]));
        let m = fit(&too_big, &int, 10).unwrap_err().message;
        assert!(
            m.contains("Column 'i' (integer): row 12 holds 3000000000"),
            "{m}"
        );

        let long = Field::new("l", DataType::Int64, true);
        let whole: ArrayRef = Arc::new(Float64Array::from(vec![Some(3.0), None]));
        assert_eq!(fit(&whole, &long, 0).unwrap().null_count(), 1);
        let frac: ArrayRef = Arc::new(Float64Array::from(vec![3.0, 3.5]));
        let m = fit(&frac, &long, 0).unwrap_err().message;
        assert!(m.contains("row 1 holds 3.5"), "{m}");
        let double = Field::new("d", DataType::Float64, true);
        let huge: ArrayRef = Arc::new(Int64Array::from(vec![9_007_199_254_740_993]));
        assert!(fit(&huge, &double, 0).is_err(), "2^53 + 1 is not a double");

        let ts = Field::new("t", model::arrow_type("timestamp"), true);
        let whole_us: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(vec![1_000_000_000i64]).with_timezone("UTC"));
        assert!(fit(&whole_us, &ts, 0).is_ok());
        let nanos: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(vec![1_000_000_001i64]).with_timezone("UTC"));
        assert!(
            fit(&nanos, &ts, 0).is_err(),
            "a nanosecond would be dropped"
        );
        let text: ArrayRef = Arc::new(deltalake::arrow::array::StringArray::from(vec!["1"]));
        let m = fit(&text, &long, 0).unwrap_err().message;
        assert!(m.contains("Type mismatch for column 'l'"), "{m}");
    }

    #[test]
    fn arrow_types_are_checked() {
        let t = table();
        let inferred = infer(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": 2, "s": "a"})],
            &["ts"],
            Origin::Rows("records"),
        )
        .unwrap();
        // Integer x into a double column is an upcast.
        conform(&inferred, &t).unwrap();
        let bad = infer(
            &[json!({"id": 1, "ts": "2024-05-01T12:00:00Z", "x": "2"})],
            &["ts"],
            Origin::Rows("records"),
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
