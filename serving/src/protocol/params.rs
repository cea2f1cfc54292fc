//! Params enforcement (`_enforce_params_schema`).

use ferroflow_core::Error;
use serde_json::{json, Value};

use super::payload::scalar_like;
use crate::mlmodel::{ColType, ParamSpec};
use crate::pyrepr::{float_repr, str_repr, type_repr, value_str};

/// `_enforce_params_schema`: with no params schema, params are ignored (MLflow logs a warning);
/// with one, each known param must convert to its type. The onnx flavor then ignores them.
pub fn enforce_params(params: Option<&Value>, specs: Option<&[ParamSpec]>) -> Result<(), Error> {
    let Some(params) = params else { return Ok(()) };
    let Some(specs) = specs else {
        if !matches!(params, Value::Null) && params != &json!({}) {
            tracing::warn!(
                "`params` can only be specified at inference time if the model signature defines a params schema; ignoring them"
            );
        }
        return Ok(());
    };
    let wrap = |m: String| Error::invalid(format!("Failed to predict data. \nError: {m}"));
    let Value::Object(map) = params else {
        let ty = type_repr(params)
            .trim_start_matches("<class '")
            .trim_end_matches("'>");
        return Err(wrap(format!(
            "Parameters must be a dictionary. Got type '{ty}'."
        )));
    };
    let mut invalid = Vec::new();
    for spec in specs {
        let Some(value) = map.get(&spec.name) else {
            continue;
        };
        if let Err(e) = check_param(value, spec) {
            let spec_repr = format!(
                "{}: {} (default: {})",
                str_repr(&spec.name),
                spec.ty.name(),
                match &spec.default {
                    Value::Number(n) if n.is_f64() => float_repr(n.as_f64().unwrap_or(f64::NAN)),
                    other => value_str(other),
                }
            );
            invalid.push(format!(
                "({}, {})",
                str_repr(&spec.name),
                str_repr(&format!(
                    "Failed to validate type and shape for {spec_repr}, error: {e}"
                ))
            ));
        }
    }
    if !invalid.is_empty() {
        return Err(wrap(format!(
            "Invalid parameters found: {{{}}}",
            invalid.join(", ")
        )));
    }
    Ok(())
}

fn check_param(value: &Value, spec: &ParamSpec) -> Result<(), String> {
    if value.is_null() || spec.shape.is_some() {
        return Ok(());
    }
    let dtype = format!("DataType.{}", spec.ty.name());
    if !scalar_like(value) {
        return Err(format!(
            "Value must be a scalar for type `{dtype}`, got `{}`",
            value_str(value)
        ));
    }
    let ok = match spec.ty {
        ColType::String => value.is_string(),
        ColType::Boolean => value.is_boolean(),
        ColType::Integer | ColType::Long => value.is_i64() || value.is_u64(),
        ColType::Float | ColType::Double => value.is_number(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Can not safely convert `{}` to `{dtype}` for value `{}`",
            type_repr(value),
            value_str(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlmodel::MlModel;

    #[test]
    fn params_are_ignored_without_schema_and_checked_with_one() {
        assert!(enforce_params(Some(&json!({"x": 1})), None).is_ok());
        let m = MlModel::parse(
            "flavors: {onnx: {}}\nsignature:\n  params: '[{\"name\": \"threshold\", \"type\": \"double\", \"default\": 0.5, \"shape\": null}]'\n",
        )
        .unwrap();
        assert!(enforce_params(Some(&json!({"threshold": 1})), m.params()).is_ok());
        let e = enforce_params(Some(&json!({"threshold": "high"})), m.params()).unwrap_err();
        assert!(e.message.ends_with(
            "Invalid parameters found: {('threshold', \"Failed to validate type and shape for 'threshold': double (default: 0.5), error: Can not safely convert `<class 'str'>` to `DataType.double` for value `high`\")}"
        ), "{}", e.message);
        let e = enforce_params(Some(&json!([1])), m.params()).unwrap_err();
        assert!(e
            .message
            .ends_with("Parameters must be a dictionary. Got type 'list'."));
    }
}
