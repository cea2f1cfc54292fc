//! All SQL of the model registry. Static statements use `$N` placeholders (SQLite and
//! PostgreSQL both accept them); statements built at run time go through tracking's
//! backend-aware `SqlBuilder`. Every function takes a connection so the service decides what
//! runs in one transaction.

mod aliases_tags;
mod model_versions;
mod registered_models;
mod search;

pub use aliases_tags::*;
pub use model_versions::*;
pub use registered_models::*;
pub use search::*;

/// Keys per `IN` list, well under both backends' bound-parameter limits.
const CHUNK: usize = 500;
