//! MLflow-compatible experiment and run tracking: the service and its REST routes.

pub mod artifacts;
pub mod logged_models;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;
pub mod validate;
pub mod writer;

pub use routes::configure;
pub use service::TrackingService;
