//! Runtime-independent tensors: what goes into a model run and what comes out of it.
//!
//! Kept free of `ort` types so that protocol parsing, batching and output shaping are testable
//! without ONNX Runtime.

use serde_json::{Map, Value};

/// The tensor element types ferroflow feeds to and reads from ONNX models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    Float,
    Double,
    Int64,
    Int32,
    Bool,
    String,
}

impl ElementType {
    /// ONNX's name, as onnxruntime prints it in `tensor(<name>)`.
    pub fn onnx_name(self) -> &'static str {
        match self {
            ElementType::Float => "float",
            ElementType::Double => "double",
            ElementType::Int64 => "int64",
            ElementType::Int32 => "int32",
            ElementType::Bool => "bool",
            ElementType::String => "string",
        }
    }

    /// numpy's dtype name, as MLflow prints it in messages.
    pub fn numpy_name(self) -> &'static str {
        match self {
            ElementType::Float => "float32",
            ElementType::Double => "float64",
            ElementType::Int64 => "int64",
            ElementType::Int32 => "int32",
            ElementType::Bool => "bool",
            ElementType::String => "object",
        }
    }

    /// The Open Inference Protocol V2 datatype name.
    pub fn v2_name(self) -> &'static str {
        match self {
            ElementType::Float => "FP32",
            ElementType::Double => "FP64",
            ElementType::Int64 => "INT64",
            ElementType::Int32 => "INT32",
            ElementType::Bool => "BOOL",
            ElementType::String => "BYTES",
        }
    }

    pub fn from_v2_name(name: &str) -> Option<Self> {
        Some(match name {
            "FP32" => ElementType::Float,
            "FP64" => ElementType::Double,
            "INT64" => ElementType::Int64,
            "INT32" => ElementType::Int32,
            "BOOL" => ElementType::Bool,
            "BYTES" => ElementType::String,
            _ => return None,
        })
    }
}

/// Flat, row-major tensor contents.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Float(Vec<f32>),
    Double(Vec<f64>),
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

macro_rules! each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Float($v) => $body,
            TensorData::Double($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Bool($v) => $body,
            TensorData::String($v) => $body,
        }
    };
}

impl TensorData {
    pub fn element_type(&self) -> ElementType {
        match self {
            TensorData::Float(_) => ElementType::Float,
            TensorData::Double(_) => ElementType::Double,
            TensorData::Int64(_) => ElementType::Int64,
            TensorData::Int32(_) => ElementType::Int32,
            TensorData::Bool(_) => ElementType::Bool,
            TensorData::String(_) => ElementType::String,
        }
    }

    pub fn len(&self) -> usize {
        each_variant!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of the given type.
    pub fn empty(ty: ElementType) -> Self {
        match ty {
            ElementType::Float => TensorData::Float(Vec::new()),
            ElementType::Double => TensorData::Double(Vec::new()),
            ElementType::Int64 => TensorData::Int64(Vec::new()),
            ElementType::Int32 => TensorData::Int32(Vec::new()),
            ElementType::Bool => TensorData::Bool(Vec::new()),
            ElementType::String => TensorData::String(Vec::new()),
        }
    }

    /// `n` zeros (false, empty strings) of the given type.
    pub fn zeros(ty: ElementType, n: usize) -> Self {
        match ty {
            ElementType::Float => TensorData::Float(vec![0.0; n]),
            ElementType::Double => TensorData::Double(vec![0.0; n]),
            ElementType::Int64 => TensorData::Int64(vec![0; n]),
            ElementType::Int32 => TensorData::Int32(vec![0; n]),
            ElementType::Bool => TensorData::Bool(vec![false; n]),
            ElementType::String => TensorData::String(vec![String::new(); n]),
        }
    }

    /// Appends `other`, which must be of the same type.
    fn extend(&mut self, other: &TensorData) -> bool {
        match (self, other) {
            (TensorData::Float(a), TensorData::Float(b)) => a.extend_from_slice(b),
            (TensorData::Double(a), TensorData::Double(b)) => a.extend_from_slice(b),
            (TensorData::Int64(a), TensorData::Int64(b)) => a.extend_from_slice(b),
            (TensorData::Int32(a), TensorData::Int32(b)) => a.extend_from_slice(b),
            (TensorData::Bool(a), TensorData::Bool(b)) => a.extend_from_slice(b),
            (TensorData::String(a), TensorData::String(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    fn slice(&self, start: usize, end: usize) -> TensorData {
        match self {
            TensorData::Float(v) => TensorData::Float(v[start..end].to_vec()),
            TensorData::Double(v) => TensorData::Double(v[start..end].to_vec()),
            TensorData::Int64(v) => TensorData::Int64(v[start..end].to_vec()),
            TensorData::Int32(v) => TensorData::Int32(v[start..end].to_vec()),
            TensorData::Bool(v) => TensorData::Bool(v[start..end].to_vec()),
            TensorData::String(v) => TensorData::String(v[start..end].to_vec()),
        }
    }

    /// Element `i` as JSON; f32 goes through f64 as numpy's `tolist()` does, so the printed
    /// digits are those MLflow's JSON has (e.g. 0.1f32 prints as 0.10000000149011612).
    pub fn json_at(&self, i: usize) -> Value {
        match self {
            TensorData::Float(v) => float_json(f64::from(v[i])),
            TensorData::Double(v) => float_json(v[i]),
            TensorData::Int64(v) => Value::from(v[i]),
            TensorData::Int32(v) => Value::from(v[i]),
            TensorData::Bool(v) => Value::Bool(v[i]),
            TensorData::String(v) => Value::String(v[i].clone()),
        }
    }
}

/// A float as JSON; NaN and infinities (which Python's json writes as bare `NaN`/`Infinity`,
/// not valid JSON) become null.
pub fn float_json(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A dense tensor: shape plus row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: TensorData) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// Size of dimension 0 (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Concatenates tensors along dimension 0; they must agree on type and trailing dims.
    pub fn concat(parts: &[&Tensor]) -> Option<Tensor> {
        let first = parts.first()?;
        if first.shape.is_empty() {
            return None;
        }
        let mut data = first.data.clone();
        let mut rows = first.shape[0];
        for part in &parts[1..] {
            if part.shape.len() != first.shape.len() || part.shape[1..] != first.shape[1..] {
                return None;
            }
            if !data.extend(&part.data) {
                return None;
            }
            rows += part.shape[0];
        }
        let mut shape = first.shape.clone();
        shape[0] = rows;
        Some(Tensor { shape, data })
    }

    /// Splits along dimension 0 into pieces of `rows[i]` rows; None if the counts do not add up.
    pub fn split(&self, rows: &[usize]) -> Option<Vec<Tensor>> {
        if self.shape.is_empty() || rows.iter().sum::<usize>() != self.shape[0] {
            return None;
        }
        let row_len: usize = self.shape[1..].iter().product();
        let mut start = 0;
        let mut out = Vec::with_capacity(rows.len());
        for &n in rows {
            let end = start + n * row_len;
            let mut shape = self.shape.clone();
            shape[0] = n;
            out.push(Tensor {
                shape,
                data: self.data.slice(start, end),
            });
            start = end;
        }
        Some(out)
    }

    /// Nested JSON lists following the shape (a scalar for rank 0), as numpy's `tolist()`.
    pub fn to_nested_json(&self) -> Value {
        fn build(data: &TensorData, shape: &[usize], offset: &mut usize) -> Value {
            match shape.split_first() {
                None => {
                    let v = data.json_at(*offset);
                    *offset += 1;
                    v
                }
                Some((&n, rest)) => {
                    Value::Array((0..n).map(|_| build(data, rest, offset)).collect())
                }
            }
        }
        let mut offset = 0;
        build(&self.data, &self.shape, &mut offset)
    }

    /// Every element as JSON, row-major (numpy's `reshape(-1).tolist()`).
    pub fn flat_json(&self) -> Vec<Value> {
        (0..self.data.len()).map(|i| self.data.json_at(i)).collect()
    }
}

/// A ZipMap key: classifier labels are int64 or strings.
#[derive(Debug, Clone, PartialEq)]
pub enum MapKey {
    Int(i64),
    String(String),
}

/// One output of a model run.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    Tensor(Tensor),
    /// `Sequence(Map<int64|string, float>)`, one map per row: skl2onnx's ZipMap.
    MapSequence(Vec<Vec<(MapKey, f32)>>),
}

impl OutputValue {
    /// Rows this output holds (dimension 0 of a tensor, elements of a sequence).
    pub fn rows(&self) -> usize {
        match self {
            OutputValue::Tensor(t) => t.rows(),
            OutputValue::MapSequence(s) => s.len(),
        }
    }

    pub fn split(&self, rows: &[usize]) -> Option<Vec<OutputValue>> {
        match self {
            OutputValue::Tensor(t) => Some(
                t.split(rows)?
                    .into_iter()
                    .map(OutputValue::Tensor)
                    .collect(),
            ),
            OutputValue::MapSequence(seq) => {
                if rows.iter().sum::<usize>() != seq.len() {
                    return None;
                }
                let mut start = 0;
                Some(
                    rows.iter()
                        .map(|&n| {
                            let part = seq[start..start + n].to_vec();
                            start += n;
                            OutputValue::MapSequence(part)
                        })
                        .collect(),
                )
            }
        }
    }

    /// JSON as MLflow's `predictions_to_json` writes it for a dict of outputs: nested lists for
    /// tensors, a list of `{label: probability}` objects (keys as strings) for ZipMap.
    pub fn to_json(&self) -> Value {
        match self {
            OutputValue::Tensor(t) => t.to_nested_json(),
            OutputValue::MapSequence(seq) => {
                Value::Array(seq.iter().map(|row| map_row_json(row)).collect())
            }
        }
    }

    /// Flattened elements, as `np.asarray(output).reshape(-1)` in MLflow's DataFrame path.
    pub fn flat_json(&self) -> Vec<Value> {
        match self {
            OutputValue::Tensor(t) => t.flat_json(),
            OutputValue::MapSequence(seq) => seq.iter().map(|row| map_row_json(row)).collect(),
        }
    }
}

/// One ZipMap row as a JSON object; Python's json turns int keys into strings.
pub fn map_row_json(row: &[(MapKey, f32)]) -> Value {
    let mut obj = Map::new();
    for (k, v) in row {
        let key = match k {
            MapKey::Int(i) => i.to_string(),
            MapKey::String(s) => s.clone(),
        };
        obj.insert(key, float_json(f64::from(*v)));
    }
    Value::Object(obj)
}

/// What the graph declares for one input or output.
#[derive(Debug, Clone, PartialEq)]
pub enum IoKind {
    /// A tensor; `-1` marks a dynamic dimension.
    Tensor { ty: ElementType, shape: Vec<i64> },
    /// `Sequence(Map<key, float>)` (ZipMap); `string_keys` false means int64 keys.
    MapSequence { string_keys: bool },
    /// Anything else (unsupported element types, other containers): kept for metadata.
    Unsupported(String),
}

/// A named graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoSpec {
    pub name: String,
    pub kind: IoKind,
}

impl IoSpec {
    pub fn tensor(name: &str, ty: ElementType, shape: &[i64]) -> Self {
        IoSpec {
            name: name.to_string(),
            kind: IoKind::Tensor {
                ty,
                shape: shape.to_vec(),
            },
        }
    }

    /// onnxruntime's type string, e.g. `tensor(float)`.
    pub fn type_string(&self) -> String {
        match &self.kind {
            IoKind::Tensor { ty, .. } => format!("tensor({})", ty.onnx_name()),
            IoKind::MapSequence { string_keys } => format!(
                "seq(map({},tensor(float)))",
                if *string_keys { "string" } else { "int64" }
            ),
            IoKind::Unsupported(s) => s.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_then_split_returns_the_parts() {
        let a = Tensor::new(vec![1, 2], TensorData::Float(vec![1.0, 2.0]));
        let b = Tensor::new(vec![2, 2], TensorData::Float(vec![3.0, 4.0, 5.0, 6.0]));
        let joined = Tensor::concat(&[&a, &b]).unwrap();
        assert_eq!(joined.shape, vec![3, 2]);
        assert_eq!(joined.split(&[1, 2]).unwrap(), vec![a, b]);
    }

    #[test]
    fn concat_rejects_mismatched_trailing_dims() {
        let a = Tensor::new(vec![1, 2], TensorData::Float(vec![1.0, 2.0]));
        let b = Tensor::new(vec![1, 3], TensorData::Float(vec![3.0, 4.0, 5.0]));
        assert!(Tensor::concat(&[&a, &b]).is_none());
    }

    #[test]
    fn f32_serializes_through_f64_like_numpy() {
        let t = Tensor::new(vec![1], TensorData::Float(vec![0.1]));
        assert_eq!(t.to_nested_json().to_string(), "[0.10000000149011612]");
    }

    #[test]
    fn zipmap_rows_have_string_keys() {
        let out =
            OutputValue::MapSequence(vec![vec![(MapKey::Int(0), 0.5), (MapKey::Int(1), 0.5)]]);
        assert_eq!(out.to_json(), serde_json::json!([{"0": 0.5, "1": 0.5}]));
    }
}
