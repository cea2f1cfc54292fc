//! MLflow's pyfunc scoring protocol (`POST /invocations`) for onnx-flavor models, as MLflow 3.17.2
//! implements it across `mlflow.pyfunc.scoring_server`, `mlflow.utils.proto_json_utils`,
//! `mlflow.models.utils._enforce_schema` and `mlflow.onnx._OnnxModelWrapper.predict`.
//!
//! The pipeline mirrors MLflow's: the body becomes a DataFrame (`dataframe_split`,
//! `dataframe_records`, CSV) or an array / dict of arrays (`instances`, `inputs`); the signature
//! casts and checks it; the onnx wrapper turns it into feeds (a DataFrame's `.values` for a
//! one-input graph, its columns for several, float64 cast to float32 where the graph wants float);
//! and the outputs come back as records (DataFrame input: every output flattened into a column) or
//! as a dict of nested lists.

use std::fmt;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use ferroflow_core::{Error, ErrorCode};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Map, Value};

use crate::mlmodel::{ColType, ParamSpec, Schema, TensorSpec};
use crate::pyrepr::{float_repr, str_repr, type_repr, value_str, PyExc};
use crate::tensor::{ElementType, IoKind, IoSpec, OutputValue, Tensor, TensorData};

const SUPPORTED_FORMATS_REPR: &str =
    "{'dataframe_records', 'instances', 'dataframe_split', 'inputs'}";
const FORMATS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

fn required_input_format() -> String {
    format!(
        "The input must be a JSON dictionary with exactly one of the input fields {SUPPORTED_FORMATS_REPR}"
    )
}

const SCORING_PROTOCOL_CHANGE_INFO: &str = "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this error, you are likely using an outdated scoring request format. To resolve the error, either update your request format or adjust your MLflow Model's requirements file to specify an older version of MLflow (for example, change the 'mlflow' requirement specifier to 'mlflow==1.30.0'). If you are making a request using the MLflow client (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in order to use the new request format. For more information about the updated MLflow Model scoring protocol in MLflow 2.0, see https://mlflow.org/docs/latest/models.html#deploy-mlflow-models.";

const UNEXPECTED_ERROR: &str = "Encountered an unexpected error while evaluating the model. Verify that the serialized input Dataframe is compatible with the model for inference.";

/// An `/invocations` failure: MLflow answers unsupported media types with a text/plain 415 and
/// everything else with its JSON error body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoringError {
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Mlflow(#[from] Error),
}

impl ResponseError for ScoringError {
    fn status_code(&self) -> StatusCode {
        match self {
            ScoringError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ScoringError::Mlflow(e) => e.status_code(),
        }
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            ScoringError::UnsupportedMediaType(m) => HttpResponse::UnsupportedMediaType()
                .content_type("text/plain")
                .body(m.clone()),
            ScoringError::Mlflow(e) => e.error_response(),
        }
    }
}

impl From<ScoringError> for Error {
    /// For callers that need the one error type: a 415 becomes a 400 BAD_REQUEST.
    fn from(e: ScoringError) -> Error {
        match e {
            ScoringError::UnsupportedMediaType(m) => Error::new(ErrorCode::BadRequest, m),
            ScoringError::Mlflow(e) => e,
        }
    }
}

fn bad_request(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadRequest, message)
}

/// `MlflowInvalidInputException`: 400 BAD_REQUEST, message prefixed with "Invalid input. ".
fn invalid_input(message: impl fmt::Display) -> Error {
    bad_request(format!("Invalid input. {message}"))
}

/// A schema-enforcement failure as `PyFuncModel.predict` reports it through the server.
/// MLflow also prints the data's pandas/numpy repr here; we leave it out.
fn schema_error(schema: &Schema, detail: impl fmt::Display) -> Error {
    Error::invalid(format!(
        "Failed to predict data. \nError: Failed to enforce schema of data with schema '{}'. Error: {detail}",
        schema.repr()
    ))
}

/// Errors raised inside the model's predict, which the server wraps as a generic BAD_REQUEST.
fn unexpected(detail: impl fmt::Display) -> Error {
    bad_request(format!("{UNEXPECTED_ERROR} Error: {detail}"))
}

// ---------------------------------------------------------------------------------------------
// Request decoding

/// JSON with object keys in body order (Python dicts keep insertion order: MLflow's messages list
/// keys in that order, and a records DataFrame's columns follow it; serde_json's map sorts).
#[derive(Debug, Clone)]
enum Ordered {
    Scalar(Value),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    fn into_value(self) -> Value {
        match self {
            Ordered::Scalar(v) => v,
            Ordered::Array(items) => {
                Value::Array(items.into_iter().map(Ordered::into_value).collect())
            }
            Ordered::Object(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Ordered>()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries: Vec<(String, Ordered)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    // A repeated key keeps its first position and its last value, as in Python.
                    if let Some(slot) = entries.iter_mut().find(|(key, _)| *key == k) {
                        slot.1 = v;
                    } else {
                        entries.push((k, v));
                    }
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Keys of a list of records in first-seen order (pandas' column order).
fn record_key_order(records: &Ordered) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Ordered::Array(items) = records {
        for item in items {
            if let Ordered::Object(entries) = item {
                for (k, _) in entries {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
        }
    }
    names
}

/// The data part of a scoring request, before the signature is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `dataframe_split`, `dataframe_records` or CSV, as a pandas DataFrame would hold it.
    Frame(Frame),
    /// The value under `instances`.
    Instances(Value),
    /// The value under `inputs`.
    Inputs(Value),
}

/// A parsed scoring request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringRequest {
    pub payload: Payload,
    /// `params`, which the onnx flavor validates against the signature and then ignores.
    pub params: Option<Value>,
}

/// Column name: pandas gives unnamed columns integer names (`0`, `1`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColName {
    Named(String),
    Index(usize),
}

impl ColName {
    fn matches(&self, name: &str) -> bool {
        matches!(self, ColName::Named(n) if n == name)
    }
    fn repr(&self) -> String {
        match self {
            ColName::Named(n) => str_repr(n),
            ColName::Index(i) => i.to_string(),
        }
    }
}

impl fmt::Display for ColName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColName::Named(n) => f.write_str(n),
            ColName::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A DataFrame: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub columns: Vec<Column>,
    pub rows: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: ColName,
    pub data: Array,
}

impl Frame {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.matches(name))
    }
}

/// A numpy array: typed, or `object` holding arbitrary JSON values (mixed types, None, lists).
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    Typed(Tensor),
    Object { shape: Vec<usize>, data: Vec<Value> },
}

impl Array {
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::Typed(t) => &t.shape,
            Array::Object { shape, .. } => shape,
        }
    }
    fn dtype_name(&self) -> &'static str {
        match self {
            Array::Typed(t) => t.data.element_type().numpy_name(),
            Array::Object { .. } => "object",
        }
    }
    fn element_type(&self) -> Option<ElementType> {
        match self {
            Array::Typed(t) => Some(t.data.element_type()),
            Array::Object { .. } => None,
        }
    }
    fn len(&self) -> usize {
        match self {
            Array::Typed(t) => t.data.len(),
            Array::Object { data, .. } => data.len(),
        }
    }
    /// Element `i` as JSON.
    fn value_at(&self, i: usize) -> Value {
        match self {
            Array::Typed(t) => t.data.json_at(i),
            Array::Object { data, .. } => data[i].clone(),
        }
    }
    fn values(&self) -> Vec<Value> {
        (0..self.len()).map(|i| self.value_at(i)).collect()
    }
    fn reshaped(self, shape: Vec<usize>) -> Array {
        match self {
            Array::Typed(t) => Array::Typed(Tensor {
                shape,
                data: t.data,
            }),
            Array::Object { data, .. } => Array::Object { shape, data },
        }
    }
}

/// The media type checks of MLflow's `invocations()`.
enum Body {
    Json,
    Csv,
}

fn check_content_type(content_type: Option<&str>) -> Result<Body, ScoringError> {
    let content_type = content_type.unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("");
    let mut charset = "utf-8".to_string();
    let mut unexpected = Vec::new();
    for pair in parts {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "charset" {
            charset = value.to_lowercase();
        } else {
            unexpected.push(key.to_string());
        }
    }
    if charset != "utf-8" {
        return Err(ScoringError::UnsupportedMediaType(
            "The scoring server only supports UTF-8".into(),
        ));
    }
    if !unexpected.is_empty() {
        return Err(ScoringError::UnsupportedMediaType(format!(
            "Unrecognized content type parameters: {}. {SCORING_PROTOCOL_CHANGE_INFO}",
            unexpected.join(", ")
        )));
    }
    match mime {
        "application/json" => Ok(Body::Json),
        "text/csv" => Ok(Body::Csv),
        _ => Err(ScoringError::UnsupportedMediaType(format!(
            "This predictor only supports the following content types: Types: ['text/csv', \
             'application/json', 'application/vnd.apache.parquet']. Got '{}'.{}",
            if content_type.is_empty() {
                "None"
            } else {
                content_type
            },
            if mime == "application/vnd.apache.parquet" {
                " ferroflow does not read Parquet bodies; send application/json or text/csv."
            } else {
                ""
            }
        ))),
    }
}

/// Decodes a scoring request body. The schema is used only by CSV (MLflow parses CSV with the
/// signature's column types).
pub fn parse_request(
    content_type: Option<&str>,
    body: &[u8],
    schema: Option<&Schema>,
) -> Result<ScoringRequest, ScoringError> {
    match check_content_type(content_type)? {
        Body::Csv => {
            let text = std::str::from_utf8(body).map_err(|e| {
                invalid_input(format!(
                    "Ensure that input is a valid UTF-8 encoded string. Error: '{e}'"
                ))
            })?;
            Ok(ScoringRequest {
                payload: Payload::Frame(parse_csv(text, schema)?),
                params: None,
            })
        }
        Body::Json => Ok(parse_json(body)?),
    }
}

fn parse_json(body: &[u8]) -> Result<ScoringRequest, Error> {
    let text = String::from_utf8_lossy(body);
    let parsed: Ordered = serde_json::from_slice(body).map_err(|e| {
        invalid_input(format!(
            "Ensure that input is a valid JSON formatted string. Error: '{e}'\nInput: \n{text}\n"
        ))
    })?;
    let entries = match parsed {
        Ordered::Object(entries) => entries,
        Ordered::Array(_) => {
            return Err(invalid_input(format!(
                "{}. Received a list.",
                required_input_format()
            )))
        }
        Ordered::Scalar(other) => {
            return Err(invalid_input(format!(
                "{}. Received unexpected input type '{}.",
                required_input_format(),
                type_repr(&other)
            )))
        }
    };
    let mut params = None;
    let mut data: Vec<(String, Ordered)> = Vec::new();
    for (k, v) in entries {
        if k == "params" {
            params = Some(v.into_value());
        } else if FORMATS.contains(&k.as_str()) {
            data.push((k, v));
        }
    }
    if data.len() != 1 {
        let keys: Vec<String> = data.iter().map(|(k, _)| str_repr(k)).collect();
        return Err(bad_request(format!(
            "{}. Received dictionary with input fields: [{}]. {SCORING_PROTOCOL_CHANGE_INFO}",
            required_input_format(),
            keys.join(", ")
        )));
    }
    let (key, value) = data.pop().expect("one key");
    let payload = match key.as_str() {
        "dataframe_split" => Payload::Frame(frame_from_split(&value.into_value())?),
        "dataframe_records" => {
            let order = record_key_order(&value);
            Payload::Frame(frame_from_records(&value.into_value(), Some(&order))?)
        }
        "instances" => Payload::Instances(value.into_value()),
        _ => Payload::Inputs(value.into_value()),
    };
    Ok(ScoringRequest { payload, params })
}

fn python_set_repr(keys: &[&String]) -> String {
    let items: Vec<String> = keys.iter().map(|k| str_repr(k)).collect();
    format!("{{{}}}", items.join(", "))
}

fn frame_from_split(value: &Value) -> Result<Frame, Error> {
    let obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(invalid_input(
                "Dataframe split format must be a dictionary. Got list.",
            ))
        }
        other => {
            return Err(invalid_input(format!(
                "Dataframe split format must be a dictionary. Got type {}.",
                type_repr(other)
            )))
        }
    };
    let keys: Vec<&String> = obj.keys().collect();
    if !obj.contains_key("data")
        || keys
            .iter()
            .any(|k| !["columns", "data", "index"].contains(&k.as_str()))
    {
        return Err(invalid_input(format!(
            "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. Got {}.'",
            python_set_repr(&keys)
        )));
    }
    let invalid = |msg: String| {
        invalid_input(format!(
            "Provided dataframe_split field is not a valid dataframe representation in 'split' format. Error: '{msg}'"
        ))
    };
    let rows: Vec<Vec<Value>> = match &obj["data"] {
        Value::Array(rows) => rows
            .iter()
            .map(|r| match r {
                Value::Array(cells) => cells.clone(),
                scalar => vec![scalar.clone()],
            })
            .collect(),
        Value::Null => Vec::new(),
        _ => return Err(invalid("DataFrame constructor not properly called!".into())),
    };
    let width = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != width) {
        let got = rows.iter().map(Vec::len).max().unwrap_or(0);
        return Err(invalid(format!(
            "{width} columns passed, passed data had {got} columns"
        )));
    }
    let names: Vec<ColName> = match obj.get("columns") {
        None | Some(Value::Null) => (0..width).map(ColName::Index).collect(),
        Some(Value::Array(cols)) => cols.iter().map(|c| ColName::Named(value_str(c))).collect(),
        Some(_) => return Err(invalid("columns must be a list".into())),
    };
    if !rows.is_empty() && names.len() != width {
        return Err(invalid(format!(
            "{} columns passed, passed data had {width} columns",
            names.len()
        )));
    }
    let n = rows.len();
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(j, name)| Column {
            name,
            data: infer_column(rows.iter().map(|r| r[j].clone()).collect()),
        })
        .collect();
    Ok(Frame { columns, rows: n })
}

fn frame_from_records(value: &Value, key_order: Option<&[String]>) -> Result<Frame, Error> {
    let records = match value {
        Value::Array(r) => r,
        Value::Object(_) => {
            return Err(invalid_input(
                "Dataframe records format must be a list of records. Got dictionary.",
            ))
        }
        other => {
            return Err(invalid_input(format!(
                "Dataframe records format must be a list of records. Got type {}.",
                type_repr(other)
            )))
        }
    };
    if records.iter().all(Value::is_object) {
        let mut names: Vec<String> = key_order.map(<[String]>::to_vec).unwrap_or_default();
        for r in records {
            for k in r.as_object().expect("object").keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        let columns = names
            .into_iter()
            .map(|name| Column {
                data: infer_column(
                    records
                        .iter()
                        .map(|r| r.get(&name).cloned().unwrap_or(Value::Null))
                        .collect(),
                ),
                name: ColName::Named(name),
            })
            .collect();
        return Ok(Frame {
            columns,
            rows: records.len(),
        });
    }
    frame_from_split(&json!({ "data": value }))
}

/// pandas' dtype inference for one column of JSON scalars.
fn infer_column(values: Vec<Value>) -> Array {
    let n = values.len();
    let shape = vec![n];
    if n == 0 {
        return Array::Object {
            shape,
            data: values,
        };
    }
    if values.iter().all(Value::is_boolean) {
        let v = values.iter().map(|x| x.as_bool().expect("bool")).collect();
        return Array::Typed(Tensor::new(shape, TensorData::Bool(v)));
    }
    if values.iter().all(|x| x.as_i64().is_some()) {
        let v = values.iter().map(|x| x.as_i64().expect("i64")).collect();
        return Array::Typed(Tensor::new(shape, TensorData::Int64(v)));
    }
    if values.iter().all(|x| x.is_number() || x.is_null()) && values.iter().any(Value::is_number) {
        let v = values
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect();
        return Array::Typed(Tensor::new(shape, TensorData::Double(v)));
    }
    if values.iter().all(Value::is_string) {
        let v = values
            .iter()
            .map(|x| x.as_str().expect("str").to_string())
            .collect();
        return Array::Typed(Tensor::new(shape, TensorData::String(v)));
    }
    Array::Object {
        shape,
        data: values,
    }
}

/// pandas `read_csv` inference for one cell.
fn csv_cell(cell: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = cell.parse::<f64>() {
        // "NaN"/"inf" cells: missing values to us (JSON has no NaN).
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    match cell {
        "True" | "TRUE" | "true" => Value::Bool(true),
        "False" | "FALSE" | "false" => Value::Bool(false),
        _ => Value::String(cell.to_string()),
    }
}

fn parse_csv(text: &str, schema: Option<&Schema>) -> Result<Frame, Error> {
    let parse_error = |msg: String| {
        bad_request(format!(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{msg}'"
        ))
    };
    if matches!(schema, Some(Schema::Tensors(_))) {
        // MLflow asks a tensor schema for pandas types, which raises.
        return Err(parse_error(
            "TensorSpec only supports numpy types, use numpy_types() instead".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| parse_error(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(parse_error("No columns to parse from file".into()));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| parse_error(e.to_string()))?;
        for (j, cell) in record.iter().enumerate() {
            cells[j].push(cell.to_string());
        }
        rows += 1;
    }
    let mut columns = Vec::with_capacity(headers.len());
    for (name, raw) in headers.into_iter().zip(cells) {
        let declared = match schema {
            Some(Schema::Columns(cols)) => cols
                .iter()
                .find(|c| c.name.as_deref() == Some(name.as_str()))
                .map(|c| c.ty),
            _ => None,
        };
        let data = match declared {
            // `dtype=object` keeps the text as written.
            Some(ColType::String) => infer_column(raw.into_iter().map(Value::String).collect()),
            Some(ty) => {
                let values: Vec<Value> = raw.iter().map(|c| csv_cell(c)).collect();
                match ty.element_type() {
                    Some(et) => cast_array(&infer_column(values), et, CastMode::Pandas)
                        .map_err(|e| parse_error(e.message))?,
                    None => infer_column(values),
                }
            }
            None => infer_column(raw.iter().map(|c| csv_cell(c)).collect()),
        };
        columns.push(Column {
            name: ColName::Named(name),
            data,
        });
    }
    Ok(Frame { columns, rows })
}

// ---------------------------------------------------------------------------------------------
// numpy / pandas conversions

/// numpy's `np.array(x, dtype)` and pandas' `Series.astype(dtype)` differ on a few edge cases.
#[derive(Clone, Copy, PartialEq)]
enum CastMode {
    Numpy,
    Pandas,
}

fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().replace('_', "");
    t.parse::<f64>().ok()
}

fn cast_scalar_f64(v: &Value) -> Result<f64, PyExc> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Null => Ok(f64::NAN),
        Value::String(s) => parse_py_float(s).ok_or_else(|| {
            PyExc::value_error(format!(
                "could not convert string to float: {}",
                str_repr(s)
            ))
        }),
        Value::Array(_) => Err(PyExc::value_error(
            "setting an array element with a sequence.",
        )),
        Value::Object(_) => Err(PyExc::type_error(
            "float() argument must be a string or a real number, not 'dict'",
        )),
    }
}

fn cast_scalar_i64(v: &Value, mode: CastMode) -> Result<i64, PyExc> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() {
                return Err(nan_to_int(mode));
            }
            Ok(f.trunc() as i64)
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => match mode {
            CastMode::Pandas => Err(nan_to_int(mode)),
            CastMode::Numpy => Err(PyExc::type_error(
                "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'",
            )),
        },
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().map_err(|_| {
            PyExc::value_error(format!(
                "invalid literal for int() with base 10: {}",
                str_repr(s)
            ))
        }),
        Value::Array(_) => Err(PyExc::value_error(
            "setting an array element with a sequence.",
        )),
        Value::Object(_) => Err(PyExc::type_error(
            "int() argument must be a string, a bytes-like object or a real number, not 'dict'",
        )),
    }
}

fn nan_to_int(mode: CastMode) -> PyExc {
    match mode {
        CastMode::Pandas => PyExc {
            class: "IntCastingNaNError",
            message: "Cannot convert non-finite values (NA or inf) to integer".into(),
        },
        CastMode::Numpy => PyExc::value_error("cannot convert float NaN to integer"),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Casts JSON scalars to one element type.
fn cast_values(values: &[Value], ty: ElementType, mode: CastMode) -> Result<TensorData, PyExc> {
    Ok(match ty {
        ElementType::Float => TensorData::Float(
            values
                .iter()
                .map(|v| cast_scalar_f64(v).map(|f| f as f32))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Double => TensorData::Double(
            values
                .iter()
                .map(cast_scalar_f64)
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int64 => TensorData::Int64(
            values
                .iter()
                .map(|v| cast_scalar_i64(v, mode))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int32 => TensorData::Int32(
            values
                .iter()
                .map(|v| {
                    let i = cast_scalar_i64(v, mode)?;
                    i32::try_from(i).map_err(|_| PyExc {
                        class: "OverflowError",
                        message: format!("Python integer {i} out of bounds for int32"),
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Bool => TensorData::Bool(values.iter().map(truthy).collect()),
        ElementType::String => TensorData::String(values.iter().map(value_str).collect()),
    })
}

fn cast_array(array: &Array, ty: ElementType, mode: CastMode) -> Result<Array, PyExc> {
    if array.element_type() == Some(ty) {
        return Ok(array.clone());
    }
    let data = cast_values(&array.values(), ty, mode)?;
    Ok(Array::Typed(Tensor {
        shape: array.shape().to_vec(),
        data,
    }))
}

/// Shape and leaves of nested JSON lists (`np.array(x)`), rejecting ragged nesting as numpy does.
fn nested_shape(value: &Value) -> Result<(Vec<usize>, Vec<Value>), PyExc> {
    fn shape_of(v: &Value) -> Vec<usize> {
        match v {
            Value::Array(items) => {
                let mut s = vec![items.len()];
                if let Some(first) = items.first() {
                    s.extend(shape_of(first));
                }
                s
            }
            _ => Vec::new(),
        }
    }
    fn collect(
        v: &Value,
        shape: &[usize],
        depth: usize,
        out: &mut Vec<Value>,
    ) -> Result<(), usize> {
        match (v, shape.split_first()) {
            (Value::Array(items), Some((&n, rest))) if items.len() == n => {
                for item in items {
                    collect(item, rest, depth + 1, out)?;
                }
                Ok(())
            }
            (Value::Array(_), _) => Err(depth),
            (_, None) => {
                out.push(v.clone());
                Ok(())
            }
            (_, Some(_)) => Err(depth),
        }
    }
    let shape = shape_of(value);
    let mut leaves = Vec::with_capacity(shape.iter().product());
    collect(value, &shape, 0, &mut leaves).map_err(|depth| {
        PyExc::value_error(format!(
            "setting an array element with a sequence. The requested array has an inhomogeneous \
             shape after {depth} dimensions. The detected shape was {} + inhomogeneous part.",
            crate::mlmodel::shape_repr(&shape[..depth])
        ))
    })?;
    Ok((shape, leaves))
}

/// `np.array(value, dtype=ty)`; with no dtype, numpy's inference (bool, int64, float64, str or
/// object).
fn np_array(value: &Value, ty: Option<ElementType>) -> Result<Array, PyExc> {
    let (shape, leaves) = nested_shape(value)?;
    match ty {
        Some(ty) => Ok(Array::Typed(Tensor {
            shape,
            data: cast_values(&leaves, ty, CastMode::Numpy)?,
        })),
        None => {
            let inferred = infer_column(leaves.clone());
            // numpy makes mixed numbers/bools numeric and anything with a string a string array;
            // None keeps object.
            let inferred = match inferred {
                Array::Object { .. }
                    if !leaves.is_empty()
                        && leaves.iter().all(|v| v.is_number() || v.is_boolean()) =>
                {
                    cast_array(&inferred, ElementType::Double, CastMode::Numpy)?
                }
                Array::Object { .. }
                    if leaves.iter().any(Value::is_string)
                        && leaves.iter().all(|v| !v.is_null() && !v.is_object()) =>
                {
                    cast_array(&inferred, ElementType::String, CastMode::Numpy)?
                }
                // numpy keeps None as an object, where pandas makes NaN.
                Array::Typed(_) if leaves.iter().any(Value::is_null) => Array::Object {
                    shape: vec![leaves.len()],
                    data: leaves,
                },
                other => other,
            };
            Ok(inferred.reshaped(shape))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schema enforcement

/// What reaches the onnx wrapper's `predict`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelInput {
    Frame(Frame),
    Dict(Vec<(String, Array)>),
    Array(Array),
    /// A list of records left as is (`inputs` holding a list of dicts with no signature).
    Other(&'static str),
}

fn scalar_like(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// `_cast_schema_type` (the `inputs` key and non-record `instances`).
fn cast_schema_type(data: &Value, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let named_types = named_types(schema);
    let mut data = data.clone();
    if let Some(schema) = schema {
        if named_types.len() == 1
            && matches!(&data, Value::Array(items) if !items.iter().any(Value::is_object))
        {
            data = json!({ named_types[0].0.clone(): data });
        } else if !(schema.has_input_names() || data.is_array() || scalar_like(&data)) {
            return Err(invalid_input(format!(
                "Failed to parse input data. This model contains an un-named  model signature which expects a single n-dimensional array or a single value as input, however, an input of type {} was found.",
                type_repr(&data)
            )));
        }
    }
    let convert = |v: &Value, ty: Option<ElementType>| -> Result<Array, Error> {
        np_array(v, ty).map_err(|e| invalid_input(e.message))
    };
    match &data {
        Value::Object(map) => {
            let mut out = Vec::new();
            for (k, v) in map {
                let ty = named_types
                    .iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, t)| *t);
                out.push((k.clone(), convert(v, ty)?));
            }
            Ok(ModelInput::Dict(order_like_schema(out, schema)))
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            // Records: a DataFrame once the column signature sees it; otherwise the wrapper
            // rejects a list.
            let mut records = Vec::new();
            for item in items {
                let mut rec = Map::new();
                for (k, v) in item.as_object().expect("object") {
                    let ty = named_types
                        .iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, t)| *t);
                    let converted = convert(v, ty)?;
                    rec.insert(k.clone(), converted.value_at(0).clone());
                }
                records.push(Value::Object(rec));
            }
            match schema {
                Some(Schema::Columns(_)) => Ok(ModelInput::Frame(frame_from_records(
                    &Value::Array(records),
                    None,
                )?)),
                _ => Ok(ModelInput::Other("list")),
            }
        }
        other => {
            let first_type = first_input_type(schema);
            Ok(ModelInput::Array(convert(other, first_type)?))
        }
    }
}

/// `(name, element type)` of every named input in the schema.
fn named_types(schema: Option<&Schema>) -> Vec<(String, Option<ElementType>)> {
    match schema {
        Some(s) if s.has_input_names() => match s {
            Schema::Columns(cols) => cols
                .iter()
                .map(|c| (c.name.clone().expect("named"), c.ty.element_type()))
                .collect(),
            Schema::Tensors(ts) => ts
                .iter()
                .map(|t| (t.name.clone().expect("named"), t.dtype))
                .collect(),
        },
        _ => Vec::new(),
    }
}

fn first_input_type(schema: Option<&Schema>) -> Option<ElementType> {
    match schema? {
        Schema::Columns(cols) => cols.first()?.ty.element_type(),
        Schema::Tensors(ts) => ts.first()?.dtype,
    }
}

/// Python dicts keep body order; serde_json's map sorts. Put schema names first, in schema order.
fn order_like_schema(
    mut items: Vec<(String, Array)>,
    schema: Option<&Schema>,
) -> Vec<(String, Array)> {
    let names: Vec<String> = named_types(schema).into_iter().map(|(n, _)| n).collect();
    items.sort_by_key(|(k, _)| names.iter().position(|n| n == k).unwrap_or(usize::MAX));
    items
}

/// `parse_instances_data`.
fn parse_instances(data: &Value, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let records = match data {
        Value::Array(items) if items.first().is_some_and(Value::is_object) => items,
        _ => return cast_schema_type(data, schema),
    };
    let named_types = named_types(schema);
    let mut columns: Vec<(String, Vec<Value>)> = Vec::new();
    for item in records {
        let Value::Object(map) = item else {
            return Err(invalid_input(format!(
                "Ensure that the input is a valid JSON-formatted string.\nError: AttributeError(\"'{}' object has no attribute 'items'\")",
                type_repr(item).trim_start_matches("<class '").trim_end_matches("'>")
            )));
        };
        for (k, v) in map {
            let ty = named_types
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, t)| *t);
            // Each value converted alone, then the column stacked (np.array of the list).
            let converted = np_array(v, ty).map_err(|e| invalid_input(e.message))?;
            let as_json = array_to_json(&converted);
            match columns.iter_mut().find(|(n, _)| n == k) {
                Some((_, col)) => col.push(as_json),
                None => columns.push((k.clone(), vec![as_json])),
            }
        }
    }
    let required: Vec<String> = match schema {
        Some(Schema::Columns(cols)) if schema.is_some_and(Schema::has_input_names) => cols
            .iter()
            .filter(|c| c.required)
            .filter_map(|c| c.name.clone())
            .collect(),
        Some(Schema::Tensors(ts)) if schema.is_some_and(Schema::has_input_names) => {
            ts.iter().filter_map(|t| t.name.clone()).collect()
        }
        _ => columns.iter().map(|(n, _)| n.clone()).collect(),
    };
    let lens: Vec<usize> = columns
        .iter()
        .filter(|(n, _)| required.contains(n))
        .map(|(_, c)| c.len())
        .collect();
    if lens.windows(2).any(|w| w[0] != w[1]) {
        return Err(invalid_input(
            "The length of values for each input/column name are not the same",
        ));
    }
    let mut out = Vec::new();
    for (name, values) in columns {
        let ty = named_types
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| *t);
        let array = np_array(&Value::Array(values), ty).map_err(|e| invalid_input(e.message))?;
        out.push((name, array));
    }
    Ok(ModelInput::Dict(order_like_schema(out, schema)))
}

fn array_to_json(array: &Array) -> Value {
    fn build(a: &Array, shape: &[usize], offset: &mut usize) -> Value {
        match shape.split_first() {
            None => {
                let v = a.value_at(*offset);
                *offset += 1;
                v
            }
            Some((&n, rest)) => Value::Array((0..n).map(|_| build(a, rest, offset)).collect()),
        }
    }
    let mut offset = 0;
    build(array, array.shape(), &mut offset)
}

/// `cast_df_types_according_to_schema`.
fn cast_frame(frame: Frame, schema: &Schema) -> Result<Frame, Error> {
    let mut frame = frame;
    let targets: Vec<(ColName, Option<ElementType>, String)> = match schema {
        Schema::Columns(cols) if schema.has_input_names() => cols
            .iter()
            .map(|c| {
                (
                    ColName::Named(c.name.clone().expect("named")),
                    c.ty.element_type(),
                    c.ty.element_type()
                        .map_or("object", |t| t.numpy_name())
                        .to_string(),
                )
            })
            .collect(),
        Schema::Tensors(ts) if schema.has_input_names() => ts
            .iter()
            .map(|t| {
                (
                    ColName::Named(t.name.clone().expect("named")),
                    t.dtype,
                    t.dtype_name.clone(),
                )
            })
            .collect(),
        Schema::Tensors(ts) if ts.len() == 1 => frame
            .columns
            .iter()
            .map(|c| (c.name.clone(), ts[0].dtype, ts[0].dtype_name.clone()))
            .collect(),
        Schema::Columns(cols) => frame
            .columns
            .iter()
            .zip(cols)
            .map(|(c, spec)| {
                (
                    c.name.clone(),
                    spec.ty.element_type(),
                    spec.ty
                        .element_type()
                        .map_or("object", |t| t.numpy_name())
                        .to_string(),
                )
            })
            .collect(),
        Schema::Tensors(ts) => frame
            .columns
            .iter()
            .zip(ts)
            .map(|(c, spec)| (c.name.clone(), spec.dtype, spec.dtype_name.clone()))
            .collect(),
    };
    let is_tensor = matches!(schema, Schema::Tensors(_));
    for (name, ty, ty_name) in targets {
        let Some(col) = frame.columns.iter_mut().find(|c| c.name == name) else {
            continue;
        };
        let Some(ty) = ty else { continue };
        if is_tensor && frame.rows > 0 && col.data.value_at(0).is_array() {
            // List cells: reshaped and cast by the tensor enforcement below.
            continue;
        }
        if ty == ElementType::String && matches!(col.data, Array::Object { .. }) {
            continue;
        }
        col.data = cast_array(&col.data, ty, CastMode::Pandas).map_err(|e| {
            invalid_input(format!(
                "Data is not compatible with model signature. Failed to convert column {name} to type '{ty_name}'. Error: '{}'",
                e.repr()
            ))
        })?;
    }
    Ok(frame)
}

/// Column names as a Python list repr.
fn names_repr<'a>(names: impl IntoIterator<Item = &'a ColName>) -> String {
    format!(
        "[{}]",
        names
            .into_iter()
            .map(ColName::repr)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `_enforce_schema`'s check that every required input is present.
fn check_missing(schema: &Schema, actual: &[ColName]) -> Result<(), Error> {
    let (required, optional): (Vec<String>, Vec<String>) = match schema {
        Schema::Columns(cols) => (
            cols.iter()
                .filter(|c| c.required)
                .filter_map(|c| c.name.clone())
                .collect(),
            cols.iter()
                .filter(|c| !c.required)
                .filter_map(|c| c.name.clone())
                .collect(),
        ),
        Schema::Tensors(ts) => (
            ts.iter().filter_map(|t| t.name.clone()).collect(),
            Vec::new(),
        ),
    };
    let missing: Vec<ColName> = required
        .iter()
        .filter(|r| !actual.iter().any(|a| a.matches(r)))
        .map(|r| ColName::Named(r.clone()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let extra: Vec<&ColName> = actual
        .iter()
        .filter(|a| !required.iter().chain(&optional).any(|n| a.matches(n)))
        .collect();
    let mut message = format!("Model is missing inputs {}.", names_repr(&missing));
    if !extra.is_empty() {
        message += &format!(" Note that there were extra inputs: {}.", names_repr(extra));
    }
    Err(schema_error(schema, message))
}

/// A dict of arrays or records as a DataFrame, for a column signature (`_enforce_schema`).
fn dict_to_frame(items: Vec<(String, Array)>, schema: &Schema) -> Result<Frame, Error> {
    let all_scalar = items.iter().all(|(_, a)| a.shape().is_empty());
    let mut columns = Vec::new();
    let mut rows = None;
    for (name, array) in items {
        let array = if all_scalar {
            array.reshaped(vec![1])
        } else if array.shape().len() > 1 {
            // A 2-D value becomes a column of lists.
            let data = match array_to_json(&array) {
                Value::Array(rows) => rows,
                other => vec![other],
            };
            Array::Object {
                shape: vec![data.len()],
                data,
            }
        } else {
            array
        };
        let n = array.shape().first().copied().unwrap_or(1);
        if rows.is_some_and(|r| r != n) {
            return Err(schema_error(
                schema,
                "This model contains a column-based signature, which suggests a DataFrame input. There was an error casting the input data to a DataFrame: All arrays must be of the same length",
            ));
        }
        rows = Some(n);
        columns.push(Column {
            name: ColName::Named(name),
            data: array,
        });
    }
    Ok(Frame {
        columns,
        rows: rows.unwrap_or(0),
    })
}

fn array_to_frame(array: Array) -> Frame {
    let shape = array.shape().to_vec();
    match shape.as_slice() {
        [] | [_] => {
            let array = if shape.is_empty() {
                array.reshaped(vec![1])
            } else {
                array
            };
            Frame {
                rows: array.shape()[0],
                columns: vec![Column {
                    name: ColName::Index(0),
                    data: array,
                }],
            }
        }
        [rows, cols, ..] => {
            let row_len: usize = shape[1..].iter().product();
            let inner = shape[2..].to_vec();
            let values = array.values();
            let columns = (0..*cols)
                .map(|j| {
                    let cell_len: usize = inner.iter().product();
                    let data: Vec<Value> = (0..*rows)
                        .flat_map(|i| {
                            let start = i * row_len + j * cell_len;
                            values[start..start + cell_len].to_vec()
                        })
                        .collect();
                    let col = if inner.is_empty() {
                        match &array {
                            Array::Typed(t) => Array::Typed(Tensor {
                                shape: vec![*rows],
                                data: cast_values(&data, t.data.element_type(), CastMode::Numpy)
                                    .expect("same type"),
                            }),
                            Array::Object { .. } => Array::Object {
                                shape: vec![*rows],
                                data,
                            },
                        }
                    } else {
                        Array::Object {
                            shape: vec![*rows],
                            data: data
                                .chunks(cell_len)
                                .map(|c| Value::Array(c.to_vec()))
                                .collect(),
                        }
                    };
                    Column {
                        name: ColName::Index(j),
                        data: col,
                    }
                })
                .collect();
            Frame {
                columns,
                rows: *rows,
            }
        }
    }
}

/// `_enforce_named_col_schema` / `_enforce_unnamed_col_schema`: the signature's columns, in
/// signature order, with extra columns dropped.
fn enforce_columns(frame: Frame, schema: &Schema) -> Result<Frame, Error> {
    let Schema::Columns(cols) = schema else {
        unreachable!("column schema")
    };
    let actual: Vec<ColName> = frame.columns.iter().map(|c| c.name.clone()).collect();
    if schema.has_input_names() {
        check_missing(schema, &actual)?;
    } else if frame.columns.len() < cols.len() {
        return Err(schema_error(
            schema,
            format!(
                "Model inference is missing inputs. The model signature declares {} inputs  but the provided value only has {} inputs. Note: the inputs were not named in the signature so we can only verify their count.",
                cols.len(),
                frame.columns.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, spec) in cols.iter().enumerate() {
        let column = match &spec.name {
            Some(name) => match frame.column(name) {
                Some(c) => c.clone(),
                None => continue,
            },
            None => frame.columns[i].clone(),
        };
        let data = match spec.ty.element_type() {
            None => {
                return Err(schema_error(
                    schema,
                    format!(
                        "ferroflow does not support {} columns for ONNX models (column {})",
                        spec.ty.name(),
                        column.name
                    ),
                ))
            }
            Some(ty) => enforce_datatype(&column, ty, schema)?,
        };
        out.push(Column {
            name: column.name,
            data,
        });
    }
    Ok(Frame {
        columns: out,
        rows: frame.rows,
    })
}

/// `_enforce_mlflow_datatype`: allowed upcasts only.
fn enforce_datatype(column: &Column, ty: ElementType, schema: &Schema) -> Result<Array, Error> {
    let actual = column.data.element_type();
    if actual == Some(ty) {
        return Ok(column.data.clone());
    }
    use ElementType::*;
    let upcast = matches!(
        (actual, ty),
        (Some(Float), Double) | (Some(Int32), Int64) | (Some(Int32 | Int64), Double)
    ) || (ty == String && matches!(column.data, Array::Object { .. }))
        || (ty == Bool && matches!(column.data, Array::Object { .. }));
    let zero_one = actual == Some(Int64)
        && matches!(ty, Float | Double)
        && column
            .data
            .values()
            .iter()
            .all(|v| v.as_i64().is_some_and(|i| i == 0 || i == 1));
    if upcast || zero_one {
        return cast_array(&column.data, ty, CastMode::Numpy)
            .map_err(|e| schema_error(schema, e.message));
    }
    Err(schema_error(
        schema,
        format!(
            "Incompatible input types for column {}. Can not safely convert {} to {}.",
            column.name,
            column.data.dtype_name(),
            ty.numpy_name()
        ),
    ))
}

/// `_enforce_tensor_spec`: rank, fixed dimensions and dtype.
fn enforce_tensor_spec(array: Array, spec: &TensorSpec, schema: &Schema) -> Result<Array, Error> {
    let actual = array.shape();
    let shape_error = || {
        schema_error(
            schema,
            format!(
                "Shape of input {} does not match expected shape {}.",
                crate::mlmodel::shape_repr(actual),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        )
    };
    if actual.len() != spec.shape.len() {
        return Err(shape_error());
    }
    for (&want, &got) in spec.shape.iter().zip(actual) {
        if want != -1 && want as usize != got {
            return Err(shape_error());
        }
    }
    match spec.dtype {
        Some(ty) if array.element_type() == Some(ty) => Ok(array),
        Some(ElementType::String) if matches!(array, Array::Object { .. }) => Ok(array),
        _ => Err(schema_error(
            schema,
            format!(
                "dtype of input {} does not match expected dtype {}",
                array.dtype_name(),
                spec.dtype_name
            ),
        )),
    }
}

/// `_reshape_and_cast_pandas_column_values`.
fn reshape_column(
    name: Option<&str>,
    column: &Column,
    spec: &TensorSpec,
    schema: &Schema,
) -> Result<Array, Error> {
    if spec.shape.first() != Some(&-1) || spec.shape[1..].contains(&-1) {
        return Err(schema_error(
            schema,
            format!(
                "For pandas dataframe input, the first dimension of shape must be a variable dimension and other dimensions must be fixed, but in model signature the shape of {} is {}.",
                name.map_or("the unnamed input".to_string(), |n| format!("input {n}")),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        ));
    }
    let ty = spec.dtype.ok_or_else(|| {
        schema_error(
            schema,
            format!("ferroflow does not support {} tensors", spec.dtype_name),
        )
    })?;
    let rows = column.data.len();
    let first = if rows > 0 {
        column.data.value_at(0)
    } else {
        Value::Null
    };
    let shape_usize = |n: usize| -> Vec<usize> {
        let mut s: Vec<usize> = spec.shape.iter().map(|&d| d.max(0) as usize).collect();
        s[0] = n;
        s
    };
    if !first.is_array() {
        if spec.shape == [-1] || spec.shape == [-1, 1] {
            let cast = cast_array(&column.data, ty, CastMode::Numpy)
                .map_err(|e| invalid_input(e.message))?;
            return enforce_tensor_spec(cast.reshaped(shape_usize(rows)), spec, schema);
        }
        return Err(schema_error(
            schema,
            format!(
                "The input pandas dataframe column '{}' contains scalar values, which requires the shape to be (-1,) or (-1, 1), but got tensor spec shape of {}.",
                name.unwrap_or("None"),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        ));
    }
    let reshape_error = || {
        schema_error(
            schema,
            format!(
                "The value in the Input DataFrame column '{}' could not be converted to the expected shape of: '{}'. Ensure that each of the input list elements are of uniform length and that the data can be coerced to the tensor type '{}'",
                name.unwrap_or("None"),
                crate::mlmodel::shape_repr(&spec.shape),
                spec.dtype_name
            ),
        )
    };
    let stacked =
        np_array(&Value::Array(column.data.values()), Some(ty)).map_err(|_| reshape_error())?;
    let per_row: usize = spec.shape[1..].iter().map(|&d| d as usize).product();
    if per_row == 0 || stacked.len() != rows * per_row {
        return Err(reshape_error());
    }
    Ok(stacked.reshaped(shape_usize(rows)))
}

/// `_enforce_tensor_schema`.
fn enforce_tensors(input: ModelInput, schema: &Schema) -> Result<ModelInput, Error> {
    let Schema::Tensors(specs) = schema else {
        unreachable!("tensor schema")
    };
    if schema.has_input_names() {
        match input {
            ModelInput::Dict(items) => {
                let mut out = Vec::new();
                for spec in specs {
                    let name = spec.name.as_deref().expect("named");
                    let (_, array) = items.iter().find(|(n, _)| n == name).expect("checked missing");
                    out.push((name.to_string(), enforce_tensor_spec(array.clone(), spec, schema)?));
                }
                Ok(ModelInput::Dict(out))
            }
            ModelInput::Frame(frame) => {
                let mut out = Vec::new();
                for spec in specs {
                    let name = spec.name.as_deref().expect("named");
                    let column = frame.column(name).expect("checked missing");
                    out.push((name.to_string(), reshape_column(Some(name), column, spec, schema)?));
                }
                Ok(ModelInput::Dict(out))
            }
            other => Err(schema_error(
                schema,
                format!(
                    "This model contains a tensor-based model signature with input names, which suggests a dictionary input mapping input name to tensor, or a pandas DataFrame input containing columns mapping input name to flattened list value from tensor, but an input of type {} was found.",
                    input_type_repr(&other)
                ),
            )),
        }
    } else {
        let spec = &specs[0];
        match input {
            ModelInput::Frame(frame) => {
                if frame.rows == 0 || frame.columns.is_empty() {
                    return Err(schema_error(schema, "Input DataFrame is empty."));
                }
                if frame.columns.len() == 1 {
                    return Ok(ModelInput::Array(reshape_column(None, &frame.columns[0], spec, schema)?));
                }
                let n = frame.columns.len();
                if spec.shape != [-1, n as i64] {
                    return Err(schema_error(
                        schema,
                        format!(
                            "This model contains a model signature with an unnamed input. Since the input data is a pandas DataFrame containing multiple columns, the input shape must be of the structure (-1, number_of_dataframe_columns). Instead, the input DataFrame passed had {n} columns and an input shape of {} with all values within the DataFrame of scalar type. Please adjust the passed in DataFrame to match the expected structure",
                            crate::mlmodel::shape_repr(&spec.shape)
                        ),
                    ));
                }
                Ok(ModelInput::Array(enforce_tensor_spec(frame_values(&frame), spec, schema)?))
            }
            ModelInput::Array(array) => Ok(ModelInput::Array(enforce_tensor_spec(array, spec, schema)?)),
            other => Err(schema_error(
                schema,
                format!(
                    "This model contains a tensor-based model signature with no input names, which suggests a numpy array input or a pandas dataframe input with proper column values, but an input of type {} was found.",
                    input_type_repr(&other)
                ),
            )),
        }
    }
}

fn input_type_repr(input: &ModelInput) -> &'static str {
    match input {
        ModelInput::Frame(_) => "<class 'pandas.DataFrame'>",
        ModelInput::Dict(_) => "<class 'dict'>",
        ModelInput::Array(_) => "<class 'numpy.ndarray'>",
        ModelInput::Other(_) => "<class 'list'>",
    }
}

/// `DataFrame.values`: a 2-D array of the columns' common dtype.
fn frame_values(frame: &Frame) -> Array {
    use ElementType::*;
    let types: Vec<Option<ElementType>> = frame
        .columns
        .iter()
        .map(|c| c.data.element_type())
        .collect();
    let common = if types.iter().all(|t| *t == types[0]) {
        types[0]
    } else if types
        .iter()
        .all(|t| matches!(t, Some(Float | Double | Int32 | Int64)))
    {
        if types.iter().any(|t| matches!(t, Some(Float | Double))) {
            Some(Double)
        } else {
            Some(Int64)
        }
    } else {
        None
    };
    let rows = frame.rows;
    let cols = frame.columns.len();
    let mut values = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for c in &frame.columns {
            values.push(c.data.value_at(i));
        }
    }
    match common {
        Some(ty) => Array::Typed(Tensor {
            shape: vec![rows, cols],
            data: cast_values(&values, ty, CastMode::Numpy).expect("numeric values cast"),
        }),
        None => Array::Object {
            shape: vec![rows, cols],
            data: values,
        },
    }
}

/// `PyFuncModel.predict`'s input handling: the signature's casts and checks.
pub fn enforce(request: &ScoringRequest, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let input = match &request.payload {
        Payload::Frame(frame) => match schema {
            Some(s) => ModelInput::Frame(cast_frame(frame.clone(), s)?),
            None => ModelInput::Frame(frame.clone()),
        },
        Payload::Instances(v) => parse_instances(v, schema)?,
        Payload::Inputs(v) => cast_schema_type(v, schema)?,
    };
    let Some(schema) = schema else {
        return Ok(input);
    };
    match schema {
        Schema::Columns(_) => {
            let frame = match input {
                ModelInput::Frame(f) => f,
                ModelInput::Dict(items) => dict_to_frame(items, schema)?,
                ModelInput::Array(a) => array_to_frame(a),
                ModelInput::Other(_) => unreachable!("records become frames under a column schema"),
            };
            Ok(ModelInput::Frame(enforce_columns(frame, schema)?))
        }
        Schema::Tensors(specs) => {
            let input = if schema.has_input_names() {
                let input = match input {
                    ModelInput::Array(a) if specs.len() == 1 => {
                        ModelInput::Dict(vec![(specs[0].name.clone().expect("named"), a)])
                    }
                    other => other,
                };
                let actual: Vec<ColName> = match &input {
                    ModelInput::Frame(f) => f.columns.iter().map(|c| c.name.clone()).collect(),
                    ModelInput::Dict(items) => items
                        .iter()
                        .map(|(n, _)| ColName::Named(n.clone()))
                        .collect(),
                    _ => Vec::new(),
                };
                check_missing(schema, &actual)?;
                input
            } else {
                input
            };
            enforce_tensors(input, schema)
        }
    }
}

/// `_enforce_params_schema`: with no params schema, params are ignored (MLflow logs a warning);
/// with one, each known param must convert to its type. The onnx flavor then ignores them.
pub fn enforce_params(params: Option<&Value>, specs: Option<&[ParamSpec]>) -> Result<(), Error> {
    let Some(params) = params else { return Ok(()) };
    let Some(specs) = specs else {
        if !matches!(params, Value::Null) && params != &json!({}) {
            tracing::warn!(
                "`params` can only be specified at inference time if the model signature defines a params schema; ignoring them"
            );
        }
        return Ok(());
    };
    let wrap = |m: String| Error::invalid(format!("Failed to predict data. \nError: {m}"));
    let Value::Object(map) = params else {
        let ty = type_repr(params)
            .trim_start_matches("<class '")
            .trim_end_matches("'>");
        return Err(wrap(format!(
            "Parameters must be a dictionary. Got type '{ty}'."
        )));
    };
    let mut invalid = Vec::new();
    for spec in specs {
        let Some(value) = map.get(&spec.name) else {
            continue;
        };
        if let Err(e) = check_param(value, spec) {
            let spec_repr = format!(
                "{}: {} (default: {})",
                str_repr(&spec.name),
                spec.ty.name(),
                match &spec.default {
                    Value::Number(n) if n.is_f64() => float_repr(n.as_f64().unwrap_or(f64::NAN)),
                    other => value_str(other),
                }
            );
            invalid.push(format!(
                "({}, {})",
                str_repr(&spec.name),
                str_repr(&format!(
                    "Failed to validate type and shape for {spec_repr}, error: {e}"
                ))
            ));
        }
    }
    if !invalid.is_empty() {
        return Err(wrap(format!(
            "Invalid parameters found: {{{}}}",
            invalid.join(", ")
        )));
    }
    Ok(())
}

fn check_param(value: &Value, spec: &ParamSpec) -> Result<(), String> {
    if value.is_null() || spec.shape.is_some() {
        return Ok(());
    }
    let dtype = format!("DataType.{}", spec.ty.name());
    if !scalar_like(value) {
        return Err(format!(
            "Value must be a scalar for type `{dtype}`, got `{}`",
            value_str(value)
        ));
    }
    let ok = match spec.ty {
        ColType::String => value.is_string(),
        ColType::Boolean => value.is_boolean(),
        ColType::Integer | ColType::Long => value.is_i64() || value.is_u64(),
        ColType::Float | ColType::Double => value.is_number(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Can not safely convert `{}` to `{dtype}` for value `{}`",
            type_repr(value),
            value_str(value)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The onnx wrapper: feeds and output shaping

/// How predictions come back: records for DataFrame input, a dict of outputs otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputShape {
    Records,
    Dict,
}

/// Feeds in graph input order, plus the response shape and row count.
#[derive(Debug, Clone, PartialEq)]
pub struct Feeds {
    pub tensors: Vec<Tensor>,
    pub shape: OutputShape,
    pub rows: usize,
}

/// `_OnnxModelWrapper.predict` up to `InferenceSession.run`, with onnxruntime's own checks of
/// feed names, element types and shapes done here so a bad request never reaches a batch.
pub fn build_feeds(input: ModelInput, graph_inputs: &[IoSpec]) -> Result<Feeds, Error> {
    let (named, shape): (Vec<(String, Array)>, OutputShape) = match input {
        ModelInput::Frame(frame) => {
            if graph_inputs.len() == 1 {
                (vec![(graph_inputs[0].name.clone(), frame_values(&frame))], OutputShape::Records)
            } else {
                let mut out = Vec::new();
                for spec in graph_inputs {
                    let column = frame
                        .column(&spec.name)
                        .ok_or_else(|| unexpected(format!("KeyError: {}", str_repr(&spec.name))))?;
                    out.push((spec.name.clone(), column.data.clone()));
                }
                (out, OutputShape::Records)
            }
        }
        ModelInput::Dict(items) => (items, OutputShape::Dict),
        ModelInput::Array(array) => {
            if graph_inputs.len() != 1 {
                let names: Vec<String> = graph_inputs.iter().map(|i| str_repr(&i.name)).collect();
                return Err(Error::new(
                    ErrorCode::InternalError,
                    format!(
                        "Failed to predict data. \nError: Unable to map numpy array input to the expected model input. Numpy arrays can only be used as input for MLflow ONNX models that have a single input. This model requires {} inputs. Please pass in data as either a dictionary or a DataFrame with the following tensors: [{}].",
                        graph_inputs.len(),
                        names.join(", ")
                    ),
                ));
            }
            (vec![(graph_inputs[0].name.clone(), array)], OutputShape::Dict)
        }
        ModelInput::Other(kind) => {
            return Err(unexpected(format!(
                "TypeError: Input should be a dictionary or a numpy array or a pandas.DataFrame, got '<class '{kind}'>'"
            )))
        }
    };
    if let Some((extra, _)) = named
        .iter()
        .find(|(n, _)| !graph_inputs.iter().any(|g| &g.name == n))
    {
        return Err(unexpected(format!("Invalid input name: {extra}")));
    }
    let missing: Vec<String> = graph_inputs
        .iter()
        .filter(|g| !named.iter().any(|(n, _)| *n == g.name))
        .map(|g| str_repr(&g.name))
        .collect();
    if !missing.is_empty() {
        let given: Vec<String> = named.iter().map(|(n, _)| str_repr(n)).collect();
        return Err(unexpected(format!(
            "Required inputs ([{}]) are missing from input feed ([{}]).",
            missing.join(", "),
            given.join(", ")
        )));
    }
    let mut tensors = Vec::with_capacity(graph_inputs.len());
    for spec in graph_inputs {
        let array = named
            .iter()
            .find(|(n, _)| *n == spec.name)
            .map(|(_, a)| a.clone())
            .expect("checked present");
        tensors.push(feed_tensor(&spec.name, array, &spec.kind)?);
    }
    let rows = tensors.first().map_or(0, Tensor::rows);
    Ok(Feeds {
        tensors,
        shape,
        rows,
    })
}

/// One feed: float64 cast to float32 for float inputs, strings accepted for string inputs, then
/// onnxruntime's type and shape checks.
pub fn feed_tensor(name: &str, array: Array, kind: &IoKind) -> Result<Tensor, Error> {
    let IoKind::Tensor { ty, shape } = kind else {
        return Err(unexpected(format!(
            "input {name} is not a tensor; ferroflow feeds tensors only"
        )));
    };
    let type_error = |actual: &str| {
        unexpected(format!(
            "Unexpected input data type for input {name}. Actual: (tensor({actual})) , expected: (tensor({}))",
            ty.onnx_name()
        ))
    };
    let tensor = match (array, ty) {
        (Array::Typed(t), ElementType::Float) if t.data.element_type() == ElementType::Double => {
            let TensorData::Double(v) = t.data else {
                unreachable!()
            };
            Tensor {
                shape: t.shape,
                data: TensorData::Float(v.into_iter().map(|x| x as f32).collect()),
            }
        }
        (Array::Typed(t), _) if t.data.element_type() == *ty => t,
        (Array::Typed(t), _) => return Err(type_error(t.data.element_type().onnx_name())),
        (Array::Object { shape, data }, ElementType::String)
            if data.iter().all(Value::is_string) =>
        {
            Tensor {
                shape,
                data: TensorData::String(
                    data.iter()
                        .map(|v| v.as_str().expect("str").to_string())
                        .collect(),
                ),
            }
        }
        (Array::Object { .. }, _) => return Err(type_error("object")),
    };
    if tensor.shape.len() != shape.len() {
        return Err(unexpected(format!(
            "Invalid rank for input: {name} Got: {} Expected: {} Please fix either the inputs/outputs or the model.",
            tensor.shape.len(),
            shape.len()
        )));
    }
    let bad: Vec<String> = shape
        .iter()
        .zip(&tensor.shape)
        .enumerate()
        .filter(|(_, (&want, &got))| want >= 0 && want as usize != got)
        .map(|(i, (want, got))| format!(" index: {i} Got: {got} Expected: {want}"))
        .collect();
    if !bad.is_empty() {
        return Err(unexpected(format!(
            "Got invalid dimensions for input: {name} for the following indices\n{}\n Please fix either the inputs/outputs or the model.",
            bad.join("\n")
        )));
    }
    Ok(tensor)
}

/// The `predictions` value MLflow writes for onnx outputs.
pub fn shape_predictions(
    outputs: &[OutputValue],
    output_names: &[String],
    shape: OutputShape,
) -> Result<Value, Error> {
    match shape {
        OutputShape::Dict => {
            let mut map = Map::new();
            for (name, out) in output_names.iter().zip(outputs) {
                map.insert(name.clone(), out.to_json());
            }
            Ok(Value::Object(map))
        }
        OutputShape::Records => {
            // `pd.DataFrame.from_dict({name: np.asarray(out).reshape(-1)})`, then records.
            let columns: Vec<Vec<Value>> = outputs.iter().map(OutputValue::flat_json).collect();
            let rows = columns.first().map_or(0, Vec::len);
            if columns.iter().any(|c| c.len() != rows) {
                return Err(unexpected(
                    "ValueError: All arrays must be of the same length (an output with several values per row cannot become a DataFrame column; send `inputs` or `instances` to get a dict of outputs)",
                ));
            }
            let records = (0..rows)
                .map(|i| {
                    let mut rec = Map::new();
                    for (name, col) in output_names.iter().zip(&columns) {
                        rec.insert(name.clone(), col[i].clone());
                    }
                    Value::Object(rec)
                })
                .collect();
            Ok(Value::Array(records))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlmodel::{ColSpec, MlModel};
    use crate::tensor::MapKey;

    fn iris_columns() -> Schema {
        Schema::Columns(
            ["a", "b", "c", "d"]
                .iter()
                .map(|n| ColSpec {
                    name: Some(n.to_string()),
                    ty: ColType::Double,
                    required: true,
                })
                .collect(),
        )
    }

    fn tensor_schema(shape: &[i64]) -> Schema {
        Schema::Tensors(vec![TensorSpec {
            name: None,
            dtype: Some(ElementType::Float),
            dtype_name: "float32".into(),
            shape: shape.to_vec(),
        }])
    }

    fn graph_x4() -> Vec<IoSpec> {
        vec![IoSpec::tensor("X", ElementType::Float, &[-1, 4])]
    }

    fn feeds(body: &str, schema: Option<&Schema>) -> Result<Feeds, ScoringError> {
        let req = parse_request(Some("application/json"), body.as_bytes(), schema)?;
        let input = enforce(&req, schema)?;
        Ok(build_feeds(input, &graph_x4())?)
    }

    fn err(body: &str, schema: Option<&Schema>) -> Error {
        match feeds(body, schema) {
            Err(ScoringError::Mlflow(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn dataframe_split_becomes_float_feeds_in_signature_column_order() {
        let s = iris_columns();
        let f = feeds(
            r#"{"dataframe_split": {"columns": ["d", "c", "b", "a", "extra"], "data": [[4, 3, 2, 1, 9]]}}"#,
            Some(&s),
        )
        .unwrap();
        assert_eq!(f.shape, OutputShape::Records);
        assert_eq!(f.tensors[0].shape, vec![1, 4]);
        assert_eq!(
            f.tensors[0].data,
            TensorData::Float(vec![1.0, 2.0, 3.0, 4.0])
        );
    }

    #[test]
    fn dataframe_records_and_csv_parse_to_the_same_feed() {
        let s = iris_columns();
        let records = feeds(
            r#"{"dataframe_records": [{"a": 1.5, "b": 2, "c": 3, "d": 4}, {"a": 5, "b": 6, "c": 7, "d": 8}]}"#,
            Some(&s),
        )
        .unwrap();
        let req =
            parse_request(Some("text/csv"), b"a,b,c,d\n1.5,2,3,4\n5,6,7,8\n", Some(&s)).unwrap();
        let csv = build_feeds(enforce(&req, Some(&s)).unwrap(), &graph_x4()).unwrap();
        assert_eq!(records, csv);
        assert_eq!(records.rows, 2);
    }

    #[test]
    fn instances_and_inputs_against_a_tensor_signature_give_a_dict() {
        let s = tensor_schema(&[-1, 4]);
        for body in [
            r#"{"instances": [[1, 2, 3, 4]]}"#,
            r#"{"inputs": [[1, 2, 3, 4]]}"#,
        ] {
            let f = feeds(body, Some(&s)).unwrap();
            assert_eq!(f.shape, OutputShape::Dict);
            assert_eq!(
                f.tensors[0].data,
                TensorData::Float(vec![1.0, 2.0, 3.0, 4.0])
            );
        }
    }

    #[test]
    fn inputs_without_signature_are_cast_from_float64_to_float32() {
        let f = feeds(r#"{"inputs": [[1.5, 2, 3, 4]]}"#, None).unwrap();
        assert_eq!(
            f.tensors[0].data,
            TensorData::Float(vec![1.5, 2.0, 3.0, 4.0])
        );
    }

    #[test]
    fn integers_without_signature_are_a_type_error_naming_the_input() {
        let e = err(r#"{"inputs": [[1, 2, 3, 4]]}"#, None);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.starts_with(UNEXPECTED_ERROR), "{}", e.message);
        assert!(e.message.contains("input X"), "{}", e.message);
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let e = err(
            r#"{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}"#,
            Some(&iris_columns()),
        );
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(
            e.message.ends_with("Error: Model is missing inputs ['d']."),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_uncoercible_value_names_the_column() {
        let e = err(
            r#"{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, "abc", 3, 4]]}}"#,
            Some(&iris_columns()),
        );
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(
            e.message,
            "Invalid input. Data is not compatible with model signature. Failed to convert column b to type 'float64'. Error: 'ValueError(\"could not convert string to float: 'abc'\")'"
        );
    }

    #[test]
    fn a_tensor_of_the_wrong_width_is_rejected_with_both_shapes() {
        let e = err(r#"{"inputs": [[1, 2, 3]]}"#, Some(&tensor_schema(&[-1, 4])));
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(
            e.message
                .ends_with("Error: Shape of input (1, 3) does not match expected shape (-1, 4)."),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_wrong_width_without_signature_is_caught_before_the_runtime() {
        let e = err(r#"{"inputs": [[1.0, 2.0, 3.0]]}"#, None);
        assert!(
            e.message.contains("Got invalid dimensions for input: X"),
            "{}",
            e.message
        );
    }

    #[test]
    fn more_than_one_or_none_of_the_input_keys_is_a_bad_request() {
        let e = err(r#"{"inputs": [], "instances": []}"#, None);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(
            e.message
                .contains("Received dictionary with input fields: ['inputs', 'instances']."),
            "{}",
            e.message
        );
        let e = err(r#"{"data": []}"#, None);
        assert!(
            e.message
                .contains("Received dictionary with input fields: []."),
            "{}",
            e.message
        );
    }

    #[test]
    fn malformed_json_and_lists_are_bad_requests() {
        let e = err("{", None);
        assert!(e
            .message
            .starts_with("Invalid input. Ensure that input is a valid JSON formatted string."));
        let e = err("[[1, 2]]", None);
        assert!(e.message.ends_with("Received a list."), "{}", e.message);
    }

    #[test]
    fn split_and_records_shape_errors_match_mlflow() {
        assert_eq!(
            err(r#"{"dataframe_split": [[1]]}"#, None).message,
            "Invalid input. Dataframe split format must be a dictionary. Got list."
        );
        assert_eq!(
            err(r#"{"dataframe_records": {"a": 1}}"#, None).message,
            "Invalid input. Dataframe records format must be a list of records. Got dictionary."
        );
    }

    #[test]
    fn unsupported_content_types_are_415s() {
        for ct in [
            Some("text/plain"),
            None,
            Some("application/json; foo=bar"),
            Some("application/json; charset=latin-1"),
        ] {
            let r = parse_request(ct, b"{}", None);
            assert!(
                matches!(r, Err(ScoringError::UnsupportedMediaType(_))),
                "{ct:?}"
            );
        }
        let e = parse_request(Some("text/plain"), b"", None).unwrap_err();
        assert_eq!(e.status_code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(e.to_string().ends_with("Got 'text/plain'."));
        assert!(parse_request(
            Some("application/json; charset=UTF-8"),
            b"{\"inputs\": 1}",
            None
        )
        .is_ok());
    }

    #[test]
    fn csv_against_a_tensor_signature_fails_as_in_mlflow() {
        let e =
            parse_request(Some("text/csv"), b"a\n1\n", Some(&tensor_schema(&[-1, 1]))).unwrap_err();
        assert!(e
            .to_string()
            .contains("TensorSpec only supports numpy types"));
    }

    #[test]
    fn params_are_ignored_without_schema_and_checked_with_one() {
        assert!(enforce_params(Some(&json!({"x": 1})), None).is_ok());
        let m = MlModel::parse(
            "flavors: {onnx: {}}\nsignature:\n  params: '[{\"name\": \"threshold\", \"type\": \"double\", \"default\": 0.5, \"shape\": null}]'\n",
        )
        .unwrap();
        assert!(enforce_params(Some(&json!({"threshold": 1})), m.params()).is_ok());
        let e = enforce_params(Some(&json!({"threshold": "high"})), m.params()).unwrap_err();
        assert!(e.message.ends_with(
            "Invalid parameters found: {('threshold', \"Failed to validate type and shape for 'threshold': double (default: 0.5), error: Can not safely convert `<class 'str'>` to `DataType.double` for value `high`\")}"
        ), "{}", e.message);
        let e = enforce_params(Some(&json!([1])), m.params()).unwrap_err();
        assert!(e
            .message
            .ends_with("Parameters must be a dictionary. Got type 'list'."));
    }

    #[test]
    fn records_output_flattens_each_output_into_a_column() {
        let label = OutputValue::Tensor(Tensor::new(vec![2], TensorData::Int64(vec![0, 1])));
        let probs = OutputValue::MapSequence(vec![
            vec![(MapKey::Int(0), 0.75), (MapKey::Int(1), 0.25)],
            vec![(MapKey::Int(0), 0.5), (MapKey::Int(1), 0.5)],
        ]);
        let names = vec!["output_label".to_string(), "output_probability".to_string()];
        let v = shape_predictions(
            &[label.clone(), probs.clone()],
            &names,
            OutputShape::Records,
        )
        .unwrap();
        assert_eq!(
            v,
            json!([
                {"output_label": 0, "output_probability": {"0": 0.75, "1": 0.25}},
                {"output_label": 1, "output_probability": {"0": 0.5, "1": 0.5}}
            ])
        );
        let v = shape_predictions(&[label, probs], &names, OutputShape::Dict).unwrap();
        assert_eq!(v["output_label"], json!([0, 1]));
    }

    #[test]
    fn records_output_rejects_outputs_of_different_lengths() {
        let label = OutputValue::Tensor(Tensor::new(vec![1], TensorData::Int64(vec![0])));
        let probs = OutputValue::Tensor(Tensor::new(vec![1, 2], TensorData::Float(vec![0.5, 0.5])));
        let names = vec!["label".to_string(), "probabilities".to_string()];
        let e = shape_predictions(&[label, probs], &names, OutputShape::Records).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }
}
