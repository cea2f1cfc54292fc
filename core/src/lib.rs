//! ferroflow's shared kernel: errors with MLflow error codes, ids, page tokens, the
//! search-filter grammar, the clock and the database handle.

pub mod db;
pub mod error;
pub mod http;
pub mod paging;
pub mod search;
pub mod search_registry;
pub mod sql;

pub use db::{Backend, Db, StoreUri};
pub use error::{Error, ErrorCode, Result, StorageContext};

/// Milliseconds since the Unix epoch, the unit of every MLflow timestamp.
pub fn now_millis() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new 32-hex-digit id, the shape of MLflow run ids.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
