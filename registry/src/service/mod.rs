//! Registry operations: validation, defaults and MLflow's registry rules (stages, version
//! numbering, aliases, prompt exclusion, `models:/` resolution). No HTTP types here.

mod aliases;
mod model_versions;
mod registered_models;
mod stages;
mod uri;

pub use stages::parse_stage;
pub use uri::{parse_models_uri, ModelsUri};

use std::collections::HashMap;

use ferroflow_core::search::CompareOp;
use ferroflow_core::search_registry::{RegistryComparison, RegistryKey, RegistryValue};
use ferroflow_core::{Db, Error, Result, StorageContext};
use ferroflow_tracking::TrackingService;
use sqlx::AnyConnection;

use crate::model::{KeyValue, ModelVersion, RegisteredModel};
use crate::store;

pub const SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT: i64 = 100;
pub const SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD: i64 = 1000;
pub const SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT: i64 = 10_000;
pub const SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD: i64 = 200_000;
pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;
/// The tag that marks a registered model as a prompt (hidden from model search).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Parameters of `registered-models/search` and `model-versions/search`.
#[derive(Debug, Clone, Default)]
pub struct RegistrySearch {
    pub filter: String,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Parameters of `model-versions/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
}

/// The model registry service, over one database handle; tracking is used to check the run a
/// `mlflow-artifacts:` source belongs to.
#[derive(Clone, Debug)]
pub struct RegistryService {
    db: Db,
    tracking: TrackingService,
}

fn model_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

fn version_not_found(name: &str, version: i64) -> Error {
    Error::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

/// MLflow's `_validate_model_name`.
pub fn validate_model_name(name: &str, field: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(ferroflow_core::http::missing_value(field));
    }
    if name.contains('/') || name.contains(':') {
        return Err(Error::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    Ok(())
}

/// A version number given as a string (`"3"`): MLflow's `_validate_model_version`.
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

fn validate_tag(key: &str, value: &str) -> Result<()> {
    ferroflow_tracking::validate::entity_name(key, "key")?;
    if key.chars().count() > MAX_REGISTRY_TAG_KEY_LENGTH {
        return Err(Error::invalid(format!(
            "'key' exceeds the maximum length of {MAX_REGISTRY_TAG_KEY_LENGTH} characters"
        )));
    }
    if value.chars().count() > MAX_REGISTRY_TAG_VALUE_LENGTH {
        return Err(Error::invalid(format!(
            "'value' exceeds the maximum length of {MAX_REGISTRY_TAG_VALUE_LENGTH} characters"
        )));
    }
    Ok(())
}

/// MLflow's prompt rule for both searches: a filter whose first term on the prompt tag is
/// `= 'true'` or `!= 'false'` asks for prompts and is applied as written. Otherwise prompt
/// terms are dropped and prompts are excluded by an anti-join, so `!= 'true'` (which the
/// MLflow client appends to every model search) also matches models without the tag.
fn prompt_rule(filter: Vec<RegistryComparison>) -> (Vec<RegistryComparison>, bool) {
    let is_prompt_term = |c: &RegistryComparison| c.key == RegistryKey::Tag(PROMPT_TAG.into());
    let querying_prompts =
        filter
            .iter()
            .find(|c| is_prompt_term(c))
            .is_some_and(|c| match (&c.op, &c.value) {
                (CompareOp::Eq, RegistryValue::Text(v)) => v.eq_ignore_ascii_case("true"),
                (CompareOp::Ne, RegistryValue::Text(v)) => v.eq_ignore_ascii_case("false"),
                _ => false,
            });
    if querying_prompts {
        (filter, false)
    } else {
        (
            filter.into_iter().filter(|c| !is_prompt_term(c)).collect(),
            true,
        )
    }
}

fn max_results_in(value: Option<i64>, default: i64, limit: i64) -> Result<i64> {
    let v = value.unwrap_or(default);
    if v < 1 {
        return Err(Error::invalid(format!(
            "Invalid value for request parameter max_results. It must be at least 1, but got value {v}"
        )));
    }
    if v > limit {
        return Err(Error::invalid(format!(
            "Invalid value for request parameter max_results. It must be at most {limit}, but got value {v}"
        )));
    }
    Ok(v)
}

impl RegistryService {
    pub fn new(db: Db, tracking: TrackingService) -> Self {
        RegistryService { db, tracking }
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.db
            .reader()
            .acquire()
            .await
            .context("failed to get a database connection")
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        self.db
            .writer()
            .begin()
            .await
            .context("failed to begin a transaction")
    }

    async fn require_model(conn: &mut AnyConnection, name: &str) -> Result<store::ModelRow> {
        store::get_model(conn, name)
            .await?
            .ok_or_else(|| model_not_found(name))
    }

    async fn require_version(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
    ) -> Result<ModelVersion> {
        store::get_version(conn, self.db.backend, name, version)
            .await?
            .ok_or_else(|| version_not_found(name, version))
    }

    /// Registered models with their tags, aliases and latest versions, in `names` order.
    async fn load_models(
        &self,
        conn: &mut AnyConnection,
        names: &[String],
    ) -> Result<Vec<RegisteredModel>> {
        let backend = self.db.backend;
        let rows = store::get_models(conn, backend, names).await?;
        let mut tags = store::model_tags(conn, backend, names).await?;
        let mut aliases = store::model_aliases(conn, backend, names).await?;
        let latest_keys = store::latest_version_keys(conn, backend, names).await?;
        let mut latest: HashMap<String, Vec<ModelVersion>> = HashMap::new();
        for mv in store::get_versions(conn, backend, &latest_keys).await? {
            latest.entry(mv.name.clone()).or_default().push(mv);
        }
        let mut by_name: HashMap<String, store::ModelRow> =
            rows.into_iter().map(|r| (r.name.clone(), r)).collect();
        Ok(names
            .iter()
            .filter_map(|n| by_name.remove(n))
            .map(|r| RegisteredModel {
                latest_versions: latest.remove(&r.name).unwrap_or_default(),
                tags: tags.remove(&r.name).unwrap_or_default(),
                aliases: aliases.remove(&r.name).unwrap_or_default(),
                name: r.name,
                creation_timestamp: r.creation_time,
                last_updated_timestamp: r.last_updated_time,
                description: r.description,
            })
            .collect())
    }

    async fn load_model(&self, conn: &mut AnyConnection, name: &str) -> Result<RegisteredModel> {
        self.load_models(conn, &[name.to_string()])
            .await?
            .pop()
            .ok_or_else(|| model_not_found(name))
    }

    /// A version with its aliases (as `model-versions/get` returns it).
    async fn load_version_with_aliases(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
    ) -> Result<ModelVersion> {
        let mut mv = self.require_version(conn, name, version).await?;
        mv.aliases = store::version_aliases(conn, name, version).await?;
        Ok(mv)
    }
}
