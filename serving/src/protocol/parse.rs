//! Request decoding: the media type checks, the JSON request formats (`dataframe_split`,
//! `dataframe_records`, `instances`, `inputs`) and CSV, into a [`ScoringRequest`].

use ferroflow_core::Error;
use serde_json::{json, Value};

use super::cast::{cast_array, CastMode};
use super::json::{record_key_order, Ordered};
use super::{
    bad_request, invalid_input, required_input_format, Array, ColName, Column, Frame, Payload,
    ScoringError, ScoringRequest, FORMATS, SCORING_PROTOCOL_CHANGE_INFO,
};
use crate::mlmodel::{ColType, Schema};
use crate::pyrepr::{str_repr, type_repr, value_str};
use crate::tensor::{Tensor, TensorData};

/// The media type checks of MLflow's `invocations()`.
enum Body {
    Json,
    Csv,
}

fn check_content_type(content_type: Option<&str>) -> Result<Body, ScoringError> {
    let content_type = content_type.unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("");
    let mut charset = "utf-8".to_string();
    let mut unexpected = Vec::new();
    for pair in parts {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "charset" {
            charset = value.to_lowercase();
        } else {
            unexpected.push(key.to_string());
        }
    }
    if charset != "utf-8" {
        return Err(ScoringError::UnsupportedMediaType(
            "The scoring server only supports UTF-8".into(),
        ));
    }
    if !unexpected.is_empty() {
        return Err(ScoringError::UnsupportedMediaType(format!(
            "Unrecognized content type parameters: {}. {SCORING_PROTOCOL_CHANGE_INFO}",
            unexpected.join(", ")
        )));
    }
    match mime {
        "application/json" => Ok(Body::Json),
        "text/csv" => Ok(Body::Csv),
        _ => Err(ScoringError::UnsupportedMediaType(format!(
            "This predictor only supports the following content types: Types: ['text/csv', \
             'application/json', 'application/vnd.apache.parquet']. Got '{}'.{}",
            if content_type.is_empty() {
                "None"
            } else {
                content_type
            },
            if mime == "application/vnd.apache.parquet" {
                " ferroflow does not read Parquet bodies; send application/json or text/csv."
            } else {
                ""
            }
        ))),
    }
}

/// Decodes a scoring request body. The schema is used only by CSV (MLflow parses CSV with the
/// signature's column types).
pub fn parse_request(
    content_type: Option<&str>,
    body: &[u8],
    schema: Option<&Schema>,
) -> Result<ScoringRequest, ScoringError> {
    match check_content_type(content_type)? {
        Body::Csv => {
            let text = std::str::from_utf8(body).map_err(|e| {
                invalid_input(format!(
                    "Ensure that input is a valid UTF-8 encoded string. Error: '{e}'"
                ))
            })?;
            Ok(ScoringRequest {
                payload: Payload::Frame(parse_csv(text, schema)?),
                params: None,
            })
        }
        Body::Json => Ok(parse_json(body)?),
    }
}

fn parse_json(body: &[u8]) -> Result<ScoringRequest, Error> {
    let text = String::from_utf8_lossy(body);
    let parsed: Ordered = serde_json::from_slice(body).map_err(|e| {
        invalid_input(format!(
            "Ensure that input is a valid JSON formatted string. Error: '{e}'\nInput: \n{text}\n"
        ))
    })?;
    let entries = match parsed {
        Ordered::Object(entries) => entries,
        Ordered::Array(_) => {
            return Err(invalid_input(format!(
                "{}. Received a list.",
                required_input_format()
            )))
        }
        Ordered::Scalar(other) => {
            return Err(invalid_input(format!(
                "{}. Received unexpected input type '{}.",
                required_input_format(),
                type_repr(&other)
            )))
        }
    };
    let mut params = None;
    let mut data: Vec<(String, Ordered)> = Vec::new();
    for (k, v) in entries {
        if k == "params" {
            params = Some(v.into_value());
        } else if FORMATS.contains(&k.as_str()) {
            data.push((k, v));
        }
    }
    if data.len() != 1 {
        let keys: Vec<String> = data.iter().map(|(k, _)| str_repr(k)).collect();
        return Err(bad_request(format!(
            "{}. Received dictionary with input fields: [{}]. {SCORING_PROTOCOL_CHANGE_INFO}",
            required_input_format(),
            keys.join(", ")
        )));
    }
    let (key, value) = data.pop().expect("one key");
    let payload = match key.as_str() {
        "dataframe_split" => Payload::Frame(frame_from_split(&value.into_value())?),
        "dataframe_records" => {
            let order = record_key_order(&value);
            Payload::Frame(frame_from_records(&value.into_value(), Some(&order))?)
        }
        "instances" => Payload::Instances(value.into_value()),
        _ => Payload::Inputs(value.into_value()),
    };
    Ok(ScoringRequest { payload, params })
}

fn python_set_repr(keys: &[&String]) -> String {
    let items: Vec<String> = keys.iter().map(|k| str_repr(k)).collect();
    format!("{{{}}}", items.join(", "))
}

fn frame_from_split(value: &Value) -> Result<Frame, Error> {
    let obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(invalid_input(
                "Dataframe split format must be a dictionary. Got list.",
            ))
        }
        other => {
            return Err(invalid_input(format!(
                "Dataframe split format must be a dictionary. Got type {}.",
                type_repr(other)
            )))
        }
    };
    let keys: Vec<&String> = obj.keys().collect();
    if !obj.contains_key("data")
        || keys
            .iter()
            .any(|k| !["columns", "data", "index"].contains(&k.as_str()))
    {
        return Err(invalid_input(format!(
            "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. Got {}.'",
            python_set_repr(&keys)
        )));
    }
    let invalid = |msg: String| {
        invalid_input(format!(
            "Provided dataframe_split field is not a valid dataframe representation in 'split' format. Error: '{msg}'"
        ))
    };
    let rows: Vec<Vec<Value>> = match &obj["data"] {
        Value::Array(rows) => rows
            .iter()
            .map(|r| match r {
                Value::Array(cells) => cells.clone(),
                scalar => vec![scalar.clone()],
            })
            .collect(),
        Value::Null => Vec::new(),
        _ => return Err(invalid("DataFrame constructor not properly called!".into())),
    };
    let width = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != width) {
        let got = rows.iter().map(Vec::len).max().unwrap_or(0);
        return Err(invalid(format!(
            "{width} columns passed, passed data had {got} columns"
        )));
    }
    let names: Vec<ColName> = match obj.get("columns") {
        None | Some(Value::Null) => (0..width).map(ColName::Index).collect(),
        Some(Value::Array(cols)) => cols.iter().map(|c| ColName::Named(value_str(c))).collect(),
        Some(_) => return Err(invalid("columns must be a list".into())),
    };
    if !rows.is_empty() && names.len() != width {
        return Err(invalid(format!(
            "{} columns passed, passed data had {width} columns",
            names.len()
        )));
    }
    let n = rows.len();
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(j, name)| Column {
            name,
            data: infer_column(rows.iter().map(|r| r[j].clone()).collect()),
        })
        .collect();
    Ok(Frame { columns, rows: n })
}

pub(super) fn frame_from_records(
    value: &Value,
    key_order: Option<&[String]>,
) -> Result<Frame, Error> {
    let records = match value {
        Value::Array(r) => r,
        Value::Object(_) => {
            return Err(invalid_input(
                "Dataframe records format must be a list of records. Got dictionary.",
            ))
        }
        other => {
            return Err(invalid_input(format!(
                "Dataframe records format must be a list of records. Got type {}.",
                type_repr(other)
            )))
        }
    };
    if records.iter().all(Value::is_object) {
        let mut names: Vec<String> = key_order.map(<[String]>::to_vec).unwrap_or_default();
        for r in records {
            for k in r.as_object().expect("object").keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        let columns = names
            .into_iter()
            .map(|name| Column {
                data: infer_column(
                    records
                        .iter()
                        .map(|r| r.get(&name).cloned().unwrap_or(Value::Null))
                        .collect(),
                ),
                name: ColName::Named(name),
            })
            .collect();
        return Ok(Frame {
            columns,
            rows: records.len(),
        });
    }
    frame_from_split(&json!({ "data": value }))
}

/// pandas' dtype inference for one column of JSON scalars.
pub(super) fn infer_column(values: Vec<Value>) -> Array {
    let n = values.len();
    let shape = vec![n];
    if n == 0 {
        return Array::Object {
            shape,
            data: values,
        };
    }
    if values.iter().all(Value::is_boolean) {
        let v = values.iter().map(|x| x.as_bool().expect("bool")).collect();
        return Array::Typed(Tensor::new(shape, TensorData::Bool(v)));
    }
    if values.iter().all(|x| x.as_i64().is_some()) {
        let v = values.iter().map(|x| x.as_i64().expect("i64")).collect();
        return Array::Typed(Tensor::new(shape, TensorData::Int64(v)));
    }
    if values.iter().all(|x| x.is_number() || x.is_null()) && values.iter().any(Value::is_number) {
        let v = values
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect();
        return Array::Typed(Tensor::new(shape, TensorData::Double(v)));
    }
    if values.iter().all(Value::is_string) {
        let v = values
            .iter()
            .map(|x| x.as_str().expect("str").to_string())
            .collect();
        return Array::Typed(Tensor::new(shape, TensorData::String(v)));
    }
    Array::Object {
        shape,
        data: values,
    }
}

/// pandas `read_csv` inference for one cell.
fn csv_cell(cell: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = cell.parse::<f64>() {
        // "NaN"/"inf" cells: missing values to us (JSON has no NaN).
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    match cell {
        "True" | "TRUE" | "true" => Value::Bool(true),
        "False" | "FALSE" | "false" => Value::Bool(false),
        _ => Value::String(cell.to_string()),
    }
}

fn parse_csv(text: &str, schema: Option<&Schema>) -> Result<Frame, Error> {
    let parse_error = |msg: String| {
        bad_request(format!(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{msg}'"
        ))
    };
    if matches!(schema, Some(Schema::Tensors(_))) {
        // MLflow asks a tensor schema for pandas types, which raises.
        return Err(parse_error(
            "TensorSpec only supports numpy types, use numpy_types() instead".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| parse_error(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(parse_error("No columns to parse from file".into()));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| parse_error(e.to_string()))?;
        for (j, cell) in record.iter().enumerate() {
            cells[j].push(cell.to_string());
        }
        rows += 1;
    }
    let mut columns = Vec::with_capacity(headers.len());
    for (name, raw) in headers.into_iter().zip(cells) {
        let declared = match schema {
            Some(Schema::Columns(cols)) => cols
                .iter()
                .find(|c| c.name.as_deref() == Some(name.as_str()))
                .map(|c| c.ty),
            _ => None,
        };
        let data = match declared {
            // `dtype=object` keeps the text as written.
            Some(ColType::String) => infer_column(raw.into_iter().map(Value::String).collect()),
            Some(ty) => {
                let values: Vec<Value> = raw.iter().map(|c| csv_cell(c)).collect();
                match ty.element_type() {
                    Some(et) => cast_array(&infer_column(values), et, CastMode::Pandas)
                        .map_err(|e| parse_error(e.message))?,
                    None => infer_column(values),
                }
            }
            None => infer_column(raw.iter().map(|c| csv_cell(c)).collect()),
        };
        columns.push(Column {
            name: ColName::Named(name),
            data,
        });
    }
    Ok(Frame { columns, rows })
}

#[cfg(test)]
mod tests {
    use actix_web::{http::StatusCode, ResponseError};
    use ferroflow_core::ErrorCode;

    use super::super::test_support::{err, feeds, graph_x4, iris_columns, tensor_schema};
    use super::*;
    use crate::protocol::{build_feeds, enforce};

    #[test]
    fn dataframe_records_and_csv_parse_to_the_same_feed() {
        let s = iris_columns();
        let records = feeds(
            r#"{"dataframe_records": [{"a": 1.5, "b": 2, "c": 3, "d": 4}, {"a": 5, "b": 6, "c": 7, "d": 8}]}"#,
            Some(&s),
        )
        .unwrap();
        let req =
            parse_request(Some("text/csv"), b"a,b,c,d\n1.5,2,3,4\n5,6,7,8\n", Some(&s)).unwrap();
        let csv = build_feeds(enforce(&req, Some(&s)).unwrap(), &graph_x4()).unwrap();
        assert_eq!(records, csv);
        assert_eq!(records.rows, 2);
    }

    #[test]
    fn more_than_one_or_none_of_the_input_keys_is_a_bad_request() {
        let e = err(r#"{"inputs": [], "instances": []}"#, None);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(
            e.message
                .contains("Received dictionary with input fields: ['inputs', 'instances']."),
            "{}",
            e.message
        );
        let e = err(r#"{"data": []}"#, None);
        assert!(
            e.message
                .contains("Received dictionary with input fields: []."),
            "{}",
            e.message
        );
    }

    #[test]
    fn malformed_json_and_lists_are_bad_requests() {
        let e = err("{", None);
        assert!(e
            .message
            .starts_with("Invalid input. Ensure that input is a valid JSON formatted string."));
        let e = err("[[1, 2]]", None);
        assert!(e.message.ends_with("Received a list."), "{}", e.message);
    }

    #[test]
    fn split_and_records_shape_errors_match_mlflow() {
        assert_eq!(
            err(r#"{"dataframe_split": [[1]]}"#, None).message,
            "Invalid input. Dataframe split format must be a dictionary. Got list."
        );
        assert_eq!(
            err(r#"{"dataframe_records": {"a": 1}}"#, None).message,
            "Invalid input. Dataframe records format must be a list of records. Got dictionary."
        );
    }

    #[test]
    fn unsupported_content_types_are_415s() {
        for ct in [
            Some("text/plain"),
            None,
            Some("application/json; foo=bar"),
            Some("application/json; charset=latin-1"),
        ] {
            let r = parse_request(ct, b"{}", None);
            assert!(
                matches!(r, Err(ScoringError::UnsupportedMediaType(_))),
                "{ct:?}"
            );
        }
        let e = parse_request(Some("text/plain"), b"", None).unwrap_err();
        assert_eq!(e.status_code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(e.to_string().ends_with("Got 'text/plain'."));
        assert!(parse_request(
            Some("application/json; charset=UTF-8"),
            b"{\"inputs\": 1}",
            None
        )
        .is_ok());
    }

    #[test]
    fn csv_against_a_tensor_signature_fails_as_in_mlflow() {
        let e =
            parse_request(Some("text/csv"), b"a\n1\n", Some(&tensor_schema(&[-1, 1]))).unwrap_err();
        assert!(e
            .to_string()
            .contains("TensorSpec only supports numpy types"));
    }
}
