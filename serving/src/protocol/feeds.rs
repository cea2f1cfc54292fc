//! The onnx wrapper's `predict` up to the session run: model input to graph feeds.

use ferroflow_core::{Error, ErrorCode};
use serde_json::Value;

use super::cast::frame_values;
use super::{unexpected, Array, ModelInput};
use crate::pyrepr::str_repr;
use crate::tensor::{ElementType, IoKind, IoSpec, Tensor, TensorData};

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

#[cfg(test)]
mod tests {
    use ferroflow_core::ErrorCode;

    use super::super::test_support::{err, feeds, iris_columns};
    use super::*;
    use crate::protocol::UNEXPECTED_ERROR;

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
    fn a_wrong_width_without_signature_is_caught_before_the_runtime() {
        let e = err(r#"{"inputs": [[1.0, 2.0, 3.0]]}"#, None);
        assert!(
            e.message.contains("Got invalid dimensions for input: X"),
            "{}",
            e.message
        );
    }
}
