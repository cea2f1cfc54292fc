//! JSON values in: the one rule by which every JSON entry point of the feature store (writes,
//! tables created from records, spines, read and online-lookup keys, `default_values`) reads a
//! value into a column. A value is taken only when its column holds it as sent; anything else
//! is refused with a message naming the place, the row and the column, and nothing is written.
//!
//! | column | JSON accepted |
//! |---|---|
//! | `byte` `short` `integer` `long` | a number with no fractional part that fits the column (`2` or `2.0`; not `2.5`, not `"2"`, not beyond ±2^53 when written with a fraction or exponent) |
//! | `float` `double` | a number; an integer must be held exactly (±2^24 / ±2^53); a fraction is rounded to the nearest float as the JSON text itself is; not a string |
//! | `boolean` | `true` / `false` |
//! | `string` | a string (a number is not a string) |
//! | `date` | `"YYYY-MM-DD"` |
//! | `timestamp` | an RFC 3339 / ISO 8601 string (no zone means UTC; at most microsecond digits), or an integer of epoch **milliseconds** (MLflow's unit) between 1e11 (1973-03-03) and 9999-12-31 |
//! | `binary` | a hex string (as reads return it) |
//!
//! `null` (or a missing key) is a null; keys and the timestamp key refuse nulls later.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Timelike, Utc};
use deltalake::arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::compute::kernels::cast_utils::string_to_datetime;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ferroflow_core::{Error, Result};
use serde_json::{Map, Value};

use crate::convert::Incoming;
use crate::model;

/// Where JSON values come from, for messages: `records[3]`, `spine.records[3]`, or an object
/// without rows (`feature_lookups[0].default_values`).
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// An array of row objects, named as the request names it.
    Rows(&'a str),
    /// One object.
    Object(&'a str),
}

impl Origin<'_> {
    fn at(&self, row: usize) -> String {
        match self {
            Origin::Rows(name) => format!("{name}[{row}]"),
            Origin::Object(name) => (*name).to_string(),
        }
    }
}

/// Largest integer every f64 holds exactly.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;
/// Epoch milliseconds accepted for a `timestamp`: from 1e11 (1973-03-03; smaller values are
/// most likely seconds) to 9999-12-31T23:59:59.999Z (larger ones most likely micro- or
/// nanoseconds).
const MIN_EPOCH_MS: i64 = 100_000_000_000;
const MAX_EPOCH_MS: i64 = 253_402_300_799_999;

/// A short rendering of a refused value.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("the string \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}

/// An integer in [min, max], from a JSON number without a fractional part.
fn integer(v: &Value, min: i64, max: i64) -> std::result::Result<i64, String> {
    let Value::Number(n) = v else {
        return Err(format!("{} is not an integer", shown(v)));
    };
    let i = if let Some(i) = n.as_i64() {
        i
    } else if n.is_u64() {
        return Err(format!("{n} is out of range [{min}, {max}]"));
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(format!("{n} is not an integer"));
        }
        if f.abs() > EXACT_F64 {
            return Err(format!(
                "{n} is beyond ±2^53 and written as a fraction or with an exponent, so its exact value is unknown"
            ));
        }
        f as i64
    };
    if i < min || i > max {
        return Err(format!("{n} is out of range [{min}, {max}]"));
    }
    Ok(i)
}

/// A float from a JSON number; an integer must be held exactly by a float of `bits` (32 or 64).
fn float(v: &Value, bits: u32) -> std::result::Result<f64, String> {
    let Value::Number(n) = v else {
        return Err(format!("{} is not a number", shown(v)));
    };
    let whole = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
    if let Some(i) = whole {
        let back = if bits == 32 {
            (i as f32) as i128
        } else {
            (i as f64) as i128
        };
        if back != i {
            return Err(format!("{n} cannot be held exactly by the column"));
        }
        return Ok(i as f64);
    }
    let f = n
        .as_f64()
        .ok_or_else(|| format!("{n} is not a finite number"))?;
    if bits == 32 && (f as f32).is_infinite() {
        return Err(format!("{n} is out of a float's range"));
    }
    Ok(f)
}

/// A string as sent.
fn string(v: &Value) -> std::result::Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("{} is not a string", shown(other))),
    }
}

/// Microseconds since the epoch, from a time string or an integer of epoch milliseconds.
pub fn timestamp_micros(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::String(s) => {
            let t = string_to_datetime(&Utc, s.trim())
                .map_err(|_| format!("the string \"{s}\" is not an RFC 3339 time"))?;
            if t.nanosecond() % 1_000 != 0 {
                return Err(format!(
                    "\"{s}\" has digits below a microsecond, which a timestamp does not hold"
                ));
            }
            Ok(t.timestamp_micros())
        }
        Value::Number(_) => {
            let ms = integer(v, i64::MIN, i64::MAX)
                .map_err(|_| format!("{v} is not an integer of epoch milliseconds"))?;
            if !(MIN_EPOCH_MS..=MAX_EPOCH_MS).contains(&ms) {
                return Err(format!(
                    "{v} is not a time in epoch milliseconds between {MIN_EPOCH_MS} (1973-03-03) and \
                     {MAX_EPOCH_MS} (9999-12-31); send seconds or microseconds as an RFC 3339 string"
                ));
            }
            Ok(ms * 1_000)
        }
        other => Err(format!("{} is not a time", shown(other))),
    }
}

fn date_days(v: &Value) -> std::result::Result<i32, String> {
    let s = string(v)?;
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("the string \"{s}\" is not a date (YYYY-MM-DD)"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).map_err(|_| format!("\"{s}\" is out of range"))
}

fn hex_bytes(v: &Value) -> std::result::Result<Vec<u8>, String> {
    let s = string(v)?;
    if s.len() % 2 != 0 {
        return Err(format!("\"{s}\" is not hex (an odd number of digits)"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("the string \"{s}\" is not hex"))
        })
        .collect()
}

/// One column's values (None: missing or null) into an array of `data_type`; the error is the
/// row and the reason.
fn column(
    values: &[Option<&Value>],
    data_type: &DataType,
) -> std::result::Result<ArrayRef, (usize, String)> {
    macro_rules! build {
        ($builder:expr, $read:expr) => {{
            let mut b = $builder;
            for (row, v) in values.iter().enumerate() {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => b.append_value($read(*v).map_err(|e| (row, e))?),
                }
            }
            Ok(Arc::new(b.finish()) as ArrayRef)
        }};
    }
    let n = values.len();
    match data_type {
        DataType::Boolean => build!(BooleanBuilder::with_capacity(n), |v: &Value| v
            .as_bool()
            .ok_or_else(|| format!("{} is not true or false", shown(v)))),
        DataType::Int8 => build!(Int8Builder::with_capacity(n), |v| integer(
            v,
            i8::MIN as i64,
            i8::MAX as i64
        )
        .map(|i| i as i8)),
        DataType::Int16 => build!(Int16Builder::with_capacity(n), |v| integer(
            v,
            i16::MIN as i64,
            i16::MAX as i64
        )
        .map(|i| i as i16)),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), |v| integer(
            v,
            i32::MIN as i64,
            i32::MAX as i64
        )
        .map(|i| i as i32)),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), |v| integer(
            v,
            i64::MIN,
            i64::MAX
        )),
        DataType::Float32 => build!(Float32Builder::with_capacity(n), |v| float(v, 32)
            .map(|f| f as f32)),
        DataType::Float64 => build!(Float64Builder::with_capacity(n), |v| float(v, 64)),
        DataType::Utf8 => build!(StringBuilder::with_capacity(n, n * 8), string),
        DataType::Date32 => build!(Date32Builder::with_capacity(n), date_days),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => build!(
            TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz.clone()),
            timestamp_micros
        ),
        DataType::Binary => build!(BinaryBuilder::with_capacity(n, n * 8), hex_bytes),
        DataType::Null => match values
            .iter()
            .position(|v| !matches!(v, None | Some(Value::Null)))
        {
            Some(row) => Err((row, "the column holds only nulls elsewhere".into())),
            None => Ok(new_null_array(&DataType::Null, n)),
        },
        other => Err((0, format!("type {other} cannot be sent as JSON"))),
    }
}

/// One JSON value read into a column of `data_type` by the same rule (a one-row array).
pub fn value(v: &Value, data_type: &DataType) -> std::result::Result<ArrayRef, String> {
    column(&[Some(v)], data_type).map_err(|(_, why)| why)
}

/// A primary-key value in its canonical JSON form (integers as numbers, strings as strings),
/// read by the same rule: the online store's key text.
pub fn key_part(v: &Value, data_type: &DataType) -> std::result::Result<Value, String> {
    let range = match data_type {
        DataType::Utf8 => return string(v).map(|s| Value::String(s.to_string())),
        DataType::Int8 => (i8::MIN as i64, i8::MAX as i64),
        DataType::Int16 => (i16::MIN as i64, i16::MAX as i64),
        DataType::Int32 => (i32::MIN as i64, i32::MAX as i64),
        DataType::Int64 => (i64::MIN, i64::MAX),
        other => return Err(format!("a key of type {other} cannot be looked up")),
    };
    integer(v, range.0, range.1).map(Value::from)
}

fn objects<'v>(records: &'v [Value], origin: Origin) -> Result<Vec<&'v Map<String, Value>>> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.as_object().ok_or_else(|| {
                Error::invalid(format!(
                    "{} is not an object of column values",
                    origin.at(i)
                ))
            })
        })
        .collect()
}

fn type_name(dt: &DataType) -> String {
    model::type_of_arrow(dt)
        .map(str::to_string)
        .unwrap_or_else(|| dt.to_string())
}

/// Reads JSON row objects into `schema` (decoded as nullable: `conform` names a missing key
/// better). A key the schema does not have is an error.
pub fn decode(records: &[Value], schema: &SchemaRef, origin: Origin) -> Result<Incoming> {
    let rows = objects(records, origin)?;
    for (i, r) in rows.iter().enumerate() {
        if let Some(unknown) = r.keys().find(|k| schema.field_with_name(k).is_err()) {
            let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::invalid(format!(
                "Unknown column '{unknown}' ({}): the columns are {}",
                origin.at(i),
                known.join(", ")
            )));
        }
    }
    let nullable = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let columns = nullable
        .fields()
        .iter()
        .map(|f| {
            let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(f.name())).collect();
            column(&values, f.data_type()).map_err(|(row, why)| {
                Error::invalid(format!(
                    "{}: column '{}' ({}): {why}; nothing was written",
                    origin.at(row),
                    f.name(),
                    type_name(f.data_type())
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let batch = if rows.is_empty() {
        RecordBatch::new_empty(nullable.clone())
    } else {
        RecordBatch::try_new(nullable.clone(), columns)
            .map_err(|e| Error::internal(format!("cannot assemble rows: {e}")))?
    };
    Ok(Incoming {
        schema: nullable,
        batches: vec![batch],
    })
}

/// What a JSON value says about its column's type when no schema is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Bool,
    Int,
    Float,
    Str,
}

fn seen(v: &Value) -> Option<Seen> {
    match v {
        Value::Bool(_) => Some(Seen::Bool),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Seen::Int),
        Value::Number(_) => Some(Seen::Float),
        Value::String(_) => Some(Seen::Str),
        _ => None,
    }
}

/// Reads JSON row objects whose schema is taken from the values (a table created from
/// records, a spine): columns in the order the rows name them; integers are `long`, any
/// fraction makes a column `double`, strings are `string` (`timestamp` for the columns named
/// in `timestamps`, which also take epoch milliseconds), `true`/`false` are `boolean`. A column
/// whose values disagree (a string among numbers) is refused.
pub fn infer(records: &[Value], timestamps: &[&str], origin: Origin) -> Result<Incoming> {
    if records.is_empty() {
        return Err(Error::invalid(format!(
            "{} is empty: nothing to take a schema from",
            match origin {
                Origin::Rows(n) | Origin::Object(n) => n,
            }
        )));
    }
    let rows = objects(records, origin)?;
    let mut names: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut kinds: Vec<Option<(Seen, usize)>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for (k, v) in r.iter() {
            let idx = *index.entry(k.as_str()).or_insert_with(|| {
                names.push(k);
                kinds.push(None);
                names.len() - 1
            });
            if v.is_null() {
                continue;
            }
            let Some(now) = seen(v) else {
                return Err(Error::invalid(format!(
                    "{}: column '{k}': {} is not a scalar value",
                    origin.at(i),
                    shown(v)
                )));
            };
            let time = timestamps.contains(&k.as_str());
            kinds[idx] = match kinds[idx] {
                None => Some((now, i)),
                Some((before, at)) => match (before, now) {
                    (a, b) if a == b => Some((a, at)),
                    (Seen::Int, Seen::Float) | (Seen::Float, Seen::Int) => Some((Seen::Float, at)),
                    // A time column takes strings and epoch milliseconds side by side.
                    (Seen::Int | Seen::Str, Seen::Int | Seen::Str) if time => Some((Seen::Str, at)),
                    _ => {
                        return Err(Error::invalid(format!(
                            "{}: column '{k}': {} does not agree with the column's value in {}",
                            origin.at(i),
                            shown(v),
                            origin.at(at)
                        )))
                    }
                },
            };
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&kinds)
        .map(|(name, kind)| {
            let dt = if timestamps.contains(name) {
                model::arrow_type("timestamp")
            } else {
                match kind {
                    None => DataType::Null,
                    Some((Seen::Bool, _)) => DataType::Boolean,
                    Some((Seen::Int, _)) => DataType::Int64,
                    Some((Seen::Float, _)) => DataType::Float64,
                    Some((Seen::Str, _)) => DataType::Utf8,
                }
            };
            Field::new(*name, dt, true)
        })
        .collect();
    decode(records, &Arc::new(Schema::new(fields)), origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
    use serde_json::json;

    fn schema(fields: &[(&str, &str)]) -> SchemaRef {
        Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, model::arrow_type(t), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn refused(records: Value, fields: &[(&str, &str)]) -> String {
        let records = records.as_array().cloned().unwrap();
        decode(&records, &schema(fields), Origin::Rows("records"))
            .unwrap_err()
            .message
    }

    #[test]
    fn fractions_are_not_integers() {
        for (v, t) in [
            (json!(2.5), "long"),
            (json!(-7.9), "long"),
            (json!(42.25), "integer"),
        ] {
            let m = refused(json!([{"a": 1}, {"a": v}]), &[("a", t)]);
            assert!(m.starts_with("records[1]: column 'a'"), "{m}");
            assert!(m.contains("is not an integer"), "{m}");
        }
        // An integral number is the same number however it is written.
        let ok = decode(
            &[json!({"a": 2.0}), json!({"a": -3})],
            &schema(&[("a", "integer")]),
            Origin::Rows("records"),
        )
        .unwrap();
        let a = ok.batches[0].column(0).as_primitive::<Int32Type>();
        assert_eq!((a.value(0), a.value(1)), (2, -3));
    }

    #[test]
    fn out_of_range_and_strings_are_refused() {
        let m = refused(json!([{"a": 3_000_000_000i64}]), &[("a", "integer")]);
        assert!(m.contains("out of range"), "{m}");
        let m = refused(json!([{"a": 300}]), &[("a", "byte")]);
        assert!(m.contains("out of range"), "{m}");
        let m = refused(json!([{"a": "1.5"}]), &[("a", "double")]);
        assert!(m.contains("the string \"1.5\" is not a number"), "{m}");
        let m = refused(json!([{"a": "7"}]), &[("a", "long")]);
        assert!(m.contains("is not an integer"), "{m}");
        let m = refused(json!([{"a": 7}]), &[("a", "string")]);
        assert!(m.contains("7 is not a string"), "{m}");
        let m = refused(json!([{"a": 1}]), &[("a", "boolean")]);
        assert!(m.contains("not true or false"), "{m}");
        let m = refused(json!([{"a": 9_007_199_254_740_993i64}]), &[("a", "double")]);
        assert!(m.contains("exactly"), "{m}");
        let m = refused(json!([{"a": 16_777_217}]), &[("a", "float")]);
        assert!(m.contains("exactly"), "{m}");
        let m = refused(json!([{"a": 1e300}]), &[("a", "float")]);
        assert!(m.contains("range"), "{m}");
    }

    #[test]
    fn timestamps_are_strings_or_epoch_milliseconds() {
        let ok = decode(
            &[
                json!({"t": 1_709_251_200_000i64}),
                json!({"t": "2024-03-01T00:00:00Z"}),
                json!({"t": "2024-03-01T01:00:00+01:00"}),
                json!({"t": "2024-03-01 00:00:00"}),
                json!({"t": "2024-03-01T00:00:00.000001Z"}),
            ],
            &schema(&[("t", "timestamp")]),
            Origin::Rows("records"),
        )
        .unwrap();
        let t = ok.batches[0]
            .column(0)
            .as_primitive::<TimestampMicrosecondType>();
        let want = 1_709_251_200_000_000i64;
        assert_eq!(
            t.values().to_vec(),
            vec![want, want, want, want, want + 1],
            "ms, UTC, an offset, no zone (UTC), a microsecond"
        );
        for bad in [
            json!(1_709_251_200i64),               // seconds
            json!(1_709_251_200_000_000i64),       // microseconds
            json!(1_709_251_200_000.5),            // a fraction of a millisecond
            json!("2024-03-01T00:00:00.0000001Z"), // below a microsecond
            json!("yesterday"),
            json!(true),
        ] {
            let m = refused(json!([{"t": bad}]), &[("t", "timestamp")]);
            assert!(m.starts_with("records[0]: column 't' (timestamp)"), "{m}");
        }
    }

    #[test]
    fn dates_and_binary() {
        let ok = decode(
            &[json!({"d": "2024-03-01", "b": "00ff"})],
            &schema(&[("d", "date"), ("b", "binary")]),
            Origin::Rows("records"),
        )
        .unwrap();
        assert_eq!(
            ok.batches[0]
                .column(0)
                .as_primitive::<deltalake::arrow::datatypes::Date32Type>()
                .value(0),
            19783
        );
        assert_eq!(
            ok.batches[0].column(1).as_binary::<i32>().value(0),
            [0, 255]
        );
        assert!(refused(json!([{"b": "0g"}]), &[("b", "binary")]).contains("hex"));
        assert!(refused(json!([{"d": "03/01/2024"}]), &[("d", "date")]).contains("YYYY-MM-DD"));
    }

    #[test]
    fn inference_keeps_the_order_the_rows_name_columns() {
        let rows = infer(
            &[
                json!({"zeta": 1, "alpha": "x", "mid": 1}),
                json!({"zeta": 2, "alpha": "y", "mid": 2.5, "late": true}),
            ],
            &[],
            Origin::Rows("records"),
        )
        .unwrap();
        let names: Vec<&str> = rows
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["zeta", "alpha", "mid", "late"]);
        assert_eq!(rows.schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(rows.schema.field(2).data_type(), &DataType::Float64);
        assert_eq!(rows.schema.field(3).data_type(), &DataType::Boolean);
        let zeta = rows.batches[0].column(0).as_primitive::<Int64Type>();
        assert_eq!(zeta.len(), 2);

        let m = infer(
            &[json!({"a": 1}), json!({"a": "x"})],
            &[],
            Origin::Rows("spine.records"),
        )
        .unwrap_err()
        .message;
        assert!(m.starts_with("spine.records[1]: column 'a'"), "{m}");
        let t = infer(
            &[
                json!({"t": "2024-03-01T00:00:00Z"}),
                json!({"t": 1_709_251_200_000i64}),
            ],
            &["t"],
            Origin::Rows("spine.records"),
        )
        .unwrap();
        assert!(matches!(
            t.schema.field(0).data_type(),
            DataType::Timestamp(_, _)
        ));
    }

    #[test]
    fn an_object_origin_has_no_row_index() {
        let m = decode(
            &[json!({"x": "nope"})],
            &schema(&[("x", "double")]),
            Origin::Object("feature_lookups[0].default_values"),
        )
        .unwrap_err()
        .message;
        assert!(
            m.starts_with("feature_lookups[0].default_values: column 'x' (double)"),
            "{m}"
        );
    }
}
