//! Open Inference Protocol V2 (KServe / Triton / MLServer) tensors for `POST .../infer` and
//! model metadata.
//!
//! ZipMap outputs (`Sequence(Map<label, float>)`, skl2onnx's classifier probabilities) have no V2
//! datatype: they are returned as `BYTES` tensors of shape `[rows]` whose elements are JSON
//! objects serialized as strings, e.g. `"{\"0\":0.98,\"1\":0.02}"` (label keys as strings, as
//! MLflow writes them). Clients wanting plain tensors should export with `zipmap=False`.

use ferroflow_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::LoadedModel;
use crate::tensor::{map_row_json, ElementType, IoKind, IoSpec, OutputValue, Tensor, TensorData};

/// `POST /v2/models/{name}[/versions/{v}]/infer` body.
#[derive(Debug, Clone, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    pub inputs: Vec<RequestInput>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    /// Flat (row-major) or nested to the shape.
    pub data: Value,
    #[serde(default)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestOutput {
    pub name: String,
}

/// The infer response body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferResponse {
    pub model_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    pub id: String,
    pub outputs: Vec<ResponseOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseOutput {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: String,
    pub data: Vec<Value>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

fn tensor_metadata(spec: &IoSpec) -> TensorMetadata {
    let (datatype, shape) = match &spec.kind {
        IoKind::Tensor { ty, shape } => (ty.v2_name().to_string(), shape.clone()),
        IoKind::MapSequence { .. } => ("BYTES".to_string(), vec![-1]),
        IoKind::Unsupported(t) => (t.clone(), Vec::new()),
    };
    TensorMetadata {
        name: spec.name.clone(),
        datatype,
        shape,
    }
}

/// Metadata built from the graph's inputs and outputs.
pub fn model_metadata(
    name: &str,
    versions: Vec<String>,
    inputs: &[IoSpec],
    outputs: &[IoSpec],
) -> ModelMetadata {
    ModelMetadata {
        name: name.to_string(),
        versions,
        platform: "onnxruntime_onnx".to_string(),
        inputs: inputs.iter().map(tensor_metadata).collect(),
        outputs: outputs.iter().map(tensor_metadata).collect(),
    }
}

fn flatten(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other.clone()),
    }
}

fn typed_data(name: &str, ty: ElementType, values: Vec<Value>) -> Result<TensorData, Error> {
    let bad = |i: usize, v: &Value| {
        Error::invalid(format!(
            "input '{name}': element {i} ({v}) is not a valid {} value",
            ty.v2_name()
        ))
    };
    let num = |i: usize, v: &Value| v.as_f64().ok_or_else(|| bad(i, v));
    let int = |i: usize, v: &Value| v.as_i64().ok_or_else(|| bad(i, v));
    Ok(match ty {
        ElementType::Float => TensorData::Float(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| num(i, v).map(|x| x as f32))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Double => TensorData::Double(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| num(i, v))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int64 => TensorData::Int64(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| int(i, v))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int32 => TensorData::Int32(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| int(i, v).and_then(|x| i32::try_from(x).map_err(|_| bad(i, v))))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Bool => TensorData::Bool(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_bool().ok_or_else(|| bad(i, v)))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::String => TensorData::String(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| bad(i, v)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Request tensors → feeds in graph input order; 400 naming the tensor on any mismatch.
pub fn request_to_feeds(
    request: &InferRequest,
    graph_inputs: &[IoSpec],
) -> Result<Vec<Tensor>, Error> {
    let known = || {
        graph_inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for input in &request.inputs {
        if !graph_inputs.iter().any(|g| g.name == input.name) {
            return Err(Error::invalid(format!(
                "unknown input '{}'; the model's inputs are [{}]",
                input.name,
                known()
            )));
        }
    }
    let mut feeds = Vec::with_capacity(graph_inputs.len());
    for spec in graph_inputs {
        let input = request
            .inputs
            .iter()
            .find(|i| i.name == spec.name)
            .ok_or_else(|| Error::invalid(format!("missing input '{}'", spec.name)))?;
        let IoKind::Tensor { ty, shape } = &spec.kind else {
            return Err(Error::invalid(format!(
                "input '{}' has type {}, which ferroflow cannot feed",
                spec.name,
                spec.type_string()
            )));
        };
        let datatype = ElementType::from_v2_name(&input.datatype).ok_or_else(|| {
            Error::invalid(format!(
                "input '{}': unsupported datatype '{}' (expected {})",
                input.name,
                input.datatype,
                ty.v2_name()
            ))
        })?;
        if datatype != *ty {
            return Err(Error::invalid(format!(
                "input '{}': datatype {} does not match the model's {}",
                input.name,
                input.datatype,
                ty.v2_name()
            )));
        }
        if input.shape.iter().any(|&d| d < 0) {
            return Err(Error::invalid(format!(
                "input '{}': shape {:?} has a negative dimension",
                input.name, input.shape
            )));
        }
        let dims: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
        let mut values = Vec::new();
        flatten(&input.data, &mut values);
        let expected: usize = dims.iter().product();
        if values.len() != expected {
            return Err(Error::invalid(format!(
                "input '{}': {} data elements do not match shape {:?} ({expected} elements)",
                input.name,
                values.len(),
                input.shape
            )));
        }
        let rank_ok = dims.len() == shape.len()
            && shape
                .iter()
                .zip(&dims)
                .all(|(&want, &got)| want < 0 || want as usize == got);
        if !rank_ok {
            return Err(Error::invalid(format!(
                "input '{}': shape {:?} does not match the model's {:?} (-1 is any size)",
                input.name, input.shape, shape
            )));
        }
        feeds.push(Tensor::new(
            dims,
            typed_data(&input.name, datatype, values)?,
        ));
    }
    Ok(feeds)
}

fn response_output(spec: &IoSpec, value: &OutputValue) -> ResponseOutput {
    match value {
        OutputValue::Tensor(t) => ResponseOutput {
            name: spec.name.clone(),
            shape: t.shape.clone(),
            datatype: t.data.element_type().v2_name().to_string(),
            data: t.flat_json(),
        },
        OutputValue::MapSequence(rows) => ResponseOutput {
            name: spec.name.clone(),
            shape: vec![rows.len()],
            datatype: "BYTES".to_string(),
            data: rows
                .iter()
                .map(|r| Value::String(map_row_json(r).to_string()))
                .collect(),
        },
    }
}

/// Outputs → response outputs, restricted to `requested` when given (400 on an unknown name).
pub fn outputs_to_response(
    requested: Option<&[RequestOutput]>,
    graph_outputs: &[IoSpec],
    values: &[OutputValue],
) -> Result<Vec<ResponseOutput>, Error> {
    match requested {
        None => Ok(graph_outputs
            .iter()
            .zip(values)
            .map(|(s, v)| response_output(s, v))
            .collect()),
        Some(wanted) => wanted
            .iter()
            .map(|w| {
                graph_outputs
                    .iter()
                    .zip(values)
                    .find(|(s, _)| s.name == w.name)
                    .map(|(s, v)| response_output(s, v))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "unknown output '{}'; the model's outputs are [{}]",
                            w.name,
                            graph_outputs
                                .iter()
                                .map(|o| o.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            })
            .collect(),
    }
}

/// One empty value per graph output, to validate requested output names without running.
fn placeholder_outputs(outputs: &[IoSpec]) -> Vec<OutputValue> {
    outputs
        .iter()
        .map(|_| OutputValue::MapSequence(Vec::new()))
        .collect()
}

impl LoadedModel {
    /// V2 inference: validates the request tensors against the graph, runs, shapes the response.
    pub async fn infer(
        &self,
        model_name: &str,
        model_version: Option<&str>,
        request: InferRequest,
    ) -> Result<InferResponse, Error> {
        let feeds = request_to_feeds(&request, self.inputs())?;
        // Unknown requested outputs are rejected before running.
        outputs_to_response(
            request.outputs.as_deref(),
            self.outputs(),
            &placeholder_outputs(self.outputs()),
        )?;
        let values = self.run(feeds).await?;
        Ok(InferResponse {
            model_name: model_name.to_string(),
            model_version: model_version.map(str::to_string),
            id: request
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            outputs: outputs_to_response(request.outputs.as_deref(), self.outputs(), &values)?,
        })
    }

    /// V2 model metadata built from the graph.
    pub fn v2_metadata(&self, name: &str, versions: Vec<String>) -> ModelMetadata {
        model_metadata(name, versions, self.inputs(), self.outputs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::MapKey;
    use serde_json::json;

    fn graph() -> Vec<IoSpec> {
        vec![
            IoSpec::tensor("a", ElementType::Float, &[-1, 2]),
            IoSpec::tensor("n", ElementType::Int64, &[-1]),
        ]
    }

    fn request(body: Value) -> InferRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn nested_and_flat_data_give_the_same_feeds() {
        let flat = request(json!({"inputs": [
            {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 2]},
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}
        ]}));
        let nested = request(json!({"inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]},
            {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 2]}
        ]}));
        let a = request_to_feeds(&flat, &graph()).unwrap();
        assert_eq!(a, request_to_feeds(&nested, &graph()).unwrap());
        assert_eq!(a[0].data, TensorData::Float(vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(a[1].data, TensorData::Int64(vec![1, 2]));
    }

    #[test]
    fn errors_name_the_tensor() {
        let cases = [
            (
                json!({"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}),
                "input 'a': datatype FP64",
            ),
            (
                json!({"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}),
                "input 'a': 3 data elements",
            ),
            (
                json!({"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}),
                "input 'a': shape [1, 3]",
            ),
            (
                json!({"name": "zzz", "shape": [1], "datatype": "FP32", "data": [1]}),
                "unknown input 'zzz'",
            ),
        ];
        for (input, want) in cases {
            let n = json!({"name": "n", "shape": [1], "datatype": "INT64", "data": [1]});
            let e =
                request_to_feeds(&request(json!({"inputs": [input, n]})), &graph()).unwrap_err();
            assert_eq!(e.code, ferroflow_core::ErrorCode::InvalidParameterValue);
            assert!(e.message.contains(want), "{} / {want}", e.message);
        }
        let e = request_to_feeds(&request(json!({"inputs": []})), &graph()).unwrap_err();
        assert!(e.message.contains("missing input 'a'"));
    }

    #[test]
    fn outputs_keep_shape_and_zipmap_becomes_json_strings() {
        let specs = vec![
            IoSpec::tensor("label", ElementType::Int64, &[-1]),
            IoSpec {
                name: "probability".into(),
                kind: IoKind::MapSequence { string_keys: false },
            },
        ];
        let values = vec![
            OutputValue::Tensor(Tensor::new(vec![1], TensorData::Int64(vec![2]))),
            OutputValue::MapSequence(vec![vec![(MapKey::Int(2), 0.5)]]),
        ];
        let out = outputs_to_response(None, &specs, &values).unwrap();
        assert_eq!(out[0].datatype, "INT64");
        assert_eq!(out[1].datatype, "BYTES");
        assert_eq!(out[1].data, vec![json!("{\"2\":0.5}")]);
        let only = outputs_to_response(
            Some(&[RequestOutput {
                name: "label".into(),
            }]),
            &specs,
            &values,
        )
        .unwrap();
        assert_eq!(only.len(), 1);
        assert!(outputs_to_response(
            Some(&[RequestOutput {
                name: "nope".into()
            }]),
            &specs,
            &values
        )
        .is_err());
    }

    #[test]
    fn metadata_lists_graph_tensors() {
        let m = model_metadata("iris", vec!["1".into()], &graph(), &graph());
        assert_eq!(m.platform, "onnxruntime_onnx");
        assert_eq!(
            serde_json::to_value(&m.inputs[0]).unwrap(),
            json!({"name": "a", "datatype": "FP32", "shape": [-1, 2]})
        );
    }
}
