//! AutoML: classification and regression sweeps over linfa and smartcore estimators under a
//! time budget. Every trial is an MLflow run; the best pipeline is exported to ONNX, logged as
//! an MLflow model with the `onnx` flavor and registered.

pub mod data;
pub mod estimators;
pub mod metrics;
pub mod onnx;
pub mod package;
pub mod pipeline;
mod pipeline_eval;
pub mod plots;
pub mod prep;
pub mod report;
pub mod routes;
pub mod search;
pub mod service;
pub mod store;

pub use routes::configure;
pub use service::AutomlService;
