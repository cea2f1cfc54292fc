//! Registry domain types with MLflow's JSON shapes (model_registry.proto as MLflow renders
//! it: int64 as numbers, versions as strings, unset fields and empty lists omitted).

use serde::Serialize;

pub use ferroflow_core::paging::Page;
pub use ferroflow_tracking::model::KeyValue;

/// The four model version stages, in MLflow's canonical spelling.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

/// The canonical spelling of a stage given in any case, or None for an unknown stage.
pub fn canonical_stage(stage: &str) -> Option<&'static str> {
    STAGES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(stage.trim()))
}

/// An alias of a registered model and the version it points at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alias {
    pub alias: String,
    pub version: String,
}

/// One model version as `model-versions/get` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub run_link: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The logged model (`models:/m-…` source) this version was registered from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

impl ModelVersion {
    /// The version number (stored as an integer, sent as a string).
    pub fn number(&self) -> i64 {
        self.version.parse().unwrap_or(0)
    }
}

/// One registered model as `registered-models/get` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The latest version in each stage (without their aliases, as MLflow).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
}
