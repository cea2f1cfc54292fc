//! The `MLmodel` file of an MLflow model directory, as `mlflow.onnx.save_model` writes it.

use std::collections::BTreeMap;
use std::path::Path;

use ferroflow_core::Error;
use serde::Deserialize;
use serde_json::Value;

use crate::tensor::ElementType;

/// The parts of `MLmodel` serving needs.
#[derive(Debug, Clone)]
pub struct MlModel {
    /// Flavor name → its YAML section.
    pub flavors: BTreeMap<String, serde_yaml::Value>,
    /// `flavors.onnx.data`: the ONNX file, relative to the model directory.
    pub onnx_data: String,
    pub signature: Option<Signature>,
    pub saved_input_example_info: Option<serde_json::Value>,
    pub mlflow_version: Option<String>,
    pub model_uuid: Option<String>,
    pub run_id: Option<String>,
    /// `flavors.onnx.onnx_session_options.intra_op_num_threads`, if set.
    pub intra_op_num_threads: Option<usize>,
}

/// `signature`: inputs, outputs and params.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub inputs: Option<Schema>,
    pub outputs: Option<Schema>,
    pub params: Vec<ParamSpec>,
}

/// An MLflow `Schema`: either all columns or all tensors.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    Columns(Vec<ColSpec>),
    Tensors(Vec<TensorSpec>),
}

/// MLflow `DataType`s a column can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Boolean,
    Integer,
    Long,
    Float,
    Double,
    String,
    Binary,
    Datetime,
    /// Array/object/map/any columns: parsed, not supported by the onnx flavor.
    Other,
}

impl ColType {
    fn parse(name: &str) -> ColType {
        match name {
            "boolean" => ColType::Boolean,
            "integer" => ColType::Integer,
            "long" => ColType::Long,
            "float" => ColType::Float,
            "double" => ColType::Double,
            "string" => ColType::String,
            "binary" => ColType::Binary,
            "datetime" => ColType::Datetime,
            _ => ColType::Other,
        }
    }

    /// MLflow's name (`DataType.name`).
    pub fn name(self) -> &'static str {
        match self {
            ColType::Boolean => "boolean",
            ColType::Integer => "integer",
            ColType::Long => "long",
            ColType::Float => "float",
            ColType::Double => "double",
            ColType::String => "string",
            ColType::Binary => "binary",
            ColType::Datetime => "datetime",
            ColType::Other => "other",
        }
    }

    /// The tensor element type a column of this type becomes (None: unsupported here).
    pub fn element_type(self) -> Option<ElementType> {
        Some(match self {
            ColType::Boolean => ElementType::Bool,
            ColType::Integer => ElementType::Int32,
            ColType::Long => ElementType::Int64,
            ColType::Float => ElementType::Float,
            ColType::Double => ElementType::Double,
            ColType::String => ElementType::String,
            ColType::Binary | ColType::Datetime | ColType::Other => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColSpec {
    pub name: Option<String>,
    pub ty: ColType,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: Option<String>,
    /// None for numpy dtypes the onnx flavor cannot feed (e.g. float16, uint8).
    pub dtype: Option<ElementType>,
    /// The dtype as written (`float32`, `object`, ...), for messages.
    pub dtype_name: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub ty: ColType,
    pub default: Value,
    pub shape: Option<Vec<i64>>,
}

impl Schema {
    pub fn has_input_names(&self) -> bool {
        match self {
            Schema::Columns(c) => c.iter().all(|c| c.name.is_some()),
            Schema::Tensors(t) => t.iter().all(|t| t.name.is_some()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Schema::Columns(c) => c.len(),
            Schema::Tensors(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MLflow's `repr(Schema)`, e.g. `['x': double (required)]` or `[Tensor('float32', (-1, 4))]`.
    pub fn repr(&self) -> String {
        let items: Vec<String> = match self {
            Schema::Columns(cols) => cols
                .iter()
                .map(|c| {
                    let req = if c.required { "required" } else { "optional" };
                    match &c.name {
                        Some(n) => format!("'{n}': {} ({req})", c.ty.name()),
                        None => format!("{} ({req})", c.ty.name()),
                    }
                })
                .collect(),
            Schema::Tensors(ts) => ts
                .iter()
                .map(|t| {
                    let tensor = format!("Tensor('{}', {})", t.dtype_name, shape_repr(&t.shape));
                    match &t.name {
                        Some(n) => format!("'{n}': {tensor}"),
                        None => tensor,
                    }
                })
                .collect(),
        };
        format!("[{}]", items.join(", "))
    }
}

/// A shape as a Python tuple: `(-1, 4)`, `(-1,)`.
pub fn shape_repr<T: std::fmt::Display>(shape: &[T]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Deserialize)]
struct RawMlModel {
    #[serde(default)]
    flavors: BTreeMap<String, serde_yaml::Value>,
    signature: Option<RawSignature>,
    saved_input_example_info: Option<serde_yaml::Value>,
    mlflow_version: Option<String>,
    model_uuid: Option<String>,
    run_id: Option<String>,
}

#[derive(Deserialize)]
struct RawSignature {
    inputs: Option<String>,
    outputs: Option<String>,
    params: Option<String>,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(rename = "type")]
    ty: String,
    name: Option<String>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(rename = "tensor-spec")]
    tensor_spec: Option<RawTensorSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RawTensorSpec {
    dtype: String,
    shape: Vec<i64>,
}

#[derive(Deserialize)]
struct RawParamSpec {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    default: Value,
    shape: Option<Vec<i64>>,
}

fn numpy_dtype(name: &str) -> Option<ElementType> {
    Some(match name {
        "float32" => ElementType::Float,
        "float64" => ElementType::Double,
        "int64" => ElementType::Int64,
        "int32" => ElementType::Int32,
        "bool" => ElementType::Bool,
        "object" | "str" => ElementType::String,
        _ => return None,
    })
}

fn parse_schema(json: &str, what: &str) -> Result<Schema, Error> {
    let specs: Vec<RawSpec> = serde_json::from_str(json).map_err(|e| {
        Error::invalid(format!(
            "MLmodel signature.{what} is not a valid schema: {e}"
        ))
    })?;
    if specs.iter().all(|s| s.ty == "tensor") && !specs.is_empty() {
        let tensors = specs
            .into_iter()
            .map(|s| {
                let spec = s.tensor_spec.ok_or_else(|| {
                    Error::invalid(format!(
                        "MLmodel signature.{what}: a tensor without tensor-spec"
                    ))
                })?;
                Ok(TensorSpec {
                    name: s.name,
                    dtype: numpy_dtype(&spec.dtype),
                    dtype_name: spec.dtype,
                    shape: spec.shape,
                })
            })
            .collect::<Result<_, Error>>()?;
        return Ok(Schema::Tensors(tensors));
    }
    if specs.iter().any(|s| s.ty == "tensor") {
        return Err(Error::invalid(format!(
            "MLmodel signature.{what} mixes tensor and column specs"
        )));
    }
    Ok(Schema::Columns(
        specs
            .into_iter()
            .map(|s| ColSpec {
                name: s.name,
                ty: ColType::parse(&s.ty),
                required: s.required,
            })
            .collect(),
    ))
}

impl MlModel {
    /// Reads `<dir>/MLmodel`; 400 when it is missing, malformed or has no `onnx` flavor.
    pub fn read(dir: &Path) -> Result<MlModel, Error> {
        let path = dir.join("MLmodel");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
        MlModel::parse(&text)
    }

    /// Parses the YAML text of an `MLmodel` file.
    pub fn parse(text: &str) -> Result<MlModel, Error> {
        let raw: RawMlModel = serde_yaml::from_str(text)
            .map_err(|e| Error::invalid(format!("MLmodel is not valid YAML: {e}")))?;
        let Some(onnx) = raw.flavors.get("onnx") else {
            let names: Vec<&str> = raw.flavors.keys().map(String::as_str).collect();
            return Err(Error::invalid(format!(
                "the model has no 'onnx' flavor (its flavors: [{}]); ferroflow serves ONNX models \
                 saved with mlflow.onnx",
                names.join(", ")
            )));
        };
        let onnx_data = onnx
            .get("data")
            .and_then(|v| v.as_str())
            .unwrap_or("model.onnx")
            .to_string();
        let intra_op_num_threads = onnx
            .get("onnx_session_options")
            .and_then(|o| o.get("intra_op_num_threads"))
            .and_then(|v| v.as_u64())
            .map(|n| n as usize)
            .filter(|&n| n > 0);
        let signature = match raw.signature {
            None => None,
            Some(sig) => Some(Signature {
                inputs: sig
                    .inputs
                    .as_deref()
                    .map(|s| parse_schema(s, "inputs"))
                    .transpose()?,
                outputs: sig
                    .outputs
                    .as_deref()
                    .map(|s| parse_schema(s, "outputs"))
                    .transpose()?,
                params: match sig.params.as_deref() {
                    None => Vec::new(),
                    Some(s) => serde_json::from_str::<Vec<RawParamSpec>>(s)
                        .map_err(|e| {
                            Error::invalid(format!("MLmodel signature.params is not valid: {e}"))
                        })?
                        .into_iter()
                        .map(|p| ParamSpec {
                            name: p.name,
                            ty: ColType::parse(&p.ty),
                            default: p.default,
                            shape: p.shape,
                        })
                        .collect(),
                },
            }),
        };
        let saved_input_example_info = raw
            .saved_input_example_info
            .map(|v| serde_json::to_value(v).unwrap_or(Value::Null));
        Ok(MlModel {
            flavors: raw.flavors,
            onnx_data,
            signature,
            saved_input_example_info,
            mlflow_version: raw.mlflow_version,
            model_uuid: raw.model_uuid,
            run_id: raw.run_id,
            intra_op_num_threads,
        })
    }

    pub fn input_schema(&self) -> Option<&Schema> {
        self.signature.as_ref()?.inputs.as_ref()
    }

    /// The params schema; None when the signature defines none.
    pub fn params(&self) -> Option<&[ParamSpec]> {
        self.signature
            .as_ref()
            .map(|s| s.params.as_slice())
            .filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &str = r#"
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.23.0
  python_function:
    data: model.onnx
    loader_module: mlflow.onnx
mlflow_version: 3.17.2
model_uuid: 19c9cb15bfe74567953a3ef55588922a
run_id: abc
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  type: dataframe
signature:
  inputs: '[{"type": "double", "name": "sepal_length", "required": true}, {"type":
    "long", "name": "n", "required": false}]'
  outputs: null
  params: '[{"name": "threshold", "type": "double", "default": 0.5, "shape": null}]'
"#;

    #[test]
    fn parses_a_column_signature_as_mlflow_writes_it() {
        let m = MlModel::parse(COLUMNS).unwrap();
        assert_eq!(m.onnx_data, "model.onnx");
        assert_eq!(m.mlflow_version.as_deref(), Some("3.17.2"));
        assert_eq!(m.run_id.as_deref(), Some("abc"));
        let schema = m.input_schema().unwrap();
        assert_eq!(
            schema.repr(),
            "['sepal_length': double (required), 'n': long (optional)]"
        );
        assert_eq!(m.params().unwrap()[0].name, "threshold");
        assert_eq!(
            m.saved_input_example_info.unwrap()["pandas_orient"],
            serde_json::json!("split")
        );
    }

    #[test]
    fn parses_a_tensor_signature() {
        let yaml = r#"
flavors:
  onnx: {data: m.onnx}
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
"#;
        let m = MlModel::parse(yaml).unwrap();
        assert_eq!(m.onnx_data, "m.onnx");
        assert_eq!(
            m.input_schema().unwrap().repr(),
            "[Tensor('float32', (-1, 4))]"
        );
        assert!(m.params().is_none());
    }

    #[test]
    fn a_model_without_the_onnx_flavor_is_rejected_naming_its_flavors() {
        let yaml = "flavors:\n  sklearn: {}\n  python_function: {}\n";
        let err = MlModel::parse(yaml).unwrap_err();
        assert_eq!(err.code, ferroflow_core::ErrorCode::InvalidParameterValue);
        assert!(
            err.message.contains("[python_function, sklearn]"),
            "{}",
            err.message
        );
    }
}
