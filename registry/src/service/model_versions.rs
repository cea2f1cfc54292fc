//! Model versions: source validation, create, get, update, delete, search and tags.

use ferroflow_core::search_registry::{
    parse_model_version_filter, parse_model_version_order_by, RegistryOrderBy,
};
use ferroflow_core::{now_millis, paging, Error, Result, StorageContext};

use super::{
    max_results_in, parse_version, prompt_rule, validate_model_name, validate_tag,
    CreateModelVersion, RegistrySearch, RegistryService, SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
};
use crate::model::{ModelVersion, Page};
use crate::store;
use ferroflow_tracking::artifacts::local_root;

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

/// Whether the local path `source` (a `file:` URI or an absolute path) lies inside the local
/// artifact root `root` (component-wise, no `.`/`..` segments on either side).
fn inside_local_root(source: &str, root: &str) -> bool {
    match (local_root(source), local_root(root)) {
        (Some(source), Some(root)) => source.starts_with(root),
        _ => false,
    }
}

/// Whether `source` is `root` or lies under it (both proxied `mlflow-artifacts:` URIs).
fn inside_uri_root(source: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    source == root
        || source
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl RegistryService {
    /// MLflow's source rules (`_validate_source_model` when a `model_id` is given, else
    /// `_validate_source_run`): a local path (`file:` or plain) must lie inside the local
    /// artifact directory of the given logged model or run; `runs:/<run_id>/…` needs that same
    /// `run_id` (and no `model_id`); `models:/m-…` must name the given `model_id`;
    /// `mlflow-artifacts:` must lie inside the given model's or run's artifact location; no
    /// non-local URI may contain relative path segments. Returns the run id to record.
    async fn validate_source(
        &self,
        source: &str,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> Result<String> {
        let run_id = run_id.filter(|r| !r.is_empty());
        let model_id = model_id.filter(|m| !m.is_empty());
        let scheme = scheme_of(source);
        if scheme.is_none() || scheme == Some("file") {
            let (root, field) = self.source_root(run_id, model_id).await;
            if root.is_some_and(|root| inside_local_root(source, &root)) {
                return self.recorded_run_id(run_id, model_id).await;
            }
            let owner = if field == "model_id" {
                "run specified by the model_id"
            } else {
                "run specified by the run_id"
            };
            return Err(Error::invalid(format!(
                "Invalid model version source: '{source}'. To use a local path as a model version source, \
                 the {field} request parameter has to be specified and the local path has to be contained \
                 within the artifact directory of the {owner}."
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
        match scheme {
            Some("runs") => match (runs_uri_run_id(source), run_id, model_id) {
                (_, _, Some(_)) => Err(invalid_source(source, "model_id")),
                (Some(in_source), Some(given), None) if in_source == given => Ok(given.to_string()),
                _ => Err(invalid_source(source, "run_id")),
            },
            Some("models") => {
                let rest = source.strip_prefix("models:/").unwrap_or_default();
                if source.starts_with("models://") || rest.is_empty() {
                    return Err(invalid_source(source, "model_id"));
                }
                if rest.starts_with("m-") {
                    // A logged model's URI names the model the request names (MLflow refuses
                    // one without a model_id too).
                    match model_id {
                        Some(mid) if rest.split('/').next() == Some(mid) => {}
                        _ => return Err(invalid_source(source, "model_id")),
                    }
                }
                self.recorded_run_id(
                    run_id,
                    model_id.or_else(|| rest.split('/').next().filter(|m| m.starts_with("m-"))),
                )
                .await
            }
            Some("mlflow-artifacts") => {
                let (root, field) = self.source_root(run_id, model_id).await;
                if root.is_some_and(|root| inside_uri_root(source, &root)) {
                    self.recorded_run_id(run_id, model_id).await
                } else {
                    Err(invalid_source(source, field))
                }
            }
            _ => Ok(run_id.unwrap_or_default().to_string()),
        }
    }

    /// The artifact location a source must lie in — the logged model's when a `model_id` is
    /// given, else the run's — and the request field that names it.
    async fn source_root(
        &self,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> (Option<String>, &'static str) {
        match (model_id, run_id) {
            (Some(mid), _) => (
                self.tracking
                    .get_logged_model(mid)
                    .await
                    .ok()
                    .map(|m| m.info.artifact_uri),
                "model_id",
            ),
            (None, Some(rid)) => (
                self.tracking
                    .get_run(rid)
                    .await
                    .ok()
                    .map(|r| r.info.artifact_uri),
                "run_id",
            ),
            (None, None) => (None, "run_id"),
        }
    }

    /// The run a version records: the one given, else (as MLflow) the logged model's source
    /// run, best effort.
    async fn recorded_run_id(
        &self,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> Result<String> {
        if let Some(given) = run_id {
            return Ok(given.to_string());
        }
        Ok(match model_id {
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

    /// Deletes a version with its tags and aliases; its number is never given out again.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        validate_model_name(name, "name")?;
        let version = parse_version(version)?;
        let mut tx = self.begin().await?;
        // The model's lock first, in the same order as stage transitions (no deadlock).
        store::lock_model(&mut tx, name, now_millis()).await?;
        self.require_version(&mut tx, name, version).await?;
        store::delete_version(&mut tx, name, version).await?;
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
        // MLflow's order: the given keys (none: most recently updated first), then name
        // ascending and version descending for whatever the given keys leave tied.
        let mut order = parse_model_version_order_by(&search.order_by)?;
        if search.order_by.is_empty() {
            order.push(RegistryOrderBy {
                key: "last_updated_timestamp".into(),
                ascending: false,
            });
        }
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
}
