//! Feature store over Delta tables: feature tables (metadata in the backend store, rows in
//! Delta tables on the artifact destination), point-in-time training sets, the online store
//! and lineage. See docs/feature-store.md for the API.

pub mod convert;
pub mod delta;
pub mod model;
pub mod online;
pub mod pit;
pub mod records;
pub mod routes;
pub mod service;
pub mod store;

pub use deltalake;
pub use online::OnlineStore;
pub use routes::{configure, ROUTES};
pub use service::FeatureService;
