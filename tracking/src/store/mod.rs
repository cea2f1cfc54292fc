//! All SQL of the tracking capability. Portable SQL with `$N` placeholders runs unchanged on
//! SQLite and PostgreSQL through sqlx's `Any` driver; nothing outside this module writes SQL.

mod experiments;
mod logged_models;
mod metrics;
mod runs;
mod search;

pub use experiments::*;
pub use logged_models::*;
pub use metrics::*;
pub use runs::*;
pub use search::*;

pub use ferroflow_core::sql::{Bind, SqlBuilder};
use sqlx::any::AnyRow;

/// Reads an optional BIGINT column.
pub(crate) fn opt_i64(row: &AnyRow, col: &str) -> Option<i64> {
    use sqlx::Row;
    row.try_get::<Option<i64>, _>(col).ok().flatten()
}
