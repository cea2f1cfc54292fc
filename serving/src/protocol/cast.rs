//! numpy / pandas conversions: casting JSON values to element types, `np.array`,
//! `ndarray.tolist()` and `DataFrame.values`.

use serde_json::Value;

use super::parse::infer_column;
use super::{Array, Frame};
use crate::pyrepr::{str_repr, value_str, PyExc};
use crate::tensor::{ElementType, Tensor, TensorData};

/// numpy's `np.array(x, dtype)` and pandas' `Series.astype(dtype)` differ on a few edge cases.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum CastMode {
    Numpy,
    Pandas,
}

fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().replace('_', "");
    t.parse::<f64>().ok()
}

fn cast_scalar_f64(v: &Value) -> Result<f64, PyExc> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Null => Ok(f64::NAN),
        Value::String(s) => parse_py_float(s).ok_or_else(|| {
            PyExc::value_error(format!(
                "could not convert string to float: {}",
                str_repr(s)
            ))
        }),
        Value::Array(_) => Err(PyExc::value_error(
            "setting an array element with a sequence.",
        )),
        Value::Object(_) => Err(PyExc::type_error(
            "float() argument must be a string or a real number, not 'dict'",
        )),
    }
}

fn cast_scalar_i64(v: &Value, mode: CastMode) -> Result<i64, PyExc> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() {
                return Err(nan_to_int(mode));
            }
            Ok(f.trunc() as i64)
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => match mode {
            CastMode::Pandas => Err(nan_to_int(mode)),
            CastMode::Numpy => Err(PyExc::type_error(
                "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'",
            )),
        },
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().map_err(|_| {
            PyExc::value_error(format!(
                "invalid literal for int() with base 10: {}",
                str_repr(s)
            ))
        }),
        Value::Array(_) => Err(PyExc::value_error(
            "setting an array element with a sequence.",
        )),
        Value::Object(_) => Err(PyExc::type_error(
            "int() argument must be a string, a bytes-like object or a real number, not 'dict'",
        )),
    }
}

fn nan_to_int(mode: CastMode) -> PyExc {
    match mode {
        CastMode::Pandas => PyExc {
            class: "IntCastingNaNError",
            message: "Cannot convert non-finite values (NA or inf) to integer".into(),
        },
        CastMode::Numpy => PyExc::value_error("cannot convert float NaN to integer"),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Casts JSON scalars to one element type.
pub(super) fn cast_values(
    values: &[Value],
    ty: ElementType,
    mode: CastMode,
) -> Result<TensorData, PyExc> {
    Ok(match ty {
        ElementType::Float => TensorData::Float(
            values
                .iter()
                .map(|v| cast_scalar_f64(v).map(|f| f as f32))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Double => TensorData::Double(
            values
                .iter()
                .map(cast_scalar_f64)
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int64 => TensorData::Int64(
            values
                .iter()
                .map(|v| cast_scalar_i64(v, mode))
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Int32 => TensorData::Int32(
            values
                .iter()
                .map(|v| {
                    let i = cast_scalar_i64(v, mode)?;
                    i32::try_from(i).map_err(|_| PyExc {
                        class: "OverflowError",
                        message: format!("Python integer {i} out of bounds for int32"),
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        ElementType::Bool => TensorData::Bool(values.iter().map(truthy).collect()),
        ElementType::String => TensorData::String(values.iter().map(value_str).collect()),
    })
}

pub(super) fn cast_array(array: &Array, ty: ElementType, mode: CastMode) -> Result<Array, PyExc> {
    if array.element_type() == Some(ty) {
        return Ok(array.clone());
    }
    let data = cast_values(&array.values(), ty, mode)?;
    Ok(Array::Typed(Tensor {
        shape: array.shape().to_vec(),
        data,
    }))
}

/// Shape and leaves of nested JSON lists (`np.array(x)`), rejecting ragged nesting as numpy does.
fn nested_shape(value: &Value) -> Result<(Vec<usize>, Vec<Value>), PyExc> {
    fn shape_of(v: &Value) -> Vec<usize> {
        match v {
            Value::Array(items) => {
                let mut s = vec![items.len()];
                if let Some(first) = items.first() {
                    s.extend(shape_of(first));
                }
                s
            }
            _ => Vec::new(),
        }
    }
    fn collect(
        v: &Value,
        shape: &[usize],
        depth: usize,
        out: &mut Vec<Value>,
    ) -> Result<(), usize> {
        match (v, shape.split_first()) {
            (Value::Array(items), Some((&n, rest))) if items.len() == n => {
                for item in items {
                    collect(item, rest, depth + 1, out)?;
                }
                Ok(())
            }
            (Value::Array(_), _) => Err(depth),
            (_, None) => {
                out.push(v.clone());
                Ok(())
            }
            (_, Some(_)) => Err(depth),
        }
    }
    let shape = shape_of(value);
    let mut leaves = Vec::with_capacity(shape.iter().product());
    collect(value, &shape, 0, &mut leaves).map_err(|depth| {
        PyExc::value_error(format!(
            "setting an array element with a sequence. The requested array has an inhomogeneous \
             shape after {depth} dimensions. The detected shape was {} + inhomogeneous part.",
            crate::mlmodel::shape_repr(&shape[..depth])
        ))
    })?;
    Ok((shape, leaves))
}

/// `np.array(value, dtype=ty)`; with no dtype, numpy's inference (bool, int64, float64, str or
/// object).
pub(super) fn np_array(value: &Value, ty: Option<ElementType>) -> Result<Array, PyExc> {
    let (shape, leaves) = nested_shape(value)?;
    match ty {
        Some(ty) => Ok(Array::Typed(Tensor {
            shape,
            data: cast_values(&leaves, ty, CastMode::Numpy)?,
        })),
        None => {
            let inferred = infer_column(leaves.clone());
            // numpy makes mixed numbers/bools numeric and anything with a string a string array;
            // None keeps object.
            let inferred = match inferred {
                Array::Object { .. }
                    if !leaves.is_empty()
                        && leaves.iter().all(|v| v.is_number() || v.is_boolean()) =>
                {
                    cast_array(&inferred, ElementType::Double, CastMode::Numpy)?
                }
                Array::Object { .. }
                    if leaves.iter().any(Value::is_string)
                        && leaves.iter().all(|v| !v.is_null() && !v.is_object()) =>
                {
                    cast_array(&inferred, ElementType::String, CastMode::Numpy)?
                }
                // numpy keeps None as an object, where pandas makes NaN.
                Array::Typed(_) if leaves.iter().any(Value::is_null) => Array::Object {
                    shape: vec![leaves.len()],
                    data: leaves,
                },
                other => other,
            };
            Ok(inferred.reshaped(shape))
        }
    }
}

pub(super) fn array_to_json(array: &Array) -> Value {
    fn build(a: &Array, shape: &[usize], offset: &mut usize) -> Value {
        match shape.split_first() {
            None => {
                let v = a.value_at(*offset);
                *offset += 1;
                v
            }
            Some((&n, rest)) => Value::Array((0..n).map(|_| build(a, rest, offset)).collect()),
        }
    }
    let mut offset = 0;
    build(array, array.shape(), &mut offset)
}

/// `DataFrame.values`: a 2-D array of the columns' common dtype.
pub(super) fn frame_values(frame: &Frame) -> Array {
    use ElementType::*;
    let types: Vec<Option<ElementType>> = frame
        .columns
        .iter()
        .map(|c| c.data.element_type())
        .collect();
    let common = if types.iter().all(|t| *t == types[0]) {
        types[0]
    } else if types
        .iter()
        .all(|t| matches!(t, Some(Float | Double | Int32 | Int64)))
    {
        if types.iter().any(|t| matches!(t, Some(Float | Double))) {
            Some(Double)
        } else {
            Some(Int64)
        }
    } else {
        None
    };
    let rows = frame.rows;
    let cols = frame.columns.len();
    let mut values = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for c in &frame.columns {
            values.push(c.data.value_at(i));
        }
    }
    match common {
        Some(ty) => Array::Typed(Tensor {
            shape: vec![rows, cols],
            data: cast_values(&values, ty, CastMode::Numpy).expect("numeric values cast"),
        }),
        None => Array::Object {
            shape: vec![rows, cols],
            data: values,
        },
    }
}
