//! `models:/` URIs: parsing and resolution to a model version or an artifact location.

use ferroflow_core::{Error, Result};

use super::RegistryService;
use crate::model::{canonical_stage, ModelVersion};
use crate::store;

impl RegistryService {
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

    /// Where a version's files are: its source, with MLflow 3's `models:/m-<id>` resolved to
    /// the logged model's artifact location and `runs:/<run_id>/<path>` to the run's artifact
    /// root joined with the path.
    pub async fn model_version_location(&self, mv: &ModelVersion) -> Result<String> {
        if mv.source.starts_with("models:/") {
            return self.resolve_models_uri_location(&mv.source).await;
        }
        if let Some(rest) = mv.source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.tracking.get_run(run_id).await?;
            return Ok(format!(
                "{}/{}",
                run.info.artifact_uri.trim_end_matches('/'),
                path.trim_matches('/')
            ));
        }
        Ok(mv.source.clone())
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
}
