//! MLflow's input rules (mlflow/utils/validation.py): names, lengths, batch limits.

use ferroflow_core::{Error, Result};

pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const SEARCH_MAX_RESULTS_DEFAULT: i64 = 1000;
pub const SEARCH_MAX_RESULTS_THRESHOLD: i64 = 50000;
pub const MAX_RUNS_GET_METRIC_HISTORY_BULK: usize = 100;
pub const MAX_RESULTS_PER_RUN: i64 = 2500;

/// `Invalid value <json> for parameter '<path>' supplied[: message]`, as MLflow words it.
pub fn invalid_value(path: &str, value: &str, message: Option<&str>) -> Error {
    let shown = serde_json::to_string(value).unwrap_or_default();
    match message {
        Some(m) => Error::invalid(format!(
            "Invalid value {shown} for parameter '{path}' supplied: {m}"
        )),
        None => Error::invalid(format!(
            "Invalid value {shown} for parameter '{path}' supplied."
        )),
    }
}

pub use ferroflow_core::http::missing_value;

fn exceeds_maximum_length(path: &str, limit: usize) -> Error {
    Error::invalid(format!(
        "'{path}' exceeds the maximum length of {limit} characters"
    ))
}

/// Joins a JSON path prefix (`metrics[3]`) and a field (`key`).
fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Metric, param and tag names: slashes, alphanumerics, underscores, periods, dashes, colons
/// and spaces, and nothing that normalises to another path.
pub fn entity_name(name: &str, path: &str) -> Result<()> {
    entity_name_chars(name, path)?;
    key_length(name, path)
}

/// The character and path rules of `entity_name`, without the length.
fn entity_name_chars(name: &str, path: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '.' | '-' | ':' | ' '));
    if !ok_chars {
        return Err(invalid_value(
            path,
            name,
            Some(
                "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), \
                 spaces ( ), colon(:) and slashes (/).",
            ),
        ));
    }
    let normalized = normalize_posix(name);
    if normalized != name
        || normalized == "."
        || normalized.starts_with("..")
        || normalized.starts_with('/')
    {
        return Err(invalid_value(
            path,
            name,
            Some(&format!(
                "Names may be treated as files in certain cases, and must not resolve to other names \
                 when treated as such. This name would resolve to '{normalized}'"
            )),
        ));
    }
    Ok(())
}

/// A key over MLflow's 250 characters, named by MLflow's label for it (`Param key`,
/// `Metric name`, or the key's path for tags).
fn key_length(name: &str, label: &str) -> Result<()> {
    if name.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(exceeds_maximum_length(label, MAX_ENTITY_KEY_LENGTH));
    }
    Ok(())
}

/// Python's `posixpath.normpath`.
fn normalize_posix(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = parts.join("/");
    let out = format!("{}{}", "/".repeat(initial), joined);
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

/// Checks a param key and returns the value cut to MLflow's limit (MLflow's server truncates
/// long param and tag values rather than refusing them).
pub fn param(key: &str, value: &str, path: &str) -> Result<String> {
    entity_name_chars(key, &join(path, "key"))?;
    key_length(key, "Param key")?;
    Ok(truncate(value, MAX_PARAM_VAL_LENGTH))
}

fn truncate(value: &str, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((cut, _)) => value[..cut].to_string(),
        None => value.to_string(),
    }
}

/// Checks a run tag key and returns the value cut to MLflow's limit.
pub fn tag(key: &str, value: &str, path: &str) -> Result<String> {
    entity_name(key, &join(path, "key"))?;
    Ok(truncate(value, MAX_TAG_VAL_LENGTH))
}

pub fn metric(key: &str, timestamp: i64, path: &str) -> Result<()> {
    entity_name_chars(key, &join(path, "name"))?;
    key_length(key, "Metric name")?;
    if timestamp < 0 {
        return Err(invalid_value(
            &join(path, "timestamp"),
            &timestamp.to_string(),
            Some(&format!(
                "metric '{key}'. Timestamp must be a nonnegative long (64-bit integer) "
            )),
        ));
    }
    Ok(())
}

pub fn experiment_tag(key: &str, value: &str) -> Result<()> {
    entity_name(key, "key")?;
    if key.chars().count() > MAX_EXPERIMENT_TAG_KEY_LENGTH {
        return Err(exceeds_maximum_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH));
    }
    if value.chars().count() > MAX_EXPERIMENT_TAG_VAL_LENGTH {
        return Err(exceeds_maximum_length(
            "value",
            MAX_EXPERIMENT_TAG_VAL_LENGTH,
        ));
    }
    Ok(())
}

pub fn experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("Invalid experiment name: '{name}'")));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(exceeds_maximum_length("name", MAX_EXPERIMENT_NAME_LENGTH));
    }
    Ok(())
}

/// Experiment ids are integers on SQL stores.
pub fn experiment_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        Error::invalid(format!(
            "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
        ))
    })
}

/// `^[a-zA-Z0-9][\w\-]{0,255}$`
pub fn run_id(id: &str, path: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 256
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid_value(path, id, None))
    }
}

pub fn batch_limit(entity: &str, limit: usize, len: usize) -> Result<()> {
    if len > limit {
        return Err(Error::invalid(format!(
            "A batch logging request can contain at most {limit} {entity}. Got {len} {entity}. \
             Please split up {entity} across multiple requests and try again."
        )));
    }
    Ok(())
}

/// `run_ids` of metrics/get-history-bulk-interval: the first field MLflow's handler checks.
pub fn bulk_interval_run_ids(run_ids: &[String]) -> Result<()> {
    if run_ids.is_empty() {
        return Err(missing_value("run_ids"));
    }
    if run_ids.len() > MAX_RUNS_GET_METRIC_HISTORY_BULK {
        return Err(Error::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most \
             {MAX_RUNS_GET_METRIC_HISTORY_BULK} run_ids. Received {} run_ids.{}",
            run_ids.len(),
            ferroflow_core::http::SEE_DOCS
        )));
    }
    Ok(())
}

/// `max_results` of metrics/get-history-bulk-interval (default and limit 2,500 per run).
pub fn bulk_interval_max_results(max_results: Option<i64>) -> Result<i64> {
    let max_results = max_results.unwrap_or(MAX_RESULTS_PER_RUN);
    if !(1..=MAX_RESULTS_PER_RUN).contains(&max_results) {
        return Err(Error::invalid(format!(
            "max_results must be between 1 and {MAX_RESULTS_PER_RUN}.{}",
            ferroflow_core::http::SEE_DOCS
        )));
    }
    Ok(max_results)
}

/// A search's `max_results`, worded as MLflow's store words it.
pub fn max_results(value: i64, limit: i64) -> Result<()> {
    if value <= 0 {
        return Err(Error::invalid(format!(
            "Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    if value > limit {
        return Err(Error::invalid(format!(
            "Invalid value {value} for parameter 'max_results' supplied. It must be at most {limit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_follow_mlflow_rules() {
        assert!(entity_name("train/loss:epoch 1", "key").is_ok());
        assert!(entity_name("a/../b", "key").is_err());
        assert!(entity_name("/abs", "key").is_err());
        assert!(entity_name("bad$char", "key").is_err());
        assert!(entity_name(&"k".repeat(251), "key").is_err());
    }

    #[test]
    fn run_ids_must_match_mlflow_regex() {
        assert!(run_id("0123abcd", "run_id").is_ok());
        assert!(run_id("_x", "run_id").is_err());
        assert!(run_id("a b", "run_id").is_err());
    }
}
