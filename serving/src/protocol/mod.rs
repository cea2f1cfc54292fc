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

mod cast;
mod enforce;
mod feeds;
mod json;
mod params;
mod parse;
mod payload;
mod shape;
mod tensor_schema;
#[cfg(test)]
mod test_support;

use std::fmt;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use ferroflow_core::{Error, ErrorCode};
use serde_json::Value;

use crate::mlmodel::Schema;
use crate::pyrepr::str_repr;
use crate::tensor::{ElementType, Tensor};

pub use enforce::enforce;
pub use feeds::{build_feeds, feed_tensor, Feeds, OutputShape};
pub use params::enforce_params;
pub use parse::parse_request;
pub use shape::shape_predictions;

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
/// What reaches the onnx wrapper's `predict`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelInput {
    Frame(Frame),
    Dict(Vec<(String, Array)>),
    Array(Array),
    /// A list of records left as is (`inputs` holding a list of dicts with no signature).
    Other(&'static str),
}
