//! Schema enforcement (`PyFuncModel.predict`'s input handling): the entry point and the
//! column-based signature.

use ferroflow_core::Error;
use serde_json::Value;

use super::cast::{array_to_json, cast_array, cast_values, CastMode};
use super::payload::{cast_schema_type, parse_instances};
use super::tensor_schema::enforce_tensors;
use super::{
    invalid_input, schema_error, Array, ColName, Column, Frame, ModelInput, Payload, ScoringRequest,
};
use crate::mlmodel::Schema;
use crate::tensor::{ElementType, Tensor};

/// `PyFuncModel.predict`'s input handling: the signature's casts and checks.
pub fn enforce(request: &ScoringRequest, schema: Option<&Schema>) -> Result<ModelInput, Error> {
    let input = match &request.payload {
        Payload::Frame(frame) => match schema {
            Some(s) => ModelInput::Frame(cast_frame(frame.clone(), s)?),
            None => ModelInput::Frame(frame.clone()),
        },
        Payload::Instances(v) => parse_instances(v, schema)?,
        Payload::Inputs(v) => cast_schema_type(v, schema)?,
    };
    let Some(schema) = schema else {
        return Ok(input);
    };
    match schema {
        Schema::Columns(_) => {
            let frame = match input {
                ModelInput::Frame(f) => f,
                ModelInput::Dict(items) => dict_to_frame(items, schema)?,
                ModelInput::Array(a) => array_to_frame(a),
                ModelInput::Other(_) => unreachable!("records become frames under a column schema"),
            };
            Ok(ModelInput::Frame(enforce_columns(frame, schema)?))
        }
        Schema::Tensors(specs) => {
            let input = if schema.has_input_names() {
                let input = match input {
                    ModelInput::Array(a) if specs.len() == 1 => {
                        ModelInput::Dict(vec![(specs[0].name.clone().expect("named"), a)])
                    }
                    other => other,
                };
                let actual: Vec<ColName> = match &input {
                    ModelInput::Frame(f) => f.columns.iter().map(|c| c.name.clone()).collect(),
                    ModelInput::Dict(items) => items
                        .iter()
                        .map(|(n, _)| ColName::Named(n.clone()))
                        .collect(),
                    _ => Vec::new(),
                };
                check_missing(schema, &actual)?;
                input
            } else {
                input
            };
            enforce_tensors(input, schema)
        }
    }
}

/// `cast_df_types_according_to_schema`.
fn cast_frame(frame: Frame, schema: &Schema) -> Result<Frame, Error> {
    let mut frame = frame;
    let targets: Vec<(ColName, Option<ElementType>, String)> = match schema {
        Schema::Columns(cols) if schema.has_input_names() => cols
            .iter()
            .map(|c| {
                (
                    ColName::Named(c.name.clone().expect("named")),
                    c.ty.element_type(),
                    c.ty.element_type()
                        .map_or("object", |t| t.numpy_name())
                        .to_string(),
                )
            })
            .collect(),
        Schema::Tensors(ts) if schema.has_input_names() => ts
            .iter()
            .map(|t| {
                (
                    ColName::Named(t.name.clone().expect("named")),
                    t.dtype,
                    t.dtype_name.clone(),
                )
            })
            .collect(),
        Schema::Tensors(ts) if ts.len() == 1 => frame
            .columns
            .iter()
            .map(|c| (c.name.clone(), ts[0].dtype, ts[0].dtype_name.clone()))
            .collect(),
        Schema::Columns(cols) => frame
            .columns
            .iter()
            .zip(cols)
            .map(|(c, spec)| {
                (
                    c.name.clone(),
                    spec.ty.element_type(),
                    spec.ty
                        .element_type()
                        .map_or("object", |t| t.numpy_name())
                        .to_string(),
                )
            })
            .collect(),
        Schema::Tensors(ts) => frame
            .columns
            .iter()
            .zip(ts)
            .map(|(c, spec)| (c.name.clone(), spec.dtype, spec.dtype_name.clone()))
            .collect(),
    };
    let is_tensor = matches!(schema, Schema::Tensors(_));
    for (name, ty, ty_name) in targets {
        let Some(col) = frame.columns.iter_mut().find(|c| c.name == name) else {
            continue;
        };
        let Some(ty) = ty else { continue };
        if is_tensor && frame.rows > 0 && col.data.value_at(0).is_array() {
            // List cells: reshaped and cast by the tensor enforcement below.
            continue;
        }
        if ty == ElementType::String && matches!(col.data, Array::Object { .. }) {
            continue;
        }
        col.data = cast_array(&col.data, ty, CastMode::Pandas).map_err(|e| {
            invalid_input(format!(
                "Data is not compatible with model signature. Failed to convert column {name} to type '{ty_name}'. Error: '{}'",
                e.repr()
            ))
        })?;
    }
    Ok(frame)
}

/// Column names as a Python list repr.
fn names_repr<'a>(names: impl IntoIterator<Item = &'a ColName>) -> String {
    format!(
        "[{}]",
        names
            .into_iter()
            .map(ColName::repr)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `_enforce_schema`'s check that every required input is present.
fn check_missing(schema: &Schema, actual: &[ColName]) -> Result<(), Error> {
    let (required, optional): (Vec<String>, Vec<String>) = match schema {
        Schema::Columns(cols) => (
            cols.iter()
                .filter(|c| c.required)
                .filter_map(|c| c.name.clone())
                .collect(),
            cols.iter()
                .filter(|c| !c.required)
                .filter_map(|c| c.name.clone())
                .collect(),
        ),
        Schema::Tensors(ts) => (
            ts.iter().filter_map(|t| t.name.clone()).collect(),
            Vec::new(),
        ),
    };
    let missing: Vec<ColName> = required
        .iter()
        .filter(|r| !actual.iter().any(|a| a.matches(r)))
        .map(|r| ColName::Named(r.clone()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let extra: Vec<&ColName> = actual
        .iter()
        .filter(|a| !required.iter().chain(&optional).any(|n| a.matches(n)))
        .collect();
    let mut message = format!("Model is missing inputs {}.", names_repr(&missing));
    if !extra.is_empty() {
        message += &format!(" Note that there were extra inputs: {}.", names_repr(extra));
    }
    Err(schema_error(schema, message))
}

/// A dict of arrays or records as a DataFrame, for a column signature (`_enforce_schema`).
fn dict_to_frame(items: Vec<(String, Array)>, schema: &Schema) -> Result<Frame, Error> {
    let all_scalar = items.iter().all(|(_, a)| a.shape().is_empty());
    let mut columns = Vec::new();
    let mut rows = None;
    for (name, array) in items {
        let array = if all_scalar {
            array.reshaped(vec![1])
        } else if array.shape().len() > 1 {
            // A 2-D value becomes a column of lists.
            let data = match array_to_json(&array) {
                Value::Array(rows) => rows,
                other => vec![other],
            };
            Array::Object {
                shape: vec![data.len()],
                data,
            }
        } else {
            array
        };
        let n = array.shape().first().copied().unwrap_or(1);
        if rows.is_some_and(|r| r != n) {
            return Err(schema_error(
                schema,
                "This model contains a column-based signature, which suggests a DataFrame input. There was an error casting the input data to a DataFrame: All arrays must be of the same length",
            ));
        }
        rows = Some(n);
        columns.push(Column {
            name: ColName::Named(name),
            data: array,
        });
    }
    Ok(Frame {
        columns,
        rows: rows.unwrap_or(0),
    })
}

fn array_to_frame(array: Array) -> Frame {
    let shape = array.shape().to_vec();
    match shape.as_slice() {
        [] | [_] => {
            let array = if shape.is_empty() {
                array.reshaped(vec![1])
            } else {
                array
            };
            Frame {
                rows: array.shape()[0],
                columns: vec![Column {
                    name: ColName::Index(0),
                    data: array,
                }],
            }
        }
        [rows, cols, ..] => {
            let row_len: usize = shape[1..].iter().product();
            let inner = shape[2..].to_vec();
            let values = array.values();
            let columns = (0..*cols)
                .map(|j| {
                    let cell_len: usize = inner.iter().product();
                    let data: Vec<Value> = (0..*rows)
                        .flat_map(|i| {
                            let start = i * row_len + j * cell_len;
                            values[start..start + cell_len].to_vec()
                        })
                        .collect();
                    let col = if inner.is_empty() {
                        match &array {
                            Array::Typed(t) => Array::Typed(Tensor {
                                shape: vec![*rows],
                                data: cast_values(&data, t.data.element_type(), CastMode::Numpy)
                                    .expect("same type"),
                            }),
                            Array::Object { .. } => Array::Object {
                                shape: vec![*rows],
                                data,
                            },
                        }
                    } else {
                        Array::Object {
                            shape: vec![*rows],
                            data: data
                                .chunks(cell_len)
                                .map(|c| Value::Array(c.to_vec()))
                                .collect(),
                        }
                    };
                    Column {
                        name: ColName::Index(j),
                        data: col,
                    }
                })
                .collect();
            Frame {
                columns,
                rows: *rows,
            }
        }
    }
}

/// `_enforce_named_col_schema` / `_enforce_unnamed_col_schema`: the signature's columns, in
/// signature order, with extra columns dropped.
fn enforce_columns(frame: Frame, schema: &Schema) -> Result<Frame, Error> {
    let Schema::Columns(cols) = schema else {
        unreachable!("column schema")
    };
    let actual: Vec<ColName> = frame.columns.iter().map(|c| c.name.clone()).collect();
    if schema.has_input_names() {
        check_missing(schema, &actual)?;
    } else if frame.columns.len() < cols.len() {
        return Err(schema_error(
            schema,
            format!(
                "Model inference is missing inputs. The model signature declares {} inputs  but the provided value only has {} inputs. Note: the inputs were not named in the signature so we can only verify their count.",
                cols.len(),
                frame.columns.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, spec) in cols.iter().enumerate() {
        let column = match &spec.name {
            Some(name) => match frame.column(name) {
                Some(c) => c.clone(),
                None => continue,
            },
            None => frame.columns[i].clone(),
        };
        let data = match spec.ty.element_type() {
            None => {
                return Err(schema_error(
                    schema,
                    format!(
                        "ferroflow does not support {} columns for ONNX models (column {})",
                        spec.ty.name(),
                        column.name
                    ),
                ))
            }
            Some(ty) => enforce_datatype(&column, ty, schema)?,
        };
        out.push(Column {
            name: column.name,
            data,
        });
    }
    Ok(Frame {
        columns: out,
        rows: frame.rows,
    })
}

/// `_enforce_mlflow_datatype`: allowed upcasts only.
fn enforce_datatype(column: &Column, ty: ElementType, schema: &Schema) -> Result<Array, Error> {
    let actual = column.data.element_type();
    if actual == Some(ty) {
        return Ok(column.data.clone());
    }
    use ElementType::*;
    let upcast = matches!(
        (actual, ty),
        (Some(Float), Double) | (Some(Int32), Int64) | (Some(Int32 | Int64), Double)
    ) || (ty == String && matches!(column.data, Array::Object { .. }))
        || (ty == Bool && matches!(column.data, Array::Object { .. }));
    let zero_one = actual == Some(Int64)
        && matches!(ty, Float | Double)
        && column
            .data
            .values()
            .iter()
            .all(|v| v.as_i64().is_some_and(|i| i == 0 || i == 1));
    if upcast || zero_one {
        return cast_array(&column.data, ty, CastMode::Numpy)
            .map_err(|e| schema_error(schema, e.message));
    }
    Err(schema_error(
        schema,
        format!(
            "Incompatible input types for column {}. Can not safely convert {} to {}.",
            column.name,
            column.data.dtype_name(),
            ty.numpy_name()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use ferroflow_core::ErrorCode;

    use super::super::test_support::{err, iris_columns};

    #[test]
    fn a_missing_required_column_is_named() {
        let e = err(
            r#"{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}"#,
            Some(&iris_columns()),
        );
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(
            e.message.ends_with("Error: Model is missing inputs ['d']."),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_uncoercible_value_names_the_column() {
        let e = err(
            r#"{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, "abc", 3, 4]]}}"#,
            Some(&iris_columns()),
        );
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(
            e.message,
            "Invalid input. Data is not compatible with model signature. Failed to convert column b to type 'float64'. Error: 'ValueError(\"could not convert string to float: 'abc'\")'"
        );
    }
}
