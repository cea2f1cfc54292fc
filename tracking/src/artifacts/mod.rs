//! MLflow's proxied artifacts: the `mlflow-artifacts` API over an `object_store` destination
//! (local directory, S3, GCS, Azure), plus the run-relative list and `/get-artifact`.

pub mod routes;
pub mod s3direct;
pub mod service;
pub mod store;

pub use routes::{configure, stream_artifact, ROUTES};
pub use service::{local_root, ArtifactService, ByteCounters};
pub use store::{ArtifactStore, StoreRoot};
