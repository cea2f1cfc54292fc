//! A loaded ONNX model: sessions on worker threads behind the batcher, plus the scoring entry
//! points.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferroflow_core::Error;
use ort::session::Session;
use ort::value::{DynMapValueType, DynValue, Tensor as OrtTensor, TensorElementType, ValueType};
use serde_json::{json, Value};

use crate::batcher::{BatchCounters, BatchObserver, BatchOptions, Batcher, Runner};
use crate::mlmodel::MlModel;
use crate::protocol::{self, ScoringError};
use crate::runtime;
use crate::tensor::{ElementType, IoKind, IoSpec, MapKey, OutputValue, Tensor, TensorData};

/// An MLflow ONNX model ready to score.
pub struct LoadedModel {
    dir: PathBuf,
    mlmodel: MlModel,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    output_names: Vec<String>,
    batcher: Batcher,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("dir", &self.dir)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

fn element_type(t: TensorElementType) -> Option<ElementType> {
    Some(match t {
        TensorElementType::Float32 => ElementType::Float,
        TensorElementType::Float64 => ElementType::Double,
        TensorElementType::Int64 => ElementType::Int64,
        TensorElementType::Int32 => ElementType::Int32,
        TensorElementType::Bool => ElementType::Bool,
        TensorElementType::String => ElementType::String,
        _ => return None,
    })
}

fn io_spec(name: &str, ty: &ValueType) -> IoSpec {
    let kind = match ty {
        ValueType::Tensor { ty: et, shape, .. } => match element_type(*et) {
            Some(et) => IoKind::Tensor {
                ty: et,
                shape: shape.iter().copied().collect(),
            },
            None => IoKind::Unsupported(format!("tensor({et})")),
        },
        ValueType::Sequence(inner) => match &**inner {
            ValueType::Map {
                key: TensorElementType::Int64,
                value: TensorElementType::Float32,
            } => IoKind::MapSequence { string_keys: false },
            ValueType::Map {
                key: TensorElementType::String,
                value: TensorElementType::Float32,
            } => IoKind::MapSequence { string_keys: true },
            other => IoKind::Unsupported(format!("seq({other})")),
        },
        other => IoKind::Unsupported(other.to_string()),
    };
    IoSpec {
        name: name.to_string(),
        kind,
    }
}

fn ort_error(what: &str) -> impl Fn(ort::Error) -> Error + '_ {
    move |e| Error::invalid(format!("{what}: {e}"))
}

/// One session, owned by one worker thread.
struct OrtRunner {
    session: Session,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
}

fn to_ort(t: &Tensor) -> Result<DynValue, ort::Error> {
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Ok(match &t.data {
        TensorData::Float(v) => OrtTensor::from_array((shape, v.clone()))?.into_dyn(),
        TensorData::Double(v) => OrtTensor::from_array((shape, v.clone()))?.into_dyn(),
        TensorData::Int64(v) => OrtTensor::from_array((shape, v.clone()))?.into_dyn(),
        TensorData::Int32(v) => OrtTensor::from_array((shape, v.clone()))?.into_dyn(),
        TensorData::Bool(v) => OrtTensor::from_array((shape, v.clone()))?.into_dyn(),
        TensorData::String(v) => OrtTensor::from_string_array((shape, v.as_slice()))?.into_dyn(),
    })
}

fn from_ort(value: DynValue, spec: &IoSpec) -> Result<OutputValue, ort::Error> {
    fn dims(shape: &[i64]) -> Vec<usize> {
        shape.iter().map(|&d| d.max(0) as usize).collect()
    }
    match &spec.kind {
        IoKind::Tensor { .. } | IoKind::Unsupported(_) => {
            let ty = value.dtype().tensor_type();
            let tensor = match ty.and_then(element_type) {
                Some(ElementType::Float) => {
                    let (s, d) = value.try_extract_tensor::<f32>()?;
                    Tensor::new(dims(s), TensorData::Float(d.to_vec()))
                }
                Some(ElementType::Double) => {
                    let (s, d) = value.try_extract_tensor::<f64>()?;
                    Tensor::new(dims(s), TensorData::Double(d.to_vec()))
                }
                Some(ElementType::Int64) => {
                    let (s, d) = value.try_extract_tensor::<i64>()?;
                    Tensor::new(dims(s), TensorData::Int64(d.to_vec()))
                }
                Some(ElementType::Int32) => {
                    let (s, d) = value.try_extract_tensor::<i32>()?;
                    Tensor::new(dims(s), TensorData::Int32(d.to_vec()))
                }
                Some(ElementType::Bool) => {
                    let (s, d) = value.try_extract_tensor::<bool>()?;
                    Tensor::new(dims(s), TensorData::Bool(d.to_vec()))
                }
                Some(ElementType::String) => {
                    let (s, d) = value.try_extract_strings()?;
                    Tensor::new(dims(s), TensorData::String(d))
                }
                None => {
                    return Err(ort::Error::new(format!(
                        "output {} has type {}, which ferroflow cannot return",
                        spec.name,
                        value.dtype()
                    )))
                }
            };
            Ok(OutputValue::Tensor(tensor))
        }
        IoKind::MapSequence { string_keys } => {
            let maps = value.try_extract_sequence::<DynMapValueType>()?;
            let mut rows = Vec::with_capacity(maps.len());
            for map in maps {
                let mut row: Vec<(MapKey, f32)> = if *string_keys {
                    map.try_extract_key_values::<String, f32>()?
                        .into_iter()
                        .map(|(k, v)| (MapKey::String(k), v))
                        .collect()
                } else {
                    map.try_extract_key_values::<i64, f32>()?
                        .into_iter()
                        .map(|(k, v)| (MapKey::Int(k), v))
                        .collect()
                };
                // Keep class order stable (onnxruntime's map order is its own).
                row.sort_by(|a, b| match (&a.0, &b.0) {
                    (MapKey::Int(x), MapKey::Int(y)) => x.cmp(y),
                    (MapKey::String(x), MapKey::String(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
                rows.push(row);
            }
            Ok(OutputValue::MapSequence(rows))
        }
    }
}

impl Runner for OrtRunner {
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<OutputValue>, Error> {
        let fail = |e: ort::Error| {
            Error::new(
                ferroflow_core::ErrorCode::BadRequest,
                format!(
                    "Encountered an unexpected error while evaluating the model. Verify that the \
                     serialized input Dataframe is compatible with the model for inference. Error: {e}"
                ),
            )
        };
        let mut feeds: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (spec, t) in self.inputs.iter().zip(inputs) {
            feeds.push((spec.name.clone(), to_ort(t).map_err(fail)?));
        }
        let mut outputs = self.session.run(feeds).map_err(fail)?;
        let mut out = Vec::with_capacity(self.outputs.len());
        for spec in &self.outputs {
            let value = outputs.remove(spec.name.as_str()).ok_or_else(|| {
                Error::internal(format!("onnxruntime returned no output {}", spec.name))
            })?;
            out.push(from_ort(value, spec).map_err(fail)?);
        }
        Ok(out)
    }
}

/// One dummy row per input: dynamic dimensions become 1.
fn warmup_inputs(inputs: &[IoSpec]) -> Result<Vec<Tensor>, Error> {
    inputs
        .iter()
        .map(|spec| match &spec.kind {
            IoKind::Tensor { ty, shape } => {
                let dims: Vec<usize> = shape
                    .iter()
                    .map(|&d| if d < 0 { 1 } else { d as usize })
                    .collect();
                let n = dims.iter().product();
                Ok(Tensor::new(dims, TensorData::zeros(*ty, n)))
            }
            other => Err(Error::invalid(format!(
                "input {} has type {}, which ferroflow cannot feed",
                spec.name,
                IoSpec {
                    name: spec.name.clone(),
                    kind: other.clone()
                }
                .type_string()
            ))),
        })
        .collect()
}

impl LoadedModel {
    /// Reads the MLflow model directory, builds one session per worker, warms each up with a
    /// dummy row, and starts the workers.
    pub fn load(dir: &Path, opts: BatchOptions) -> Result<Arc<LoadedModel>, Error> {
        let environment = runtime::environment()?;
        let mlmodel = MlModel::read(dir)?;
        let onnx_path = dir.join(&mlmodel.onnx_data);
        let bytes = std::fs::read(&onnx_path)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", onnx_path.display())))?;
        let workers = opts.workers.max(1);
        let intra = mlmodel.intra_op_num_threads.unwrap_or(1);
        let mut runners = Vec::with_capacity(workers);
        let mut io: Option<(Vec<IoSpec>, Vec<IoSpec>)> = None;
        for _ in 0..workers {
            let mut builder = Session::builder(environment)
                .map_err(ort_error("creating an ONNX Runtime session failed"))?
                .with_intra_threads(intra)
                .map_err(|e| Error::invalid(format!("setting session threads failed: {e}")))?;
            let session = builder.commit_from_memory(&bytes).map_err(|e| {
                Error::invalid(format!(
                    "ONNX Runtime cannot load {}: {e}",
                    onnx_path.display()
                ))
            })?;
            let inputs: Vec<IoSpec> = session
                .inputs()
                .iter()
                .map(|o| io_spec(o.name(), o.dtype()))
                .collect();
            let outputs: Vec<IoSpec> = session
                .outputs()
                .iter()
                .map(|o| io_spec(o.name(), o.dtype()))
                .collect();
            let mut runner = OrtRunner {
                session,
                inputs: inputs.clone(),
                outputs: outputs.clone(),
            };
            let dummy = warmup_inputs(&inputs)?;
            runner.run(&dummy).map_err(|e| {
                Error::invalid(format!(
                    "warm-up inference on {} failed: {}",
                    onnx_path.display(),
                    e.message
                ))
            })?;
            runners.push(runner);
            io.get_or_insert((inputs, outputs));
        }
        let (inputs, outputs) = io.expect("at least one worker");
        let concat_ok = inputs.iter().all(|i| {
            matches!(&i.kind, IoKind::Tensor { shape, .. } if shape.first().is_some_and(|&d| d < 0))
        });
        let batcher = Batcher::start(runners, BatchOptions { workers, ..opts }, concat_ok);
        tracing::info!(dir = %dir.display(), workers, max_batch_size = opts.max_batch_size, "model loaded");
        Ok(Arc::new(LoadedModel {
            dir: dir.to_path_buf(),
            output_names: outputs.iter().map(|o| o.name.clone()).collect(),
            mlmodel,
            inputs,
            outputs,
            batcher,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mlmodel(&self) -> &MlModel {
        &self.mlmodel
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    /// Requests waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.batcher.queue_depth()
    }

    pub fn batch_counters(&self) -> BatchCounters {
        self.batcher.counters()
    }

    /// Installs a callback told the row count of every model run (for a batch-size histogram).
    pub fn set_batch_observer(&self, observer: BatchObserver) {
        self.batcher.set_observer(observer);
    }

    pub fn batch_options(&self) -> BatchOptions {
        self.batcher.options()
    }

    /// Runs the model on feeds in graph input order (checked by the caller), through the batcher.
    pub async fn run(&self, feeds: Vec<Tensor>) -> Result<Vec<OutputValue>, Error> {
        if let runtime::RuntimeStatus::Unavailable { reason } = runtime::runtime_status() {
            return Err(runtime::unavailable_error(&reason));
        }
        let rows = feeds.first().map_or(1, Tensor::rows);
        self.batcher.submit(feeds, rows).await
    }

    /// `POST /invocations`: MLflow's scoring protocol, answering `{"predictions": ...}`.
    pub async fn invocations(
        &self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Value, ScoringError> {
        let schema = self.mlmodel.input_schema();
        let request = protocol::parse_request(content_type, body, schema)?;
        let input = protocol::enforce(&request, schema)?;
        protocol::enforce_params(request.params.as_ref(), self.mlmodel.params())?;
        let feeds = protocol::build_feeds(input, &self.inputs)?;
        let outputs = self.run(feeds.tensors).await?;
        let predictions = protocol::shape_predictions(&outputs, &self.output_names, feeds.shape)?;
        Ok(json!({ "predictions": predictions }))
    }
}
