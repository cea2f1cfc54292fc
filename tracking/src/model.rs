//! Domain types with serde shapes matching MLflow's JSON (mlflow/protos/service.proto as
//! rendered by MLflow's `message_to_json`: int64 as numbers, unset fields omitted).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A key/value pair: run tags, params, experiment tags and input tags share this wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One experiment as `experiments/get` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub workspace: &'static str,
}

/// Workspace name MLflow 3 reports for single-tenant servers.
pub const DEFAULT_WORKSPACE: &str = "default";

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_uuid: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
    pub run_id: String,
}

/// A metric value; NaN and ±inf travel as MLflow's JSON strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValue(pub f64);

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Double;
        impl serde::de::Visitor<'_> for Double {
            type Value = MetricValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a double, or \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<MetricValue, E> {
                Ok(MetricValue(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MetricValue, E> {
                Ok(MetricValue(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MetricValue, E> {
                Ok(MetricValue(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MetricValue, E> {
                match v {
                    "NaN" | "nan" => Ok(MetricValue(f64::NAN)),
                    "Infinity" | "inf" => Ok(MetricValue(f64::INFINITY)),
                    "-Infinity" | "-inf" => Ok(MetricValue(f64::NEG_INFINITY)),
                    other => other.parse::<f64>().map(MetricValue).map_err(|_| {
                        E::custom(format!(
                            "'{other}' is not a valid double (64-bit floating point)"
                        ))
                    }),
                }
            }
        }
        d.deserialize_any(Double)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: MetricValue,
    pub timestamp: i64,
    pub step: i64,
}

/// A history point of `get-history-bulk-interval`, which names its run.
#[derive(Debug, Clone, Serialize)]
pub struct MetricWithRunId {
    pub key: String,
    pub value: MetricValue,
    pub timestamp: i64,
    pub step: i64,
    pub run_id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A dataset an experiment's runs used, as MLflow's `DatasetSummary` (the UI's
/// `experiments/search-datasets`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub dataset: Dataset,
}

/// A logged model consumed (`model_inputs`) or produced (`model_outputs`) by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIo {
    pub model_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelIo>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelIo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

/// MLflow's `ViewType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ViewType {
    #[default]
    #[serde(rename = "ACTIVE_ONLY")]
    ActiveOnly,
    #[serde(rename = "DELETED_ONLY")]
    DeletedOnly,
    #[serde(rename = "ALL")]
    All,
}

impl ViewType {
    /// Parses the enum name (or its proto number, as some clients send it).
    pub fn parse(s: &str) -> Option<ViewType> {
        match s {
            "ACTIVE_ONLY" | "1" => Some(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(ViewType::DeletedOnly),
            "ALL" | "3" => Some(ViewType::All),
            _ => None,
        }
    }

    /// Lifecycle stages the view includes.
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &["active"],
            ViewType::DeletedOnly => &["deleted"],
            ViewType::All => &["active", "deleted"],
        }
    }
}

/// MLflow's `RunStatus`.
pub const RUN_STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

pub const LIFECYCLE_ACTIVE: &str = "active";
pub const LIFECYCLE_DELETED: &str = "deleted";
pub const RUN_NAME_TAG: &str = "mlflow.runName";
pub const USER_TAG: &str = "mlflow.user";
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

pub use ferroflow_core::paging::Page;

/// A metric point to record (validated by the service).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMetric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// The MLflow 3 logged model (and evaluation dataset) the value is about, if any.
    pub model: Option<Box<MetricModelLink>>,
}

/// `model_id`, `dataset_name` and `dataset_digest` of a metric logged for a logged model.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricModelLink {
    pub model_id: String,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

impl NewMetric {
    /// MLflow's storage form: NaN as value 0 with `is_nan`, ±inf as ±f64::MAX.
    pub fn stored_value(&self) -> (f64, bool) {
        if self.value.is_nan() {
            (0.0, true)
        } else if self.value.is_infinite() {
            (if self.value > 0.0 { f64::MAX } else { f64::MIN }, false)
        } else {
            (self.value, false)
        }
    }
}

/// Fields of a run that `runs/create` sets.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub experiment_id: i64,
    pub user_id: String,
    pub name: String,
    pub start_time: i64,
    pub artifact_uri: String,
    pub tags: Vec<KeyValue>,
}
