//! ferroflow's shared kernel: errors with MLflow error codes, ids, page tokens, the
//! search-filter grammar, the clock and the database handle.

pub mod access;
pub mod db;
pub mod error;
pub mod http;
pub mod paging;
pub mod search;
pub mod search_registry;
pub mod sql;
pub mod uri;

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

/// Renders a string the way Python's `repr` does, so messages read as MLflow's do.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}
