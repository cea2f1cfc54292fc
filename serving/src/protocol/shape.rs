//! Output shaping: the `predictions` value for the session's outputs.

use ferroflow_core::Error;
use serde_json::{Map, Value};

use super::{unexpected, OutputShape};
use crate::tensor::OutputValue;

/// The `predictions` value MLflow writes for onnx outputs.
pub fn shape_predictions(
    outputs: &[OutputValue],
    output_names: &[String],
    shape: OutputShape,
) -> Result<Value, Error> {
    match shape {
        OutputShape::Dict => {
            let mut map = Map::new();
            for (name, out) in output_names.iter().zip(outputs) {
                map.insert(name.clone(), out.to_json());
            }
            Ok(Value::Object(map))
        }
        OutputShape::Records => {
            // `pd.DataFrame.from_dict({name: np.asarray(out).reshape(-1)})`, then records.
            let columns: Vec<Vec<Value>> = outputs.iter().map(OutputValue::flat_json).collect();
            let rows = columns.first().map_or(0, Vec::len);
            if columns.iter().any(|c| c.len() != rows) {
                return Err(unexpected(
                    "ValueError: All arrays must be of the same length (an output with several values per row cannot become a DataFrame column; send `inputs` or `instances` to get a dict of outputs)",
                ));
            }
            let records = (0..rows)
                .map(|i| {
                    let mut rec = Map::new();
                    for (name, col) in output_names.iter().zip(&columns) {
                        rec.insert(name.clone(), col[i].clone());
                    }
                    Value::Object(rec)
                })
                .collect();
            Ok(Value::Array(records))
        }
    }
}

#[cfg(test)]
mod tests {
    use ferroflow_core::ErrorCode;
    use serde_json::json;

    use super::*;
    use crate::tensor::{MapKey, Tensor, TensorData};

    #[test]
    fn records_output_flattens_each_output_into_a_column() {
        let label = OutputValue::Tensor(Tensor::new(vec![2], TensorData::Int64(vec![0, 1])));
        let probs = OutputValue::MapSequence(vec![
            vec![(MapKey::Int(0), 0.75), (MapKey::Int(1), 0.25)],
            vec![(MapKey::Int(0), 0.5), (MapKey::Int(1), 0.5)],
        ]);
        let names = vec!["output_label".to_string(), "output_probability".to_string()];
        let v = shape_predictions(
            &[label.clone(), probs.clone()],
            &names,
            OutputShape::Records,
        )
        .unwrap();
        assert_eq!(
            v,
            json!([
                {"output_label": 0, "output_probability": {"0": 0.75, "1": 0.25}},
                {"output_label": 1, "output_probability": {"0": 0.5, "1": 0.5}}
            ])
        );
        let v = shape_predictions(&[label, probs], &names, OutputShape::Dict).unwrap();
        assert_eq!(v["output_label"], json!([0, 1]));
    }

    #[test]
    fn records_output_rejects_outputs_of_different_lengths() {
        let label = OutputValue::Tensor(Tensor::new(vec![1], TensorData::Int64(vec![0])));
        let probs = OutputValue::Tensor(Tensor::new(vec![1, 2], TensorData::Float(vec![0.5, 0.5])));
        let names = vec!["label".to_string(), "probabilities".to_string()];
        let e = shape_predictions(&[label, probs], &names, OutputShape::Records).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
    }
}
