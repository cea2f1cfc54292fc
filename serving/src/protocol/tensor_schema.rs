//! Schema enforcement for tensor-based signatures (`_enforce_tensor_schema`).

use ferroflow_core::Error;
use serde_json::Value;

use super::cast::{cast_array, frame_values, np_array, CastMode};
use super::{invalid_input, schema_error, Array, Column, ModelInput};
use crate::mlmodel::{Schema, TensorSpec};
use crate::tensor::ElementType;

/// `_enforce_tensor_spec`: rank, fixed dimensions and dtype.
fn enforce_tensor_spec(array: Array, spec: &TensorSpec, schema: &Schema) -> Result<Array, Error> {
    let actual = array.shape();
    let shape_error = || {
        schema_error(
            schema,
            format!(
                "Shape of input {} does not match expected shape {}.",
                crate::mlmodel::shape_repr(actual),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        )
    };
    if actual.len() != spec.shape.len() {
        return Err(shape_error());
    }
    for (&want, &got) in spec.shape.iter().zip(actual) {
        if want != -1 && want as usize != got {
            return Err(shape_error());
        }
    }
    match spec.dtype {
        Some(ty) if array.element_type() == Some(ty) => Ok(array),
        Some(ElementType::String) if matches!(array, Array::Object { .. }) => Ok(array),
        _ => Err(schema_error(
            schema,
            format!(
                "dtype of input {} does not match expected dtype {}",
                array.dtype_name(),
                spec.dtype_name
            ),
        )),
    }
}

/// `_reshape_and_cast_pandas_column_values`.
fn reshape_column(
    name: Option<&str>,
    column: &Column,
    spec: &TensorSpec,
    schema: &Schema,
) -> Result<Array, Error> {
    if spec.shape.first() != Some(&-1) || spec.shape[1..].contains(&-1) {
        return Err(schema_error(
            schema,
            format!(
                "For pandas dataframe input, the first dimension of shape must be a variable dimension and other dimensions must be fixed, but in model signature the shape of {} is {}.",
                name.map_or("the unnamed input".to_string(), |n| format!("input {n}")),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        ));
    }
    let ty = spec.dtype.ok_or_else(|| {
        schema_error(
            schema,
            format!("ferroflow does not support {} tensors", spec.dtype_name),
        )
    })?;
    let rows = column.data.len();
    let first = if rows > 0 {
        column.data.value_at(0)
    } else {
        Value::Null
    };
    let shape_usize = |n: usize| -> Vec<usize> {
        let mut s: Vec<usize> = spec.shape.iter().map(|&d| d.max(0) as usize).collect();
        s[0] = n;
        s
    };
    if !first.is_array() {
        if spec.shape == [-1] || spec.shape == [-1, 1] {
            let cast = cast_array(&column.data, ty, CastMode::Numpy)
                .map_err(|e| invalid_input(e.message))?;
            return enforce_tensor_spec(cast.reshaped(shape_usize(rows)), spec, schema);
        }
        return Err(schema_error(
            schema,
            format!(
                "The input pandas dataframe column '{}' contains scalar values, which requires the shape to be (-1,) or (-1, 1), but got tensor spec shape of {}.",
                name.unwrap_or("None"),
                crate::mlmodel::shape_repr(&spec.shape)
            ),
        ));
    }
    let reshape_error = || {
        schema_error(
            schema,
            format!(
                "The value in the Input DataFrame column '{}' could not be converted to the expected shape of: '{}'. Ensure that each of the input list elements are of uniform length and that the data can be coerced to the tensor type '{}'",
                name.unwrap_or("None"),
                crate::mlmodel::shape_repr(&spec.shape),
                spec.dtype_name
            ),
        )
    };
    let stacked =
        np_array(&Value::Array(column.data.values()), Some(ty)).map_err(|_| reshape_error())?;
    let per_row: usize = spec.shape[1..].iter().map(|&d| d as usize).product();
    if per_row == 0 || stacked.len() != rows * per_row {
        return Err(reshape_error());
    }
    Ok(stacked.reshaped(shape_usize(rows)))
}

/// `_enforce_tensor_schema`.
pub(super) fn enforce_tensors(input: ModelInput, schema: &Schema) -> Result<ModelInput, Error> {
    let Schema::Tensors(specs) = schema else {
        unreachable!("tensor schema")
    };
    if schema.has_input_names() {
        match input {
            ModelInput::Dict(items) => {
                let mut out = Vec::new();
                for spec in specs {
                    let name = spec.name.as_deref().expect("named");
                    let (_, array) = items.iter().find(|(n, _)| n == name).expect("checked missing");
                    out.push((name.to_string(), enforce_tensor_spec(array.clone(), spec, schema)?));
                }
                Ok(ModelInput::Dict(out))
            }
            ModelInput::Frame(frame) => {
                let mut out = Vec::new();
                for spec in specs {
                    let name = spec.name.as_deref().expect("named");
                    let column = frame.column(name).expect("checked missing");
                    out.push((name.to_string(), reshape_column(Some(name), column, spec, schema)?));
                }
                Ok(ModelInput::Dict(out))
            }
            other => Err(schema_error(
                schema,
                format!(
                    "This model contains a tensor-based model signature with input names, which suggests a dictionary input mapping input name to tensor, or a pandas DataFrame input containing columns mapping input name to flattened list value from tensor, but an input of type {} was found.",
                    input_type_repr(&other)
                ),
            )),
        }
    } else {
        let spec = &specs[0];
        match input {
            ModelInput::Frame(frame) => {
                if frame.rows == 0 || frame.columns.is_empty() {
                    return Err(schema_error(schema, "Input DataFrame is empty."));
                }
                if frame.columns.len() == 1 {
                    return Ok(ModelInput::Array(reshape_column(None, &frame.columns[0], spec, schema)?));
                }
                let n = frame.columns.len();
                if spec.shape != [-1, n as i64] {
                    return Err(schema_error(
                        schema,
                        format!(
                            "This model contains a model signature with an unnamed input. Since the input data is a pandas DataFrame containing multiple columns, the input shape must be of the structure (-1, number_of_dataframe_columns). Instead, the input DataFrame passed had {n} columns and an input shape of {} with all values within the DataFrame of scalar type. Please adjust the passed in DataFrame to match the expected structure",
                            crate::mlmodel::shape_repr(&spec.shape)
                        ),
                    ));
                }
                Ok(ModelInput::Array(enforce_tensor_spec(frame_values(&frame), spec, schema)?))
            }
            ModelInput::Array(array) => Ok(ModelInput::Array(enforce_tensor_spec(array, spec, schema)?)),
            other => Err(schema_error(
                schema,
                format!(
                    "This model contains a tensor-based model signature with no input names, which suggests a numpy array input or a pandas dataframe input with proper column values, but an input of type {} was found.",
                    input_type_repr(&other)
                ),
            )),
        }
    }
}

fn input_type_repr(input: &ModelInput) -> &'static str {
    match input {
        ModelInput::Frame(_) => "<class 'pandas.DataFrame'>",
        ModelInput::Dict(_) => "<class 'dict'>",
        ModelInput::Array(_) => "<class 'numpy.ndarray'>",
        ModelInput::Other(_) => "<class 'list'>",
    }
}

#[cfg(test)]
mod tests {
    use ferroflow_core::ErrorCode;

    use super::super::test_support::{err, tensor_schema};

    #[test]
    fn a_tensor_of_the_wrong_width_is_rejected_with_both_shapes() {
        let e = err(r#"{"inputs": [[1, 2, 3]]}"#, Some(&tensor_schema(&[-1, 4])));
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(
            e.message
                .ends_with("Error: Shape of input (1, 3) does not match expected shape (-1, 4)."),
            "{}",
            e.message
        );
    }
}
