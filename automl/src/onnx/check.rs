//! The exported model checked in ONNX Runtime before it is registered: the model directory is
//! loaded the way a serving endpoint loads it (`ferroflow_serving::LoadedModel`: the real ONNX
//! Runtime library through `ort`, the MLmodel file, a warm-up run), the held-out rows are fed
//! as the client has them (numbers as `tensor(float)`, text as `tensor(string)`), and its
//! answers are read back as a [`Prediction`] to compare with the native model's.

use std::path::PathBuf;

use ferroflow_serving::tensor::{OutputValue, Tensor, TensorData};
use ferroflow_serving::{runtime_status, BatchOptions, LoadedModel, RuntimeStatus};
use serde_json::{json, Value};

use crate::estimators::Output;
use crate::pipeline::{Labels, Pipeline, Prediction, RawValue, Task};

/// Largest difference allowed between a native probability and ONNX Runtime's (the export
/// computes in `f32`; the libraries in `f64`).
pub const PROBABILITY_TOLERANCE: f64 = 1e-4;
/// Largest relative difference allowed for a regression value (relative to `max(1, |value|)`).
pub const VALUE_TOLERANCE: f64 = 1e-4;

/// How the check went when it could run.
#[derive(Debug)]
pub enum Outcome {
    /// ONNX Runtime answered `prediction`; `version` is the library's.
    Ran {
        version: String,
        prediction: Prediction,
    },
    /// No ONNX Runtime in this process (the server started without `--onnxruntime-lib` /
    /// `ORT_DYLIB_PATH`).
    Unavailable { reason: String },
}

/// Loads the model directory `files` in ONNX Runtime and runs it on `rows`. An `Err` is a
/// model ONNX Runtime refuses or cannot run, in words for the job's error.
pub async fn run(
    files: &[(String, Vec<u8>)],
    pipeline: &Pipeline,
    rows: &[Vec<RawValue>],
) -> Result<Outcome, String> {
    let version = match runtime_status() {
        RuntimeStatus::Ready { version } => version,
        RuntimeStatus::Unavailable { reason } => return Ok(Outcome::Unavailable { reason }),
    };
    let dir = TempDir::new(files).map_err(|e| format!("cannot write the model to check: {e}"))?;
    let options = BatchOptions {
        max_batch_size: 1,
        max_delay_us: 0,
        workers: 1,
    };
    let model = LoadedModel::load(&dir.0, options)
        .map_err(|e| format!("ONNX Runtime cannot load the exported model: {}", e.message))?;
    let names: Vec<&str> = model.inputs().iter().map(|i| i.name.as_str()).collect();
    let columns: Vec<&str> = pipeline.inputs.iter().map(|c| c.name.as_str()).collect();
    if names != columns {
        return Err(format!(
            "the exported graph takes inputs {names:?}, not the columns {columns:?}"
        ));
    }
    let outputs = if rows.is_empty() {
        Vec::new()
    } else {
        model
            .run(feeds(pipeline, rows))
            .await
            .map_err(|e| format!("ONNX Runtime cannot run the exported model: {}", e.message))?
    };
    let output_names: Vec<String> = model.outputs().iter().map(|o| o.name.clone()).collect();
    let prediction = prediction(pipeline, &output_names, outputs, rows.len())?;
    Ok(Outcome::Ran {
        version,
        prediction,
    })
}

/// One `[N, 1]` tensor per input column: text columns as strings, the others as `f32`.
pub(crate) fn feeds(pipeline: &Pipeline, rows: &[Vec<RawValue>]) -> Vec<Tensor> {
    let n = rows.len();
    pipeline
        .inputs
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let data = if c.kind.is_text() {
                TensorData::String(
                    rows.iter()
                        .map(|r| match &r[j] {
                            RawValue::Text(s) => s.clone(),
                            RawValue::Number(_) => String::new(),
                        })
                        .collect(),
                )
            } else {
                TensorData::Float(rows.iter().map(|r| r[j].number()).collect())
            };
            Tensor::new(vec![n, 1], data)
        })
        .collect()
}

/// ONNX Runtime's outputs, found by name, as the pipeline's [`Prediction`].
fn prediction(
    pipeline: &Pipeline,
    output_names: &[String],
    mut outputs: Vec<OutputValue>,
    n: usize,
) -> Result<Prediction, String> {
    let names = crate::onnx::output_names(pipeline);
    let mut take = |name: &str| -> Result<Option<Tensor>, String> {
        if n == 0 {
            return Ok(None);
        }
        let i = output_names
            .iter()
            .position(|o| o == name)
            .ok_or_else(|| format!("the exported graph has no output {name}"))?;
        match std::mem::replace(
            &mut outputs[i],
            OutputValue::Tensor(Tensor::new(vec![0], TensorData::Float(vec![]))),
        ) {
            OutputValue::Tensor(t) if t.rows() == n => Ok(Some(t)),
            OutputValue::Tensor(t) => Err(format!(
                "output {name} has {} rows for {n} input rows",
                t.rows()
            )),
            other => Err(format!("output {name} is not a tensor: {other:?}")),
        }
    };
    match &pipeline.task {
        Task::Classification { labels } => {
            let label = take(&names.label)?;
            let probs = take(&names.probabilities)?;
            let (Some(label), Some(probs)) = (label, probs) else {
                return Ok(Prediction::Classification {
                    classes: vec![],
                    probabilities: vec![],
                });
            };
            let texts: Vec<String> = match (&label.data, labels) {
                (TensorData::Int64(v), Labels::Ints(_)) => v.iter().map(i64::to_string).collect(),
                (TensorData::String(v), Labels::Strings(_)) => v.clone(),
                (data, _) => {
                    return Err(format!(
                        "output {} holds {:?} values for {labels:?} labels",
                        names.label,
                        data.element_type()
                    ))
                }
            };
            let classes = texts
                .iter()
                .map(|t| {
                    (0..labels.len())
                        .find(|c| labels.text(*c) == *t)
                        .ok_or_else(|| {
                            format!("output {} answered an unknown label {t}", names.label)
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let TensorData::Float(p) = &probs.data else {
                return Err(format!("output {} is not float", names.probabilities));
            };
            let c = labels.len();
            if p.len() != n * c {
                return Err(format!(
                    "output {} has shape {:?}, not [{n}, {c}]",
                    names.probabilities, probs.shape
                ));
            }
            Ok(Prediction::Classification {
                classes,
                probabilities: p.chunks(c).map(<[f32]>::to_vec).collect(),
            })
        }
        Task::Regression => {
            let Some(values) = take(&names.variable)? else {
                return Ok(Prediction::Regression { values: vec![] });
            };
            match values.data {
                TensorData::Float(v) if v.len() == n => Ok(Prediction::Regression { values: v }),
                other => Err(format!(
                    "output {} is not {n} float values: {:?}",
                    names.variable,
                    other.element_type()
                )),
            }
        }
    }
}

/// Where ONNX Runtime's answers differ from the native model's beyond the tolerances, in
/// words; `None` when they agree. A label may differ only where the native model's two best
/// classes are closer than the tolerance (a tie the `f32` export may break either way).
pub fn disagreement(native: &Output, got: &Prediction) -> Option<String> {
    match (native, got) {
        (
            Output::Classes(p),
            Prediction::Classification {
                classes,
                probabilities,
            },
        ) => {
            if p.nrows() != classes.len() {
                return Some(format!(
                    "{} rows answered for {} native rows",
                    classes.len(),
                    p.nrows()
                ));
            }
            let native_classes = native.classes();
            for (i, row) in probabilities.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    let d = (p[[i, k]] - f64::from(*v)).abs();
                    if d.is_nan() || d > PROBABILITY_TOLERANCE {
                        return Some(format!(
                            "row {i}, class {k}: ONNX Runtime answers probability {v}, the native \
                             model {}",
                            p[[i, k]]
                        ));
                    }
                }
                if classes[i] != native_classes[i] {
                    let top = p[[i, native_classes[i]]];
                    let theirs = p[[i, classes[i]]];
                    if top - theirs > PROBABILITY_TOLERANCE {
                        return Some(format!(
                            "row {i}: ONNX Runtime answers class {}, the native model class {}",
                            classes[i], native_classes[i]
                        ));
                    }
                }
            }
            None
        }
        (Output::Values(v), Prediction::Regression { values }) => {
            if v.len() != values.len() {
                return Some(format!(
                    "{} values answered for {} native rows",
                    values.len(),
                    v.len()
                ));
            }
            v.iter().zip(values).enumerate().find_map(|(i, (a, b))| {
                let d = (a - f64::from(*b)).abs();
                (d.is_nan() || d > VALUE_TOLERANCE * a.abs().max(1.0))
                    .then(|| format!("row {i}: ONNX Runtime answers {b}, the native model {a}"))
            })
        }
        _ => Some("ONNX Runtime answered a different task than the native model".to_string()),
    }
}

/// A report of the check for the summary.
pub fn report(outcome: &Outcome, mut agreement: Value) -> Value {
    match outcome {
        Outcome::Ran { version, .. } => {
            agreement["checked_with"] = json!(format!("onnxruntime {version}"));
        }
        Outcome::Unavailable { reason } => {
            agreement["checked_with"] = json!("ferroflow's evaluation of the pipeline");
            agreement["onnxruntime"] =
                json!(format!("not loaded ({reason}); the graph was not run"));
        }
    }
    agreement
}

/// A private temporary directory holding the model files; removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(files: &[(String, Vec<u8>)]) -> std::io::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!(
            "ferroflow-automl-check-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        for (name, bytes) in files {
            std::fs::write(dir.0.join(name), bytes)?;
        }
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
