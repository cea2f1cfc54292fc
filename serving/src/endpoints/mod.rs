//! Serving endpoints hosted by `ferroflow server` (Databricks Model Serving shape).

pub mod capture;
pub mod config;
pub mod manager;
pub mod metrics;
pub mod routes;
mod store;

pub use config::{EndpointConfig, ServedModelConfig, Target};
pub use manager::EndpointManager;
pub use metrics::ServingMetrics;
pub use routes::{configure, ROUTES};
