//! The exported pipeline as an MLflow model directory with the `onnx` flavor (as
//! `mlflow.onnx.log_model` writes it): `MLmodel`, `model.onnx`, a tensor signature (one
//! `[-1, 1]` input per raw column), an input example, and the environment files pyfunc reads.

use serde_json::{json, Value};

use crate::pipeline::{ColumnKind, Labels, Pipeline, RawValue, Task};

pub const ONNX_VERSION: &str = "1.23.0";
pub const MLFLOW_VERSION: &str = "3.17.2";
pub const PYTHON_VERSION: &str = "3.11.7";

/// The files of the model directory, by relative path.
pub fn files(
    pipeline: &Pipeline,
    onnx: &[u8],
    model_id: &str,
    example: &[Vec<RawValue>],
    created: &str,
) -> Vec<(String, Vec<u8>)> {
    let signature_inputs: Vec<Value> = pipeline
        .inputs
        .iter()
        .map(|c| {
            json!({
                "type": "tensor",
                "tensor-spec": {"dtype": dtype(c.kind), "shape": [-1, 1]},
                "name": c.name,
            })
        })
        .collect();
    let signature_outputs: Vec<Value> = match &pipeline.task {
        Task::Classification { labels } => vec![
            json!({"type": "tensor", "tensor-spec": {"dtype": match labels {
                Labels::Ints(_) => "int64", Labels::Strings(_) => "object" }, "shape": [-1]},
                "name": crate::onnx::OUTPUT_LABEL}),
            json!({"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, labels.len()]},
                "name": crate::onnx::OUTPUT_PROBABILITIES}),
        ],
        Task::Regression => vec![json!({"type": "tensor",
            "tensor-spec": {"dtype": "float32", "shape": [-1, 1]},
            "name": crate::onnx::OUTPUT_VARIABLE})],
    };
    let columns: Vec<&str> = pipeline.inputs.iter().map(|c| c.name.as_str()).collect();
    let data: Vec<Vec<Value>> = example
        .iter()
        .map(|row| row.iter().map(raw_json).collect())
        .collect();
    let input_example = json!({"columns": columns, "data": data});
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
    let requirements = format!("mlflow=={MLFLOW_VERSION}\nonnx=={ONNX_VERSION}\nonnxruntime\n");
    let conda = format!(
        "channels:\n- conda-forge\ndependencies:\n- python={PYTHON_VERSION}\n- pip\n- pip:\n  - mlflow=={MLFLOW_VERSION}\n  - onnx=={ONNX_VERSION}\n  - onnxruntime\nname: mlflow-env\n"
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

fn dtype(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric | ColumnKind::Boolean => "float32",
        ColumnKind::Categorical => "object",
    }
}

/// A raw value as JSON: numbers (NaN as null), text.
pub fn raw_json(v: &RawValue) -> Value {
    match v {
        RawValue::Number(x) if x.is_nan() => Value::Null,
        RawValue::Number(x) => json!(*x as f64),
        RawValue::Text(t) => json!(t),
    }
}
