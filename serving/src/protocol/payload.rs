//! The `inputs` and `instances` payloads as MLflow converts them before schema enforcement
//! (`_cast_schema_type`, `parse_instances_data`).

use ferroflow_core::Error;
use serde_json::{json, Map, Value};

use super::cast::{array_to_json, np_array};
use super::parse::frame_from_records;
use super::{invalid_input, Array, ModelInput};
use crate::mlmodel::Schema;
use crate::pyrepr::type_repr;
use crate::tensor::ElementType;

pub(super) fn scalar_like(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// `_cast_schema_type` (the `inputs` key and non-record `instances`).
pub(super) fn cast_schema_type(data: &Value, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let named_types = named_types(schema);
    let mut data = data.clone();
    if let Some(schema) = schema {
        if named_types.len() == 1
            && matches!(&data, Value::Array(items) if !items.iter().any(Value::is_object))
        {
            data = json!({ named_types[0].0.clone(): data });
        } else if !(schema.has_input_names() || data.is_array() || scalar_like(&data)) {
            return Err(invalid_input(format!(
                "Failed to parse input data. This model contains an un-named  model signature which expects a single n-dimensional array or a single value as input, however, an input of type {} was found.",
                type_repr(&data)
            )));
        }
    }
    let convert = |v: &Value, ty: Option<ElementType>| -> Result<Array, Error> {
        np_array(v, ty).map_err(|e| invalid_input(e.message))
    };
    match &data {
        Value::Object(map) => {
            let mut out = Vec::new();
            for (k, v) in map {
                let ty = named_types
                    .iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, t)| *t);
                out.push((k.clone(), convert(v, ty)?));
            }
            Ok(ModelInput::Dict(order_like_schema(out, schema)))
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            // Records: a DataFrame once the column signature sees it; otherwise the wrapper
            // rejects a list.
            let mut records = Vec::new();
            for item in items {
                let mut rec = Map::new();
                for (k, v) in item.as_object().expect("object") {
                    let ty = named_types
                        .iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, t)| *t);
                    let converted = convert(v, ty)?;
                    rec.insert(k.clone(), converted.value_at(0).clone());
                }
                records.push(Value::Object(rec));
            }
            match schema {
                Some(Schema::Columns(_)) => Ok(ModelInput::Frame(frame_from_records(
                    &Value::Array(records),
                    None,
                )?)),
                _ => Ok(ModelInput::Other("list")),
            }
        }
        other => {
            let first_type = first_input_type(schema);
            Ok(ModelInput::Array(convert(other, first_type)?))
        }
    }
}

/// `(name, element type)` of every named input in the schema.
fn named_types(schema: Option<&Schema>) -> Vec<(String, Option<ElementType>)> {
    match schema {
        Some(s) if s.has_input_names() => match s {
            Schema::Columns(cols) => cols
                .iter()
                .map(|c| (c.name.clone().expect("named"), c.ty.element_type()))
                .collect(),
            Schema::Tensors(ts) => ts
                .iter()
                .map(|t| (t.name.clone().expect("named"), t.dtype))
                .collect(),
        },
        _ => Vec::new(),
    }
}

fn first_input_type(schema: Option<&Schema>) -> Option<ElementType> {
    match schema? {
        Schema::Columns(cols) => cols.first()?.ty.element_type(),
        Schema::Tensors(ts) => ts.first()?.dtype,
    }
}

/// Python dicts keep body order; serde_json's map sorts. Put schema names first, in schema order.
fn order_like_schema(
    mut items: Vec<(String, Array)>,
    schema: Option<&Schema>,
) -> Vec<(String, Array)> {
    let names: Vec<String> = named_types(schema).into_iter().map(|(n, _)| n).collect();
    items.sort_by_key(|(k, _)| names.iter().position(|n| n == k).unwrap_or(usize::MAX));
    items
}

/// `parse_instances_data`.
pub(super) fn parse_instances(data: &Value, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let records = match data {
        Value::Array(items) if items.first().is_some_and(Value::is_object) => items,
        _ => return cast_schema_type(data, schema),
    };
    let named_types = named_types(schema);
    let mut columns: Vec<(String, Vec<Value>)> = Vec::new();
    for item in records {
        let Value::Object(map) = item else {
            return Err(invalid_input(format!(
                "Ensure that the input is a valid JSON-formatted string.\nError: AttributeError(\"'{}' object has no attribute 'items'\")",
                type_repr(item).trim_start_matches("<class '").trim_end_matches("'>")
            )));
        };
        for (k, v) in map {
            let ty = named_types
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, t)| *t);
            // Each value converted alone, then the column stacked (np.array of the list).
            let converted = np_array(v, ty).map_err(|e| invalid_input(e.message))?;
            let as_json = array_to_json(&converted);
            match columns.iter_mut().find(|(n, _)| n == k) {
                Some((_, col)) => col.push(as_json),
                None => columns.push((k.clone(), vec![as_json])),
            }
        }
    }
    let required: Vec<String> = match schema {
        Some(Schema::Columns(cols)) if schema.is_some_and(Schema::has_input_names) => cols
            .iter()
            .filter(|c| c.required)
            .filter_map(|c| c.name.clone())
            .collect(),
        Some(Schema::Tensors(ts)) if schema.is_some_and(Schema::has_input_names) => {
            ts.iter().filter_map(|t| t.name.clone()).collect()
        }
        _ => columns.iter().map(|(n, _)| n.clone()).collect(),
    };
    let lens: Vec<usize> = columns
        .iter()
        .filter(|(n, _)| required.contains(n))
        .map(|(_, c)| c.len())
        .collect();
    if lens.windows(2).any(|w| w[0] != w[1]) {
        return Err(invalid_input(
            "The length of values for each input/column name are not the same",
        ));
    }
    let mut out = Vec::new();
    for (name, values) in columns {
        let ty = named_types
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| *t);
        let array = np_array(&Value::Array(values), ty).map_err(|e| invalid_input(e.message))?;
        out.push((name, array));
    }
    Ok(ModelInput::Dict(order_like_schema(out, schema)))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{feeds, tensor_schema};
    use crate::protocol::OutputShape;
    use crate::tensor::TensorData;

    #[test]
    fn instances_and_inputs_against_a_tensor_signature_give_a_dict() {
        let s = tensor_schema(&[-1, 4]);
        for body in [
            r#"{"instances": [[1, 2, 3, 4]]}"#,
            r#"{"inputs": [[1, 2, 3, 4]]}"#,
        ] {
            let f = feeds(body, Some(&s)).unwrap();
            assert_eq!(f.shape, OutputShape::Dict);
            assert_eq!(
                f.tensors[0].data,
                TensorData::Float(vec![1.0, 2.0, 3.0, 4.0])
            );
        }
    }
}
