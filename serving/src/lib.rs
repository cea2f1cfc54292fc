//! ferroflow-serving: ONNX inference for MLflow ONNX models.
//!
//! - [`init_runtime`] loads ONNX Runtime (a shared library) once per process.
//! - [`LoadedModel::load`] reads an MLflow model directory, builds one session per worker thread
//!   behind a dynamic batcher, and warms up.
//! - [`LoadedModel::invocations`] speaks MLflow's `/invocations` scoring protocol;
//!   [`v2`] speaks the Open Inference Protocol V2; [`routes`] mounts both for one model.

pub mod batcher;
pub mod endpoints;
pub mod mlmodel;
pub mod model;
pub mod protocol;
mod pyrepr;
pub mod routes;
pub mod runtime;
pub mod tensor;
pub mod v2;

pub use batcher::{BatchCounters, BatchObserver, BatchOptions, Runner};
pub use mlmodel::MlModel;
pub use model::LoadedModel;
pub use protocol::ScoringError;
pub use runtime::{init_runtime, runtime_status, RuntimeStatus};
