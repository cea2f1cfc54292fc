//! The exported pipeline as an MLflow model directory with the `onnx` flavor (as
//! `mlflow.onnx.log_model` writes it): `MLmodel`, `model.onnx`, a tensor signature (one
//! `[-1, 1]` input per raw column), an input example, and the environment files pyfunc reads.

use serde_json::{json, Value};

use crate::data::Cell;
use crate::pipeline::{Labels, Pipeline, RawValue, Task};

/// The `onnx` package version the flavor metadata names (as `mlflow.onnx` records the version
/// it saved with); not a requirement: loading the model as pyfunc needs only onnxruntime.
pub const ONNX_VERSION: &str = "1.23.0";
pub const MLFLOW_VERSION: &str = "3.17.2";
pub const PYTHON_VERSION: &str = "3.11.7";
/// What loading and scoring the model needs, as ranges: MLflow 3's model format, and an ONNX
/// Runtime that runs IR 8 / opset 17 / ai.onnx.ml opset 3. Exact pins (as `mlflow.onnx` writes
/// them) make every pyfunc load in another environment warn about a version mismatch.
pub const REQUIREMENTS: [&str; 2] = ["mlflow>=3.0,<4", "onnxruntime>=1.13"];

/// The files of the model directory, by relative path. `example`: a few rows as the dataset
/// held them (see [`cell_json`]), one value per input column.
pub fn files(
    pipeline: &Pipeline,
    onnx: &[u8],
    model_id: &str,
    example: &[Vec<Value>],
    created: &str,
) -> Vec<(String, Vec<u8>)> {
    let signature_inputs: Vec<Value> = pipeline
        .inputs
        .iter()
        .map(|c| {
            json!({
                "type": "tensor",
                "tensor-spec": {"dtype": if c.kind.is_text() { "object" } else { "float32" },
                                "shape": [-1, 1]},
                "name": c.name,
            })
        })
        .collect();
    let names = crate::onnx::output_names(pipeline);
    let signature_outputs: Vec<Value> = match &pipeline.task {
        Task::Classification { labels } => vec![
            json!({"type": "tensor", "tensor-spec": {"dtype": match labels {
                Labels::Ints(_) => "int64", Labels::Strings(_) => "object" }, "shape": [-1]},
                "name": names.label}),
            json!({"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, labels.len()]},
                "name": names.probabilities}),
        ],
        Task::Regression => vec![json!({"type": "tensor",
            "tensor-spec": {"dtype": "float32", "shape": [-1, 1]},
            "name": names.variable})],
    };
    let columns: Vec<&str> = pipeline.inputs.iter().map(|c| c.name.as_str()).collect();
    let input_example = json!({"columns": columns, "data": example});
    let serving_example = json!({"dataframe_split": input_example});
    let mlmodel = serde_yaml::to_string(&json!({
        "artifact_path": "model",
        "flavors": {
            "onnx": {
                "code": null,
                "data": "model.onnx",
                "onnx_version": ONNX_VERSION,
                "providers": ["CPUExecutionProvider"],
            },
            "python_function": {
                "data": "model.onnx",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.onnx",
                "python_version": PYTHON_VERSION,
            },
        },
        "is_signature_from_type_hint": false,
        "mlflow_version": MLFLOW_VERSION,
        "model_id": model_id,
        "model_size_bytes": onnx.len(),
        "model_uuid": uuid::Uuid::new_v4().simple().to_string(),
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
            "type": "dataframe",
        },
        "signature": {
            "inputs": Value::String(Value::Array(signature_inputs).to_string()),
            "outputs": Value::String(Value::Array(signature_outputs).to_string()),
            "params": null,
        },
        "utc_time_created": created,
    }))
    .unwrap_or_default();
    let requirements: String = REQUIREMENTS.iter().map(|r| format!("{r}\n")).collect();
    let conda_pip: String = REQUIREMENTS.iter().map(|r| format!("  - {r}\n")).collect();
    let conda = format!(
        "channels:\n- conda-forge\ndependencies:\n- python={PYTHON_VERSION}\n- pip\n- pip:\n{conda_pip}name: mlflow-env\n"
    );
    let python_env = format!(
        "python: {PYTHON_VERSION}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    );
    vec![
        ("MLmodel".into(), mlmodel.into_bytes()),
        ("model.onnx".into(), onnx.to_vec()),
        (
            "input_example.json".into(),
            input_example.to_string().into_bytes(),
        ),
        (
            "serving_input_example.json".into(),
            serde_json::to_vec_pretty(&serving_example).unwrap_or_default(),
        ),
        ("requirements.txt".into(), requirements.into_bytes()),
        ("conda.yaml".into(), conda.into_bytes()),
        ("python_env.yaml".into(), python_env.into_bytes()),
        (
            "pipeline.json".into(),
            serde_json::to_vec_pretty(pipeline).unwrap_or_default(),
        ),
    ]
}

/// A raw value as JSON: text as it is; a number (the `f32` the model reads) by its shortest
/// decimal form, so 6.907755 is written as 6.907755, not as the `f64` widening
/// 6.907754898071289; NaN as null.
pub fn raw_json(v: &RawValue) -> Value {
    match v {
        RawValue::Number(x) if x.is_nan() => Value::Null,
        RawValue::Number(x) => x
            .to_string()
            .parse::<f64>()
            .map_or(Value::Null, |v| json!(v)),
        RawValue::Text(t) => json!(t),
    }
}

/// A dataset cell as JSON, exactly as the file held it: numbers (integers without a fraction),
/// booleans, text; a missing value as null.
pub fn cell_json(cell: &Cell) -> Value {
    match cell {
        Cell::Missing => Value::Null,
        Cell::Number(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => json!(*v as i64),
        Cell::Number(v) => json!(v),
        Cell::Bool(b) => json!(b),
        Cell::Text(t) => json!(t),
    }
}
