//! MLflow-compatible model registry: registered models, versions, stages, aliases, tags and
//! `models:/` URI resolution, with its REST routes.

pub mod model;
pub mod routes;
pub mod service;
pub mod store;

pub use routes::configure;
pub use service::RegistryService;
