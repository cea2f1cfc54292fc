//! Fixtures shared by the protocol unit tests.

use ferroflow_core::Error;

use super::{build_feeds, enforce, parse_request, Feeds, ScoringError};
use crate::mlmodel::{ColSpec, ColType, Schema, TensorSpec};
use crate::tensor::{ElementType, IoSpec};

pub(super) fn iris_columns() -> Schema {
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

pub(super) fn tensor_schema(shape: &[i64]) -> Schema {
    Schema::Tensors(vec![TensorSpec {
        name: None,
        dtype: Some(ElementType::Float),
        dtype_name: "float32".into(),
        shape: shape.to_vec(),
    }])
}

pub(super) fn graph_x4() -> Vec<IoSpec> {
    vec![IoSpec::tensor("X", ElementType::Float, &[-1, 4])]
}

pub(super) fn feeds(body: &str, schema: Option<&Schema>) -> Result<Feeds, ScoringError> {
    let req = parse_request(Some("application/json"), body.as_bytes(), schema)?;
    let input = enforce(&req, schema)?;
    Ok(build_feeds(input, &graph_x4())?)
}

pub(super) fn err(body: &str, schema: Option<&Schema>) -> Error {
    match feeds(body, schema) {
        Err(ScoringError::Mlflow(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}
