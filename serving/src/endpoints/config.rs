//! Serving-endpoint configs as the Databricks Model Serving API takes them
//! (`served_models` + `traffic_config.routes`), checked into [`EndpointSpec`].

use ferroflow_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};

use super::capture::AutoCaptureConfig;
use super::features::FeatureLookupConfig;
use crate::BatchOptions;

/// One `served_models` entry as sent (unknown Databricks fields are ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServedModelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// A version number, a stage (`Staging`, `Production`, …) or `latest`.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_version: Option<String>,
    /// Follow this registry alias instead of a version or stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_alias: Option<String>,
    /// Dynamic batching: most rows per model run (1 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<usize>,
    /// Dynamic batching: how long a worker waits for more requests, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_us: Option<u64>,
    /// Inference threads (each with its own ONNX Runtime session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Accepted for Databricks compatibility; one process serves every size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero_enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub served_model_name: String,
    pub traffic_percentage: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TrafficConfig {
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// The `config` of an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EndpointConfig {
    #[serde(default)]
    pub served_models: Vec<ServedModelConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_config: Option<TrafficConfig>,
    /// Inference logging (request/response payloads to a Parquet table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_capture_config: Option<AutoCaptureConfig>,
    /// Features joined from the online store into each request before inference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_lookups: Vec<FeatureLookupConfig>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "model_version must be a string or a number, got {other}"
            )))
        }
    })
}

/// Which registry version a served model runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Version(i64),
    Stage(&'static str),
    Latest,
    Alias(String),
}

impl Target {
    /// The `models:/` URI the registry resolves.
    pub fn models_uri(&self, model: &str) -> String {
        match self {
            Target::Version(v) => format!("models:/{model}/{v}"),
            Target::Stage(s) => format!("models:/{model}/{s}"),
            Target::Latest => format!("models:/{model}/latest"),
            Target::Alias(a) => format!("models:/{model}@{a}"),
        }
    }

    /// A stage, `latest` or an alias moves when the registry does.
    pub fn follows_registry(&self) -> bool {
        !matches!(self, Target::Version(_))
    }
}

/// A served model, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedSpec {
    pub name: String,
    pub model_name: String,
    pub target: Target,
    pub batch: BatchOptions,
}

/// An endpoint config, checked: served models and the traffic split (percentages summing
/// to 100, by index into `served`).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    pub served: Vec<ServedSpec>,
    pub routes: Vec<(usize, u32)>,
}

/// Databricks endpoint names: letters, digits, `-` and `_`, at most 63 characters.
pub fn check_endpoint_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(format!(
            "Invalid endpoint name '{name}': use 1-63 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

const MAX_BATCH_SIZE: usize = 4096;
const MAX_WORKERS: usize = 64;
const MAX_DELAY_US: u64 = 1_000_000;
/// Default batching: take whatever is queued when a worker frees up (no added wait).
const DEFAULT_MAX_BATCH_SIZE: usize = 64;

fn parse_target(i: usize, m: &ServedModelConfig) -> Result<Target> {
    let field = |f: &str| format!("served_models[{i}].{f}");
    match (&m.model_version, &m.model_alias) {
        (Some(_), Some(_)) => Err(Error::invalid(format!(
            "{} and {} are mutually exclusive",
            field("model_version"),
            field("model_alias")
        ))),
        (None, None) => Err(Error::invalid(format!(
            "Missing value for required parameter '{}' (a version, a stage or latest) or '{}'",
            field("model_version"),
            field("model_alias")
        ))),
        (None, Some(alias)) if alias.trim().is_empty() => Err(Error::invalid(format!(
            "{} must not be empty",
            field("model_alias")
        ))),
        (None, Some(alias)) => Ok(Target::Alias(alias.clone())),
        (Some(v), None) => {
            if let Ok(n) = v.trim().parse::<i64>() {
                if n < 1 {
                    return Err(Error::invalid(format!(
                        "{} must be a positive version, got {n}",
                        field("model_version")
                    )));
                }
                return Ok(Target::Version(n));
            }
            if v.eq_ignore_ascii_case("latest") {
                return Ok(Target::Latest);
            }
            match ferroflow_registry::model::canonical_stage(v) {
                Some(stage) if stage != "None" && stage != "Archived" => Ok(Target::Stage(stage)),
                _ => Err(Error::invalid(format!(
                    "Invalid {} '{v}': use a version number, Staging, Production or latest",
                    field("model_version")
                ))),
            }
        }
    }
}

impl EndpointConfig {
    /// Checks the config: every served model names a model and exactly one of a version,
    /// stage or alias; served names are unique; routes name served models and sum to 100.
    pub fn check(&self) -> Result<EndpointSpec> {
        super::features::check(&self.feature_lookups)?;
        if self.served_models.is_empty() {
            return Err(Error::invalid(
                "Missing value for required parameter 'config.served_models'",
            ));
        }
        let mut served = Vec::with_capacity(self.served_models.len());
        for (i, m) in self.served_models.iter().enumerate() {
            let model_name = m
                .model_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "Missing value for required parameter 'served_models[{i}].model_name'"
                    ))
                })?;
            let target = parse_target(i, m)?;
            let name = match &m.name {
                Some(n) => n.clone(),
                None => match &target {
                    Target::Alias(a) => format!("{model_name}-{a}"),
                    _ => format!(
                        "{model_name}-{}",
                        m.model_version.as_deref().unwrap_or_default()
                    ),
                },
            };
            check_endpoint_name(&name).map_err(|_| {
                Error::invalid(format!(
                    "Invalid served_models[{i}].name '{name}': use 1-63 letters, digits, '-' or '_'"
                ))
            })?;
            if served.iter().any(|s: &ServedSpec| s.name == name) {
                return Err(Error::invalid(format!(
                    "Duplicate served model name '{name}'"
                )));
            }
            let max_batch_size = m.max_batch_size.unwrap_or(DEFAULT_MAX_BATCH_SIZE);
            let workers = m.workers.unwrap_or(2);
            let max_delay_us = m.max_delay_us.unwrap_or(0);
            if !(1..=MAX_BATCH_SIZE).contains(&max_batch_size) {
                return Err(Error::invalid(format!(
                    "served_models[{i}].max_batch_size must be between 1 and {MAX_BATCH_SIZE}"
                )));
            }
            if !(1..=MAX_WORKERS).contains(&workers) {
                return Err(Error::invalid(format!(
                    "served_models[{i}].workers must be between 1 and {MAX_WORKERS}"
                )));
            }
            if max_delay_us > MAX_DELAY_US {
                return Err(Error::invalid(format!(
                    "served_models[{i}].max_delay_us must be at most {MAX_DELAY_US}"
                )));
            }
            served.push(ServedSpec {
                name,
                model_name,
                target,
                batch: BatchOptions {
                    max_batch_size,
                    max_delay_us,
                    workers,
                },
            });
        }
        if let Some(capture) = &self.auto_capture_config {
            capture.check()?;
        }
        let routes =
            match &self.traffic_config {
                None if served.len() == 1 => vec![(0, 100)],
                None => return Err(Error::invalid(
                    "config.traffic_config is required when an endpoint serves more than one model",
                )),
                Some(t) => {
                    let mut routes = Vec::with_capacity(t.routes.len());
                    for r in &t.routes {
                        let idx = served
                            .iter()
                            .position(|s| s.name == r.served_model_name)
                            .ok_or_else(|| {
                                Error::invalid(format!(
                                    "traffic_config route names '{}', which is not a served model",
                                    r.served_model_name
                                ))
                            })?;
                        if r.traffic_percentage > 100 {
                            return Err(Error::invalid(format!(
                                "traffic_percentage of '{}' must be between 0 and 100",
                                r.served_model_name
                            )));
                        }
                        if routes.iter().any(|(i, _)| *i == idx) {
                            return Err(Error::invalid(format!(
                                "traffic_config routes '{}' twice",
                                r.served_model_name
                            )));
                        }
                        routes.push((idx, r.traffic_percentage));
                    }
                    let total: u32 = routes.iter().map(|(_, p)| p).sum();
                    if total != 100 {
                        return Err(Error::invalid(format!(
                            "traffic_config percentages must sum to 100, got {total}"
                        )));
                    }
                    routes
                }
            };
        Ok(EndpointSpec { served, routes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(name: &str, version: Option<&str>, alias: Option<&str>) -> ServedModelConfig {
        ServedModelConfig {
            name: Some(name.into()),
            model_name: Some("iris".into()),
            model_version: version.map(Into::into),
            model_alias: alias.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn versions_stages_and_aliases_become_targets() {
        let cfg = EndpointConfig {
            served_models: vec![
                served("a", Some("3"), None),
                served("b", Some("production"), None),
                served("c", None, Some("champion")),
            ],
            auto_capture_config: None,
            feature_lookups: Vec::new(),
            traffic_config: Some(TrafficConfig {
                routes: vec![
                    Route {
                        served_model_name: "a".into(),
                        traffic_percentage: 50,
                    },
                    Route {
                        served_model_name: "b".into(),
                        traffic_percentage: 40,
                    },
                    Route {
                        served_model_name: "c".into(),
                        traffic_percentage: 10,
                    },
                ],
            }),
        };
        let spec = cfg.check().unwrap();
        assert_eq!(spec.served[0].target, Target::Version(3));
        assert_eq!(spec.served[1].target, Target::Stage("Production"));
        assert_eq!(
            spec.served[1].target.models_uri("iris"),
            "models:/iris/Production"
        );
        assert_eq!(
            spec.served[2].target.models_uri("iris"),
            "models:/iris@champion"
        );
        assert_eq!(spec.routes, vec![(0, 50), (1, 40), (2, 10)]);
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let one = |m: ServedModelConfig| EndpointConfig {
            served_models: vec![m],
            traffic_config: None,
            auto_capture_config: None,
            feature_lookups: Vec::new(),
        };
        let err = |c: EndpointConfig| c.check().unwrap_err().message;
        assert!(err(one(served("a", None, None))).contains("served_models[0].model_version"));
        assert!(err(one(served("a", Some("1"), Some("x")))).contains("mutually exclusive"));
        assert!(err(one(served("a", Some("Archived"), None)))
            .contains("Invalid served_models[0].model_version"));
        assert!(err(one(served("a", Some("0"), None))).contains("positive"));
        let mut no_model = served("a", Some("1"), None);
        no_model.model_name = None;
        assert!(err(one(no_model)).contains("model_name"));
        let two = EndpointConfig {
            served_models: vec![served("a", Some("1"), None), served("b", Some("2"), None)],
            traffic_config: None,
            auto_capture_config: None,
            feature_lookups: Vec::new(),
        };
        assert!(err(two.clone()).contains("traffic_config is required"));
        let mut split = two;
        split.traffic_config = Some(TrafficConfig {
            routes: vec![Route {
                served_model_name: "a".into(),
                traffic_percentage: 90,
            }],
        });
        assert!(err(split).contains("sum to 100, got 90"));
        assert!(check_endpoint_name("ok_name-1").is_ok());
        assert!(check_endpoint_name("bad name").is_err());
    }
}
