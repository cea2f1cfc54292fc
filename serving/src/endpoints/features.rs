//! Feature lookups on serving endpoints: a request that carries only entity keys gets its
//! features joined from the online store before inference.
//!
//! The online store lives in the feature store; this crate sees it through [`FeatureSource`]
//! so serving does not depend on Delta.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ferroflow_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One lookup of an endpoint's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureLookupConfig {
    pub table_name: String,
    /// Request columns holding the table's primary keys, in key order.
    #[serde(deserialize_with = "one_or_many")]
    pub lookup_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename_outputs: BTreeMap<String, String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Rows found for a list of keys: the feature names, and per key its values (None: absent).
pub struct FoundRows {
    pub features: Vec<String>,
    pub rows: Vec<Option<Map<String, Value>>>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The online store as serving sees it.
pub trait FeatureSource: Send + Sync {
    /// Looks up keys (each the primary key values in order) in a table.
    fn lookup<'a>(
        &'a self,
        table: &'a str,
        keys: Vec<Vec<Value>>,
        features: Option<&'a [String]>,
    ) -> BoxFuture<'a, Result<FoundRows>>;
}

pub type SharedSource = Arc<dyn FeatureSource>;

/// Checks lookups when an endpoint is created or updated.
pub fn check(lookups: &[FeatureLookupConfig]) -> Result<()> {
    for (i, l) in lookups.iter().enumerate() {
        if l.table_name.trim().is_empty() {
            return Err(Error::invalid(format!(
                "feature_lookups[{i}].table_name must not be empty"
            )));
        }
        if l.lookup_key.is_empty() || l.lookup_key.iter().any(|k| k.is_empty()) {
            return Err(Error::invalid(format!(
                "feature_lookups[{i}].lookup_key must name the request's key columns"
            )));
        }
        if let Some(f) = &l.feature_names {
            if f.is_empty() {
                return Err(Error::invalid(format!(
                    "feature_lookups[{i}].feature_names must not be empty when given"
                )));
            }
        }
    }
    Ok(())
}

/// A request's rows as column-keyed objects, and how to write them back.
enum Frame {
    Records(Vec<Map<String, Value>>),
    Split {
        columns: Vec<String>,
        data: Vec<Vec<Value>>,
        index: Option<Value>,
    },
}

/// Adds the looked-up features to a JSON scoring request (`dataframe_records` or
/// `dataframe_split`); the key columns are dropped unless a feature has the same name.
/// Returns the rewritten body.
pub async fn join(
    source: &dyn FeatureSource,
    lookups: &[FeatureLookupConfig],
    body: &[u8],
) -> Result<Vec<u8>> {
    let mut request: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("Feature lookups need a JSON request body: {e}")))?;
    let mut frame = if let Some(records) = request.remove("dataframe_records") {
        let rows: Vec<Map<String, Value>> = serde_json::from_value(records).map_err(|e| {
            Error::invalid(format!("dataframe_records must be a list of objects: {e}"))
        })?;
        Frame::Records(rows)
    } else if let Some(split) = request.remove("dataframe_split") {
        let mut split: Map<String, Value> = serde_json::from_value(split)
            .map_err(|e| Error::invalid(format!("dataframe_split must be an object: {e}")))?;
        let columns: Vec<String> =
            serde_json::from_value(split.remove("columns").unwrap_or(Value::Null))
                .map_err(|e| Error::invalid(format!("dataframe_split.columns: {e}")))?;
        let data: Vec<Vec<Value>> =
            serde_json::from_value(split.remove("data").unwrap_or(Value::Null))
                .map_err(|e| Error::invalid(format!("dataframe_split.data: {e}")))?;
        Frame::Split {
            columns,
            data,
            index: split.remove("index"),
        }
    } else {
        return Err(Error::invalid(
            "An endpoint with feature lookups takes dataframe_records or dataframe_split",
        ));
    };
    let rows = frame.rows()?;
    let mut out_rows: Vec<Map<String, Value>> = rows;
    let mut keys_used: Vec<&str> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    for l in lookups {
        let mut keys = Vec::with_capacity(out_rows.len());
        for (r, row) in out_rows.iter().enumerate() {
            let mut key = Vec::with_capacity(l.lookup_key.len());
            for k in &l.lookup_key {
                let v = row.get(k).cloned().ok_or_else(|| {
                    Error::invalid(format!(
                        "Row {r} has no '{k}': feature table '{}' is looked up by {}",
                        l.table_name,
                        l.lookup_key.join(", ")
                    ))
                })?;
                key.push(v);
            }
            keys.push(key);
        }
        let found = source
            .lookup(&l.table_name, keys, l.feature_names.as_deref())
            .await?;
        for (row, values) in out_rows.iter_mut().zip(found.rows) {
            for f in &found.features {
                let name = l.rename_outputs.get(f).unwrap_or(f);
                if !added.contains(name) {
                    added.push(name.clone());
                }
                let v = values
                    .as_ref()
                    .and_then(|m| m.get(f).cloned())
                    .unwrap_or(Value::Null);
                row.insert(name.clone(), v);
            }
        }
        keys_used.extend(l.lookup_key.iter().map(String::as_str));
    }
    for row in out_rows.iter_mut() {
        for k in &keys_used {
            if !added.iter().any(|a| a == k) {
                row.shift_remove(*k);
            }
        }
    }
    frame.replace(out_rows);
    let (field, value) = frame.into_json();
    request.insert(field.to_string(), value);
    serde_json::to_vec(&request).map_err(|e| Error::internal(e.to_string()))
}

impl Frame {
    fn rows(&self) -> Result<Vec<Map<String, Value>>> {
        match self {
            Frame::Records(r) => Ok(r.clone()),
            Frame::Split { columns, data, .. } => data
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    if row.len() != columns.len() {
                        return Err(Error::invalid(format!(
                            "dataframe_split.data[{i}] has {} values for {} columns",
                            row.len(),
                            columns.len()
                        )));
                    }
                    Ok(columns.iter().cloned().zip(row.iter().cloned()).collect())
                })
                .collect(),
        }
    }

    fn replace(&mut self, rows: Vec<Map<String, Value>>) {
        match self {
            Frame::Records(r) => *r = rows,
            Frame::Split { columns, data, .. } => {
                let mut names: Vec<String> = Vec::new();
                for row in &rows {
                    for k in row.keys() {
                        if !names.contains(k) {
                            names.push(k.clone());
                        }
                    }
                }
                *data = rows
                    .iter()
                    .map(|r| {
                        names
                            .iter()
                            .map(|n| r.get(n).cloned().unwrap_or(Value::Null))
                            .collect()
                    })
                    .collect();
                *columns = names;
            }
        }
    }

    fn into_json(self) -> (&'static str, Value) {
        match self {
            Frame::Records(r) => (
                "dataframe_records",
                Value::Array(r.into_iter().map(Value::Object).collect()),
            ),
            Frame::Split {
                columns,
                data,
                index,
            } => {
                let mut m = Map::new();
                if let Some(i) = index {
                    m.insert("index".into(), i);
                }
                m.insert("columns".into(), serde_json::json!(columns));
                m.insert("data".into(), serde_json::json!(data));
                ("dataframe_split", Value::Object(m))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl FeatureSource for Fixed {
        fn lookup<'a>(
            &'a self,
            _table: &'a str,
            keys: Vec<Vec<Value>>,
            _features: Option<&'a [String]>,
        ) -> BoxFuture<'a, Result<FoundRows>> {
            Box::pin(async move {
                Ok(FoundRows {
                    features: vec!["a".into(), "b".into()],
                    rows: keys
                        .iter()
                        .map(|k| {
                            (k[0] == json!(1))
                                .then(|| json!({"a": 1.5, "b": 2.5}).as_object().cloned().unwrap())
                        })
                        .collect(),
                })
            })
        }
    }

    #[actix_web::test]
    async fn keys_become_features() {
        let lookups: Vec<FeatureLookupConfig> = serde_json::from_value(json!([
            {"table_name": "t", "lookup_key": "id", "rename_outputs": {"b": "bee"}}
        ]))
        .unwrap();
        check(&lookups).unwrap();
        let body = json!({"dataframe_records": [{"id": 1, "x": 0.5}, {"id": 2, "x": 1.0}]});
        let out = join(&Fixed, &lookups, body.to_string().as_bytes())
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out,
            json!({"dataframe_records": [
                {"x": 0.5, "a": 1.5, "bee": 2.5},
                {"x": 1.0, "a": null, "bee": null}
            ]})
        );
        // The request's columns first, in its order, then the features in lookup order.
        let names: Vec<&String> = out["dataframe_records"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(names, ["x", "a", "bee"]);
        let split = json!({"dataframe_split": {"columns": ["id"], "data": [[1]]}});
        let out = join(&Fixed, &lookups, split.to_string().as_bytes())
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out,
            json!({"dataframe_split": {"columns": ["a", "bee"], "data": [[1.5, 2.5]]}})
        );
        let missing = json!({"dataframe_records": [{"x": 1}]});
        assert!(join(&Fixed, &lookups, missing.to_string().as_bytes())
            .await
            .is_err());
        assert!(join(&Fixed, &lookups, b"{\"inputs\": [1]}").await.is_err());
    }
}
