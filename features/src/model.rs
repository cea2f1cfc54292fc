//! Feature tables as the API shows them, and the column types they may hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::{DataType as DeltaType, PrimitiveType, StructField};
use ferroflow_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The time zone of every `timestamp` column: Delta timestamps are UTC instants.
pub const UTC: &str = "UTC";

/// One column of a feature table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default = "yes")]
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

/// A feature table's metadata (the Delta table holds the rows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureTable {
    pub name: String,
    pub primary_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_key: Option<String>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub schema: Vec<Column>,
    pub location: String,
    /// Created at the default location: deleting the table deletes its files.
    pub managed: bool,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub created_by: String,
    pub last_updated_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlinePublication>,
}

/// The Delta version last copied into the online store.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OnlinePublication {
    pub version: i64,
    pub published_timestamp: i64,
}

impl FeatureTable {
    pub fn arrow_schema(&self) -> SchemaRef {
        arrow_schema(&self.schema)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.schema.iter().find(|c| c.name == name)
    }

    /// The features a lookup reads: the requested ones (each a non-key column; the timestamp
    /// key only when `with_time`), or every non-key, non-timestamp column.
    pub fn features(&self, requested: Option<&[String]>, with_time: bool) -> Result<Vec<String>> {
        let is_time = |c: &String| Some(c) == self.timestamp_key.as_ref();
        let Some(requested) = requested else {
            return Ok(self
                .schema
                .iter()
                .map(|c| c.name.clone())
                .filter(|c| !self.primary_keys.contains(c) && !is_time(c))
                .collect());
        };
        if requested.is_empty() {
            return Err(Error::invalid("feature_names must not be empty when given"));
        }
        for f in requested {
            if self.column(f).is_none()
                || self.primary_keys.contains(f)
                || (!with_time && is_time(f))
            {
                return Err(Error::invalid(format!(
                    "'{f}' is not a feature of table '{}'",
                    self.name
                )));
            }
        }
        Ok(requested.to_vec())
    }

    /// The columns a merge matches rows on: the primary keys, and the timestamp key of a
    /// time-series table (one row per key and time).
    pub fn merge_keys(&self) -> Vec<String> {
        let mut keys = self.primary_keys.clone();
        keys.extend(self.timestamp_key.clone());
        keys
    }
}

/// The canonical Delta name of a type given by its name or a common alias.
pub fn canonical_type(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "string" | "str" | "text" | "varchar" => "string",
        "long" | "bigint" | "int64" => "long",
        "integer" | "int" | "int32" => "integer",
        "short" | "smallint" | "int16" => "short",
        "byte" | "tinyint" | "int8" => "byte",
        "double" | "float64" => "double",
        "float" | "real" | "float32" => "float",
        "boolean" | "bool" => "boolean",
        "date" => "date",
        "timestamp" => "timestamp",
        "binary" | "bytes" => "binary",
        _ => return None,
    })
}

/// The Arrow type a Delta type name is read and written as.
pub fn arrow_type(name: &str) -> DataType {
    match name {
        "string" => DataType::Utf8,
        "long" => DataType::Int64,
        "integer" => DataType::Int32,
        "short" => DataType::Int16,
        "byte" => DataType::Int8,
        "double" => DataType::Float64,
        "float" => DataType::Float32,
        "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        _ => DataType::Binary,
    }
}

fn delta_type(name: &str) -> PrimitiveType {
    match name {
        "string" => PrimitiveType::String,
        "long" => PrimitiveType::Long,
        "integer" => PrimitiveType::Integer,
        "short" => PrimitiveType::Short,
        "byte" => PrimitiveType::Byte,
        "double" => PrimitiveType::Double,
        "float" => PrimitiveType::Float,
        "boolean" => PrimitiveType::Boolean,
        "date" => PrimitiveType::Date,
        "timestamp" => PrimitiveType::Timestamp,
        _ => PrimitiveType::Binary,
    }
}

/// The Delta type name data of this Arrow type is stored as, when a table is created from data.
pub fn type_of_arrow(dt: &DataType) -> Option<&'static str> {
    Some(match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Int64 | DataType::UInt32 => "long",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int16 | DataType::UInt8 => "short",
        DataType::Int8 => "byte",
        DataType::Float64 | DataType::Float16 => "double",
        DataType::Float32 => "float",
        DataType::Boolean => "boolean",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, _) => "timestamp",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        _ => return None,
    })
}

pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(&c.data_type), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

pub fn delta_fields(columns: &[Column]) -> Vec<StructField> {
    columns
        .iter()
        .map(|c| {
            StructField::new(
                c.name.clone(),
                DeltaType::Primitive(delta_type(&c.data_type)),
                c.nullable,
            )
        })
        .collect()
}

/// Checks a table definition: names, types, keys; returns the schema with canonical types
/// and non-null keys.
pub fn validate_definition(
    name: &str,
    primary_keys: &[String],
    timestamp_key: Option<&str>,
    columns: &[Column],
) -> Result<Vec<Column>> {
    validate_name(name)?;
    if columns.is_empty() {
        return Err(Error::invalid(
            "A feature table needs a schema or data to take it from",
        ));
    }
    let mut out: Vec<Column> = Vec::with_capacity(columns.len());
    for c in columns {
        if c.name.is_empty() || c.name.chars().any(|ch| " ,;{}()\n\t=".contains(ch)) {
            return Err(Error::invalid(format!(
                "Invalid column name '{}': no spaces or any of ,;{{}}()=",
                c.name
            )));
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&c.name)) {
            return Err(Error::invalid(format!("Duplicate column '{}'", c.name)));
        }
        let Some(t) = canonical_type(&c.data_type) else {
            return Err(Error::invalid(format!(
                "Unsupported type '{}' for column '{}' (use string, long, integer, short, byte, \
                 double, float, boolean, date, timestamp or binary)",
                c.data_type, c.name
            )));
        };
        out.push(Column {
            data_type: t.to_string(),
            ..c.clone()
        });
    }
    if primary_keys.is_empty() {
        return Err(Error::invalid("primary_keys must name at least one column"));
    }
    for (i, pk) in primary_keys.iter().enumerate() {
        if primary_keys[..i].contains(pk) {
            return Err(Error::invalid(format!(
                "Primary key '{pk}' is listed twice"
            )));
        }
        let Some(col) = out.iter_mut().find(|c| &c.name == pk) else {
            return Err(Error::invalid(format!(
                "Primary key '{pk}' is not a column of the table"
            )));
        };
        if !matches!(
            col.data_type.as_str(),
            "string" | "long" | "integer" | "short" | "byte"
        ) {
            return Err(Error::invalid(format!(
                "Primary key '{pk}' has type {}: keys are string or integer columns",
                col.data_type
            )));
        }
        col.nullable = false;
    }
    if let Some(ts) = timestamp_key {
        if primary_keys.iter().any(|pk| pk == ts) {
            return Err(Error::invalid(format!(
                "Timestamp key '{ts}' cannot also be a primary key"
            )));
        }
        let Some(col) = out.iter_mut().find(|c| c.name == ts) else {
            return Err(Error::invalid(format!(
                "Timestamp key '{ts}' is not a column of the table"
            )));
        };
        if !matches!(col.data_type.as_str(), "timestamp" | "date") {
            return Err(Error::invalid(format!(
                "Timestamp key '{ts}' has type {}: it must be a timestamp or date column",
                col.data_type
            )));
        }
        col.nullable = false;
    }
    Ok(out)
}

/// Feature table names: letters, digits, `_`, `-` and `.` (as `catalog.schema.table`).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid feature table name '{name}': use 1-256 letters, digits, '_', '-' or '.' \
             (not leading, not '..')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> Column {
        Column {
            name: name.into(),
            data_type: t.into(),
            nullable: true,
            description: None,
        }
    }

    #[test]
    fn definitions_are_checked() {
        let cols = vec![
            col("id", "bigint"),
            col("ts", "timestamp"),
            col("x", "float64"),
        ];
        let out = validate_definition("t", &["id".into()], Some("ts"), &cols).unwrap();
        assert_eq!(out[0].data_type, "long");
        assert!(!out[0].nullable && !out[1].nullable && out[2].nullable);
        assert_eq!(out[2].data_type, "double");
        for (pks, ts) in [
            (vec!["nope".to_string()], None),
            (vec!["x".to_string()], None),
            (vec!["id".to_string()], Some("x")),
            (vec!["id".to_string()], Some("id")),
            (vec![], None),
        ] {
            assert!(
                validate_definition("t", &pks, ts, &cols).is_err(),
                "{pks:?} {ts:?}"
            );
        }
        assert!(validate_definition("t", &["id".into()], None, &[col("id", "uuid")]).is_err());
        for bad in ["", "../x", "a/b", "a b", ".hidden", "a..b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("main.features.user_v2-1").unwrap();
    }
}
