//! Registry operations: validation, defaults and MLflow's registry rules (stages, version
//! numbering, aliases, prompt exclusion, `models:/` resolution). No HTTP types here.

use std::collections::HashMap;

use ferroflow_core::search::CompareOp;
use ferroflow_core::search_registry::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by, RegistryComparison, RegistryKey, RegistryOrderBy,
    RegistryValue,
};
use ferroflow_core::{now_millis, paging, Db, Error, Result, StorageContext};
use ferroflow_tracking::TrackingService;
use sqlx::AnyConnection;

use crate::model::*;
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

/// The canonical stage, or MLflow's INVALID_PARAMETER_VALUE.
pub fn parse_stage(stage: &str) -> Result<&'static str> {
    canonical_stage(stage).ok_or_else(|| {
        Error::invalid(format!(
            "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
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

fn validate_alias(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(Error::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_LENGTH {
        return Err(Error::invalid(format!(
            "'Registered model alias name' exceeds the maximum length of {MAX_ALIAS_LENGTH} characters"
        )));
    }
    Ok(())
}

fn validate_alias_not_reserved(alias: &str) -> Result<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(Error::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit())
    {
        return Err(Error::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

fn invalid_source(source: &str, field: &str) -> Error {
    Error::invalid(format!(
        "Invalid model version source: '{source}'. The {field} request parameter must identify the resource that contains the source."
    ))
}

/// The URI scheme of `source` (None for a local path; a one-letter "scheme" is a drive).
fn scheme_of(source: &str) -> Option<&str> {
    let (scheme, _) = source.split_once(':')?;
    let valid = scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// `runs:/<run_id>/<path>` → the run id.
fn runs_uri_run_id(source: &str) -> Option<&str> {
    let rest = source.strip_prefix("runs:/")?;
    if rest.starts_with('/') {
        return None;
    }
    let run_id = rest.split('/').next()?;
    (!run_id.is_empty()).then_some(run_id)
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

    // ----- registered models -----

    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        for t in tags {
            validate_tag(&t.key, &t.value)?;
        }
        let mut tx = self.begin().await?;
        if store::get_model(&mut tx, name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        store::insert_model(&mut tx, name, now_millis(), description).await?;
        for t in tags {
            store::set_model_tag(&mut tx, name, &t.key, &t.value).await?;
        }
        let model = self.load_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        let mut conn = self.reader().await?;
        self.load_model(&mut conn, name).await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        validate_model_name(new_name, "new_name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        if new_name != name && store::get_model(&mut tx, new_name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Registered Model (name={new_name}) already exists."
            )));
        }
        store::rename_model(&mut tx, name, new_name, now_millis()).await?;
        let model = self.load_model(&mut tx, new_name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name, "name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::set_model_description(&mut tx, name, description, now_millis()).await?;
        let model = self.load_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(model)
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_model(&mut tx, name).await?;
        tx.commit().await.context("failed to commit")
    }

    /// MLflow's search: filter on name and tags, prompts excluded unless the filter asks about
    /// the prompt tag, ordered by the given keys then name.
    pub async fn search_registered_models(
        &self,
        search: &RegistrySearch,
    ) -> Result<Page<RegisteredModel>> {
        let max_results = max_results_in(
            search.max_results,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
        )?;
        let (filter, exclude_prompts) = prompt_rule(parse_registered_model_filter(&search.filter)?);
        let mut order = parse_registered_model_order_by(&search.order_by)?;
        if !order.iter().any(|o| o.key == "name") {
            order.push(RegistryOrderBy {
                key: "name".into(),
                ascending: true,
            });
        }
        let offset = paging::decode_offset(search.page_token.as_deref())?;
        let mut conn = self.reader().await?;
        let names = store::search_models(
            &mut conn,
            self.db.backend,
            &filter,
            exclude_prompts,
            &order,
            offset,
            max_results + 1,
        )
        .await?;
        let models = self.load_models(&mut conn, &names).await?;
        Ok(Page::from_overfetch(models, offset, max_results))
    }

    /// The latest version in each requested stage (all stages when none are given), with
    /// their aliases.
    pub async fn get_latest_versions(
        &self,
        name: &str,
        stages: &[String],
    ) -> Result<Vec<ModelVersion>> {
        validate_model_name(name, "name")?;
        let wanted = stages
            .iter()
            .map(|s| parse_stage(s))
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.reader().await?;
        let model = self.load_model(&mut conn, name).await?;
        let mut out = Vec::new();
        for mut mv in model.latest_versions {
            if wanted.is_empty() || wanted.contains(&mv.current_stage.as_str()) {
                mv.aliases = model
                    .aliases
                    .iter()
                    .filter(|a| a.version == mv.version)
                    .map(|a| a.alias.clone())
                    .collect();
                out.push(mv);
            }
        }
        Ok(out)
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_tag(key, value)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::set_model_tag(&mut tx, name, key, value).await?;
        tx.commit().await.context("failed to commit")
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        ferroflow_tracking::validate::entity_name(key, "key")?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_model_tag(&mut tx, name, key).await?;
        tx.commit().await.context("failed to commit")
    }

    // ----- aliases -----

    /// Points `alias` at `version` (moving it if it pointed elsewhere).
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        validate_alias_not_reserved(alias)?;
        let version = parse_version(version)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        self.require_version(&mut tx, name, version).await?;
        store::set_alias(&mut tx, name, alias, version).await?;
        tx.commit().await.context("failed to commit")
    }

    /// Removes an alias; removing one that does not exist is not an error (as MLflow).
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, name).await?;
        store::delete_alias(&mut tx, name, alias).await?;
        tx.commit().await.context("failed to commit")
    }

    /// The version an alias points at. A missing alias is INVALID_PARAMETER_VALUE (400), as
    /// MLflow answers.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        validate_alias(alias)?;
        let mut conn = self.reader().await?;
        Self::require_model(&mut conn, name).await?;
        let version = store::alias_version(&mut conn, name, alias)
            .await?
            .ok_or_else(|| Error::invalid(format!("Registered model alias {alias} not found.")))?;
        self.load_version_with_aliases(&mut conn, name, version)
            .await
    }

    // ----- model versions -----

    /// MLflow's source rules: `runs:/<run_id>/…` needs the same `run_id`; `mlflow-artifacts:`
    /// needs a `run_id` whose artifact location contains it; `models:/m-…` must match
    /// `model_id` when one is given; local paths are refused; other URIs must not contain
    /// relative path segments. Returns the run id to record.
    async fn validate_source(
        &self,
        source: &str,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> Result<String> {
        let scheme = scheme_of(source);
        if scheme.is_none() || scheme == Some("file") {
            return Err(Error::invalid(format!(
                "Invalid model version source: '{source}'. To use a local path as a model version source, \
                 the run_id request parameter has to be specified and the local path has to be contained \
                 within the artifact directory of the run specified by the run_id."
            )));
        }
        let path = source.split(['?', '#']).next().unwrap_or(source);
        if path.split('/').any(|seg| seg == ".." || seg == ".")
            || path.contains("%2e%2e")
            || path.contains("%2E%2E")
        {
            return Err(Error::invalid(format!(
                "Invalid model version source: '{source}'. If supplying a source as an http, https, \
                 local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be \
                 provided without relative path references present. Please provide an absolute path."
            )));
        }
        let run_id = run_id.filter(|r| !r.is_empty());
        match scheme {
            Some("runs") => match (runs_uri_run_id(source), run_id) {
                (Some(in_source), Some(given)) if in_source == given => Ok(given.to_string()),
                _ => Err(invalid_source(source, "run_id")),
            },
            Some("models") => {
                let rest = source.strip_prefix("models:/").unwrap_or_default();
                if source.starts_with("models://") || rest.is_empty() {
                    return Err(invalid_source(source, "model_id"));
                }
                if let (Some(mid), true) = (model_id, rest.starts_with("m-")) {
                    if rest.split('/').next() != Some(mid) {
                        return Err(invalid_source(source, "model_id"));
                    }
                }
                if let Some(given) = run_id {
                    return Ok(given.to_string());
                }
                // As MLflow: a logged model's source run is the version's run (best effort).
                let logged = rest
                    .split('/')
                    .next()
                    .filter(|m| m.starts_with("m-"))
                    .or(model_id.filter(|m| !m.is_empty()));
                Ok(match logged {
                    Some(mid) => self
                        .tracking
                        .get_logged_model(mid)
                        .await
                        .ok()
                        .and_then(|m| m.info.source_run_id)
                        .unwrap_or_default(),
                    None => String::new(),
                })
            }
            Some("mlflow-artifacts") => {
                let Some(given) = run_id else {
                    return Err(invalid_source(source, "run_id"));
                };
                let run = self
                    .tracking
                    .get_run(given)
                    .await
                    .map_err(|_| invalid_source(source, "run_id"))?;
                let root = run.info.artifact_uri.trim_end_matches('/');
                let inside = source == root
                    || source
                        .strip_prefix(root)
                        .is_some_and(|rest| rest.starts_with('/'));
                if inside {
                    Ok(given.to_string())
                } else {
                    Err(invalid_source(source, "run_id"))
                }
            }
            _ => Ok(run_id.unwrap_or_default().to_string()),
        }
    }

    pub async fn create_model_version(&self, req: CreateModelVersion) -> Result<ModelVersion> {
        validate_model_name(&req.name, "name")?;
        if req.source.is_empty() {
            return Err(ferroflow_core::http::missing_value("source"));
        }
        for t in &req.tags {
            validate_tag(&t.key, &t.value)?;
        }
        let run_id = self
            .validate_source(&req.source, req.run_id.as_deref(), req.model_id.as_deref())
            .await?;
        let mut tx = self.begin().await?;
        Self::require_model(&mut tx, &req.name).await?;
        let now = now_millis();
        let version = store::allocate_version(&mut tx, &req.name, now).await?;
        let mv = ModelVersion {
            name: req.name.clone(),
            version: version.to_string(),
            creation_timestamp: now,
            last_updated_timestamp: now,
            user_id: None,
            current_stage: "None".into(),
            description: req.description.unwrap_or_default(),
            source: req.source,
            run_id,
            status: "READY".into(),
            status_message: None,
            tags: req.tags,
            run_link: req.run_link.unwrap_or_default(),
            aliases: Vec::new(),
            model_id: req.model_id.filter(|m| !m.is_empty()),
        };
        store::insert_version(&mut tx, &mv).await?;
        let created = self.require_version(&mut tx, &req.name, version).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(created)
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let mut conn = self.reader().await?;
        self.load_version_with_aliases(&mut conn, name, version)
            .await
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let mut tx = self.begin().await?;
        self.require_version(&mut tx, name, version).await?;
        if let Some(d) = description {
            store::set_version_description(&mut tx, name, version, d, now_millis()).await?;
        }
        let mv = self.require_version(&mut tx, name, version).await?;
        tx.commit().await.context("failed to commit")?;
        Ok(mv)
    }

    /// Moves a version to `stage`; with `archive_existing_versions` (Staging/Production
    /// only) every other version in that stage goes to Archived.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let stage = parse_stage(stage)?;
        if archive_existing_versions && !matches!(stage, "Staging" | "Production") {
            return Err(Error::invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' \
                 is not an Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        let mut tx = self.begin().await?;
        self.require_version(&mut tx, name, version).await?;
        let now = now_millis();
        if archive_existing_versions {
            store::archive_other_versions(&mut tx, name, version, stage, now).await?;
        }
        store::set_version_stage(&mut tx, name, version, stage, now).await?;
        store::touch_model(&mut tx, name, now).await?;
        let mv = self
            .load_version_with_aliases(&mut tx, name, version)
            .await?;
        tx.commit().await.context("failed to commit")?;
        Ok(mv)
    }

    /// Deletes a version with its tags and aliases; its number is never given out again.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let mut tx = self.begin().await?;
        self.require_version(&mut tx, name, version).await?;
        store::delete_version(&mut tx, name, version).await?;
        store::touch_model(&mut tx, name, now_millis()).await?;
        tx.commit().await.context("failed to commit")
    }

    pub async fn search_model_versions(
        &self,
        search: &RegistrySearch,
    ) -> Result<Page<ModelVersion>> {
        let max_results = max_results_in(
            search.max_results,
            SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
            SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
        )?;
        let (filter, exclude_prompts) = prompt_rule(parse_model_version_filter(&search.filter)?);
        let mut order = parse_model_version_order_by(&search.order_by)?;
        for (key, ascending) in [("name", true), ("version_number", false)] {
            if !order.iter().any(|o| o.key == key) {
                order.push(RegistryOrderBy {
                    key: key.into(),
                    ascending,
                });
            }
        }
        let offset = paging::decode_offset(search.page_token.as_deref())?;
        let mut conn = self.reader().await?;
        let versions = store::search_versions(
            &mut conn,
            self.db.backend,
            &filter,
            exclude_prompts,
            &order,
            offset,
            max_results + 1,
        )
        .await?;
        Ok(Page::from_overfetch(versions, offset, max_results))
    }

    /// Where a version's files are: its source, as MLflow answers when no storage location
    /// was recorded.
    pub async fn get_model_version_download_uri(
        &self,
        name: &str,
        version: &str,
    ) -> Result<String> {
        Ok(self.get_model_version(name, version).await?.source)
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        validate_tag(key, value)?;
        let mut tx = self.begin().await?;
        self.require_version(&mut tx, name, version).await?;
        store::set_version_tag(&mut tx, name, version, key, value).await?;
        tx.commit().await.context("failed to commit")
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        ferroflow_tracking::validate::entity_name(key, "key")?;
        let mut tx = self.begin().await?;
        self.require_version(&mut tx, name, version).await?;
        store::delete_version_tag(&mut tx, name, version, key).await?;
        tx.commit().await.context("failed to commit")
    }

    // ----- models:/ URIs -----

    /// Resolves `models:/<name>/<version>`, `models:/<name>/<stage>` (latest version in the
    /// stage, case-insensitive), `models:/<name>/latest` (highest version) and
    /// `models:/<name>@<alias>` to the model version (with its aliases).
    pub async fn resolve_models_uri(&self, uri: &str) -> Result<ModelVersion> {
        let target = parse_models_uri(uri)?;
        let mut conn = self.reader().await?;
        let (name, version) = match target {
            ModelsUri::Alias { name, alias } => {
                Self::require_model(&mut conn, &name).await?;
                let v = store::alias_version(&mut conn, &name, &alias)
                    .await?
                    .ok_or_else(|| {
                        Error::invalid(format!("Registered model alias {alias} not found."))
                    })?;
                (name, v)
            }
            ModelsUri::Version { name, version } => (name, version),
            ModelsUri::Stage { name, stage } => {
                Self::require_model(&mut conn, &name).await?;
                let v = store::max_version(&mut conn, &name, stage)
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "No versions of model with name '{name}'{} found",
                            stage
                                .map(|s| format!(" and stage '{s}'"))
                                .unwrap_or_default()
                        ))
                    })?;
                (name, v)
            }
        };
        self.load_version_with_aliases(&mut conn, &name, version)
            .await
    }

    /// The artifact location a `models:/` URI points at: a registered version's source, or,
    /// for MLflow 3's `models:/m-<id>`, the logged model's artifact location (through the
    /// tracking service).
    pub async fn resolve_models_uri_location(&self, uri: &str) -> Result<String> {
        if let Some(id) = uri
            .strip_prefix("models:/")
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| r.starts_with("m-") && !r.contains('/') && !r.contains('@'))
        {
            return Ok(self.tracking.get_logged_model(id).await?.info.artifact_uri);
        }
        Ok(self.resolve_models_uri(uri).await?.source)
    }
}

/// A parsed `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelsUri {
    Version {
        name: String,
        version: i64,
    },
    /// A stage, or None for `latest`.
    Stage {
        name: String,
        stage: Option<&'static str>,
    },
    Alias {
        name: String,
        alias: String,
    },
}

/// Parses a `models:/` URI (see [`RegistryService::resolve_models_uri`]).
pub fn parse_models_uri(uri: &str) -> Result<ModelsUri> {
    let bad = || {
        Error::invalid(format!(
            "Not a proper models:/ URI: {uri}. Models URIs must be of the form \
             'models:/model_name/suffix' or 'models:/model_name@alias' where suffix is a model \
             version, stage, or the string 'latest' and where alias is a registered model alias."
        ))
    };
    let rest = uri.strip_prefix("models:/").ok_or_else(bad)?;
    if rest.starts_with('/') {
        return Err(bad());
    }
    let rest = rest.trim_end_matches('/');
    if let Some((name, suffix)) = rest.split_once('/') {
        if name.is_empty() || suffix.is_empty() || suffix.contains('/') {
            return Err(bad());
        }
        let name = name.to_string();
        if let Ok(version) = suffix.parse::<i64>() {
            return Ok(ModelsUri::Version { name, version });
        }
        if suffix.eq_ignore_ascii_case("latest") {
            return Ok(ModelsUri::Stage { name, stage: None });
        }
        let stage = canonical_stage(suffix).ok_or_else(bad)?;
        return Ok(ModelsUri::Stage {
            name,
            stage: Some(stage),
        });
    }
    if let Some((name, alias)) = rest.split_once('@') {
        if name.is_empty() || alias.is_empty() {
            return Err(bad());
        }
        return Ok(ModelsUri::Alias {
            name: name.into(),
            alias: alias.into(),
        });
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_uris_parse_into_versions_stages_latest_and_aliases() {
        assert_eq!(
            parse_models_uri("models:/m/3").unwrap(),
            ModelsUri::Version {
                name: "m".into(),
                version: 3
            }
        );
        assert_eq!(
            parse_models_uri("models:/m/staging").unwrap(),
            ModelsUri::Stage {
                name: "m".into(),
                stage: Some("Staging")
            }
        );
        assert_eq!(
            parse_models_uri("models:/m/latest").unwrap(),
            ModelsUri::Stage {
                name: "m".into(),
                stage: None
            }
        );
        assert_eq!(
            parse_models_uri("models:/m@champion").unwrap(),
            ModelsUri::Alias {
                name: "m".into(),
                alias: "champion".into()
            }
        );
        for bad in [
            "models:/m",
            "runs:/x/y",
            "models:/m/bogus",
            "models://m/1",
            "models:/m/1/2",
        ] {
            assert!(parse_models_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stages_are_canonicalised_and_aliases_checked() {
        assert_eq!(parse_stage("pRoDuCtIoN").unwrap(), "Production");
        assert!(parse_stage("bogus").is_err());
        assert!(validate_alias_not_reserved("v3").is_err());
        assert!(validate_alias_not_reserved("Latest").is_err());
        assert!(validate_alias_not_reserved("champion").is_ok());
        assert!(validate_alias("bad alias").is_err());
        assert!(parse_version("abc").is_err());
    }
}
