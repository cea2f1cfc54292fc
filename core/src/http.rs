//! Request parsing and page responses shared by every capability's routes: MLflow's
//! conventions (JSON bodies for POST, query strings with repeated keys for GET, int64 as number
//! or string, `{"error_code","message"}` errors naming the field).

use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::paging::Page;
use crate::{Error, Result};

/// Largest request body of the JSON APIs (tracking, registry, serving, AutoML runs).
pub const MAX_JSON_BODY: usize = 64 << 20;
/// Largest request body that carries data: feature-table writes, spines and AutoML datasets
/// arrive as whole Parquet, Arrow or CSV files. Artifact uploads stream and have no limit.
pub const MAX_DATA_BODY: usize = 2 << 30;

/// The body limit of the route at `path` (what the routes' `PayloadConfig`s set).
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/api/2.0/feature-store/") || path == "/api/2.0/automl/datasets" {
        MAX_DATA_BODY
    } else {
        MAX_JSON_BODY
    }
}

/// What MLflow's request validation appends to each of its messages.
pub const SEE_DOCS: &str = " See the API docs for more information about request parameters.";

/// `Missing value for required parameter '<path>'. See the API docs…`, as MLflow words it.
pub fn missing_value(path: &str) -> Error {
    Error::invalid(format!(
        "Missing value for required parameter '{path}'.{SEE_DOCS}"
    ))
}

/// A value of the wrong type (or out of the request schema's range), as MLflow's request
/// validation words it: `Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of
/// type 'int'. See the API docs…` (the value as Python's compact, key-sorted `json.dumps`, the
/// type by its Python name).
pub fn invalid_value(path: &str, value: &Value) -> Error {
    let kind = match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    Error::invalid(format!(
        "Invalid value {} for parameter '{path}' supplied:  Hint: Value was of type '{kind}'.{SEE_DOCS}",
        python_json(value)
    ))
}

/// `json.dumps(value, sort_keys=True, separators=(",", ":"))`.
fn python_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), python_json(&map[k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Parses a request: the JSON body for POST, the query string (repeated keys for the named
/// list fields) for GET. Type errors name the offending field.
pub fn parse<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
    list_fields: &[&str],
) -> Result<T> {
    if req.method() == actix_web::http::Method::GET {
        let value = query_to_json(req.query_string(), list_fields)?;
        return serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            invalid_field(&value, &path, e.into_inner())
        });
    }
    // As MLflow: a body declared as something other than JSON is refused.
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(Error::invalid(format!(
                "Bad Request. Content-Type must be one of ['application/json'], got '{ct}'."
            )));
        }
    }
    let body: &[u8] = match body.iter().position(|b| !b.is_ascii_whitespace()) {
        None => b"{}",
        Some(i) if body[i] == b'{' => body,
        Some(_) => return Err(Error::invalid("Request body must be a JSON object")),
    };
    // Straight from the bytes (no intermediate JSON tree): log-batch bodies are large.
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            // The error path only: the body again as a tree, to show the offending value.
            match serde_json::from_slice::<Value>(body) {
                Ok(tree) => invalid_field(&tree, &path, inner),
                Err(_) => malformed(inner),
            }
        } else {
            malformed(inner)
        }
    })?;
    de.end().map_err(malformed)?;
    Ok(value)
}

fn malformed(err: serde_json::Error) -> Error {
    Error::invalid(format!("Malformed JSON request body: {err}"))
}

/// A field that does not deserialize. A top-level field is worded as MLflow's schema check
/// words it; a field inside one (`metrics[0].value`, which MLflow's schema does not look into)
/// names its full path, its value and why it was refused.
fn invalid_field(tree: &Value, path: &str, err: impl std::fmt::Display) -> Error {
    let value = lookup(tree, path);
    if !path.is_empty() && !path.contains(['.', '[']) {
        if let Some(v) = value {
            return invalid_value(path, v);
        }
    }
    // serde_json's position suffix says nothing the path does not.
    let err = err.to_string();
    let err = match err.rfind(" at line ") {
        Some(i) => &err[..i],
        None => &err,
    };
    match value {
        Some(v) => Error::invalid(format!(
            "Invalid value {} for parameter '{path}' supplied: {err}",
            python_json(v)
        )),
        None => Error::invalid(format!(
            "Invalid value for parameter '{path}' supplied: {err}"
        )),
    }
}

/// The value at a serde_path_to_error path (`a.b[2].c`) of `tree`.
fn lookup<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = tree;
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for index in rest.split('[').filter(|i| !i.is_empty()) {
            cur = cur.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

fn query_to_json(query: &str, list_fields: &[&str]) -> Result<Value> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::invalid(format!("Malformed query string: {e}")))?;
    let mut map = Map::new();
    for (k, v) in pairs {
        if list_fields.contains(&k.as_str()) {
            match map.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(Value::String(v)),
                _ => unreachable!("list fields are always arrays"),
            }
        } else {
            map.insert(k, Value::String(v));
        }
    }
    Ok(Value::Object(map))
}

/// int64 fields: JSON numbers, or strings of digits (query strings, proto3-JSON clients).
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    struct Int64;
    impl<'de> serde::de::Visitor<'de> for Int64 {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a 64-bit integer")
        }
        fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(
            self,
            d: D2,
        ) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} is not a valid 64-bit integer")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
            if v.fract() == 0.0 && v.abs() < 9.2e18 {
                Ok(Some(v as i64))
            } else {
                Err(E::custom(format!("{v} is not a valid 64-bit integer")))
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| E::custom(format!("'{v}' is not a valid 64-bit integer")))
        }
    }
    d.deserialize_option(Int64)
}

pub fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| missing_value(field))
}

/// A page as `{"<field>": [...], "next_page_token": "..."}`, empty parts omitted like MLflow.
/// Serialized straight from the items (no intermediate JSON tree).
struct PageBody<'a, T> {
    field: &'a str,
    page: Page<T>,
}

impl<T: Serialize> Serialize for PageBody<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if !self.page.items.is_empty() {
            map.serialize_entry(self.field, &self.page.items)?;
        }
        if let Some(t) = &self.page.next_page_token {
            map.serialize_entry("next_page_token", t)?;
        }
        map.end()
    }
}

pub fn page_response<T: Serialize>(field: &str, page: Page<T>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(PageBody { field, page }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Metric {
        key: Option<String>,
        value: Option<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        run_id: Option<String>,
        #[serde(default, deserialize_with = "int64")]
        step: Option<i64>,
        #[serde(default)]
        metrics: Vec<Metric>,
    }

    fn message(body: &str) -> String {
        let req = actix_web::test::TestRequest::post().to_http_request();
        parse::<Batch>(&req, body.as_bytes(), &[])
            .unwrap_err()
            .message
    }

    #[test]
    fn top_level_type_errors_are_worded_as_mlflow_words_them() {
        assert!(message(r#"{"run_id": 31}"#).contains(
            "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. \
             See the API docs for more information about request parameters."
        ));
        assert!(message(r#"{"step": "foo"}"#).contains(
            r#"Invalid value "foo" for parameter 'step' supplied:  Hint: Value was of type 'str'."#
        ));
        assert!(message(r#"{"metrics": {"b": 1, "a": [1.5, null]}}"#).contains(
            r#"Invalid value {"a":[1.5,null],"b":1} for parameter 'metrics' supplied:  Hint: Value was of type 'dict'."#
        ));
        assert!(message(r#"{"run_id": true}"#).contains("of type 'bool'"));
        assert!(message(r#"{"step": 1.5}"#).contains("Invalid value 1.5 for parameter 'step'"));
    }

    #[test]
    fn nested_type_errors_name_the_full_path_and_the_value() {
        let m = message(r#"{"metrics": [{"key": "a", "value": 1}, {"key": "b", "value": "x"}]}"#);
        assert!(
            m.starts_with(r#"Invalid value "x" for parameter 'metrics[1].value' supplied: "#),
            "{m}"
        );
        assert!(!m.contains(" at line "), "{m}");
    }

    #[test]
    fn missing_values_carry_mlflows_hint() {
        assert_eq!(
            missing_value("metrics[0].timestamp").message,
            "Missing value for required parameter 'metrics[0].timestamp'. See the API docs for \
             more information about request parameters."
        );
    }
}
