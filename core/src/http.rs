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

/// `Missing value for required parameter '<path>'.`, as MLflow words it.
pub fn missing_value(path: &str) -> Error {
    Error::invalid(format!("Missing value for required parameter '{path}'."))
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
        return serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            invalid_field(&path, e.into_inner())
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
            invalid_field(&path, inner)
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

fn invalid_field(path: &str, err: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "Invalid value for parameter '{path}' supplied: {err}"
    ))
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
