//! Datasets: CSV or Parquet bytes read into a column-major table of cells, and the column type
//! detection that decides how each column enters the model (or why it is dropped).

use std::collections::{HashMap, HashSet};

use ferroflow_core::{Error, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde::Serialize;

use crate::pipeline::{boolean_word, ColumnKind};

/// One value of the table as the file held it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Missing,
    Number(f64),
    Bool(bool),
    Text(String),
}

impl Cell {
    /// The cell as a number, where it is one (booleans as 0/1, numeric text parsed).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Number(v) => Some(*v),
            Cell::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Cell::Text(t) => t.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
            Cell::Missing => None,
        }
    }

    /// The cell as text (numbers written as the shortest round-trip form; integers without ".0").
    pub fn text(&self) -> String {
        match self {
            Cell::Missing => String::new(),
            Cell::Number(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", *v as i64),
            Cell::Number(v) => v.to_string(),
            Cell::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Cell::Text(t) => t.clone(),
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Cell::Missing)
    }
}

/// A table read from a dataset file: column names and, per column, one cell per row.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub names: Vec<String>,
    pub columns: Vec<Vec<Cell>>,
}

impl Frame {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// The file formats a dataset may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// From the file name's extension; CSV when it names none of ours.
    pub fn from_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Format::Parquet
        } else {
            Format::Csv
        }
    }
}

/// Read a dataset file. An empty file, a file with a header and no rows, or a malformed file is
/// a 400 naming the problem.
pub fn read(bytes: &[u8], format: Format) -> Result<Frame> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("The dataset is empty"));
    }
    let frame = match format {
        Format::Csv => read_csv(bytes)?,
        Format::Parquet => read_parquet(bytes)?,
    };
    if frame.n_rows() == 0 {
        return Err(Error::invalid("The dataset has a header but no rows"));
    }
    Ok(frame)
}

fn is_missing_text(s: &str) -> bool {
    matches!(
        s.trim(),
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None" | "?"
    )
}

fn read_csv(bytes: &[u8]) -> Result<Frame> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid(format!("The dataset is not valid CSV: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    check_names(&names)?;
    let mut columns: Vec<Vec<Cell>> = vec![Vec::new(); names.len()];
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Error::invalid(format!(
                "The dataset is not valid CSV at data row {}: {e}",
                i + 1
            ))
        })?;
        for (col, value) in columns.iter_mut().zip(record.iter()) {
            col.push(if is_missing_text(value) {
                Cell::Missing
            } else if let Ok(v) = value.trim().parse::<f64>() {
                if v.is_finite() {
                    Cell::Number(v)
                } else {
                    Cell::Missing
                }
            } else {
                Cell::Text(value.to_string())
            });
        }
    }
    Ok(Frame { names, columns })
}

fn check_names(names: &[String]) -> Result<()> {
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(Error::invalid("The dataset has no columns"));
    }
    let mut seen = HashSet::new();
    for n in names {
        if n.is_empty() {
            return Err(Error::invalid("The dataset has a column without a name"));
        }
        if !seen.insert(n) {
            return Err(Error::invalid(format!(
                "The dataset has two columns named '{n}'"
            )));
        }
    }
    Ok(())
}

fn read_parquet(bytes: &[u8]) -> Result<Frame> {
    let data = bytes::Bytes::copy_from_slice(bytes);
    let reader = SerializedFileReader::new(data)
        .map_err(|e| Error::invalid(format!("The dataset is not a valid Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    check_names(&names)?;
    let mut columns: Vec<Vec<Cell>> = vec![Vec::new(); names.len()];
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| Error::invalid(format!("The dataset is not a valid Parquet file: {e}")))?;
    for row in rows {
        let row =
            row.map_err(|e| Error::invalid(format!("The Parquet dataset cannot be read: {e}")))?;
        for (i, (_, field)) in row.get_column_iter().enumerate() {
            if let Some(col) = columns.get_mut(i) {
                col.push(parquet_cell(field));
            }
        }
    }
    Ok(Frame { names, columns })
}

fn parquet_cell(field: &Field) -> Cell {
    let num = |v: f64| {
        if v.is_finite() {
            Cell::Number(v)
        } else {
            Cell::Missing
        }
    };
    match field {
        Field::Null => Cell::Missing,
        Field::Bool(b) => Cell::Bool(*b),
        Field::Byte(v) => num(*v as f64),
        Field::Short(v) => num(*v as f64),
        Field::Int(v) => num(*v as f64),
        Field::Long(v) => num(*v as f64),
        Field::UByte(v) => num(*v as f64),
        Field::UShort(v) => num(*v as f64),
        Field::UInt(v) => num(*v as f64),
        Field::ULong(v) => num(*v as f64),
        Field::Float16(v) => num(f64::from(*v)),
        Field::Float(v) => num(*v as f64),
        Field::Double(v) => num(*v),
        Field::Str(s) => {
            if is_missing_text(s) {
                Cell::Missing
            } else {
                Cell::Text(s.clone())
            }
        }
        other => Cell::Text(other.to_string()),
    }
}

/// What type detection decided for one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnPlan {
    pub name: String,
    /// How the column enters the model, or `None` when it is dropped.
    pub kind: Option<ColumnKind>,
    /// Why the column was dropped, or how it was read.
    pub note: String,
    pub distinct: usize,
    pub missing: usize,
}

/// Detect column types. `cardinality_cap`: a text column with more distinct values is treated
/// as free text or an ID and dropped.
pub fn plan_columns(
    frame: &Frame,
    target: usize,
    exclude: &[String],
    cardinality_cap: usize,
) -> Vec<ColumnPlan> {
    let n = frame.n_rows();
    frame
        .names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != target)
        .map(|(i, name)| {
            let cells = &frame.columns[i];
            let missing = cells.iter().filter(|c| c.is_missing()).count();
            let present = n - missing;
            let distinct: HashSet<String> = cells
                .iter()
                .filter(|c| !c.is_missing())
                .map(Cell::text)
                .collect();
            let distinct = distinct.len();
            let plan = |kind: Option<ColumnKind>, note: &str| ColumnPlan {
                name: name.clone(),
                kind,
                note: note.to_string(),
                distinct,
                missing,
            };
            if exclude.iter().any(|e| e == name) {
                return plan(None, "excluded by exclude_cols");
            }
            if present == 0 {
                return plan(None, "dropped: every value is missing");
            }
            if distinct <= 1 {
                return plan(None, "dropped: constant");
            }
            let present_cells = || cells.iter().filter(|c| !c.is_missing());
            if present_cells().all(|c| matches!(c, Cell::Bool(_))) {
                return plan(Some(ColumnKind::Boolean), "boolean");
            }
            // Boolean words stay text in the model's input: the client has them as strings.
            if present_cells().all(|c| matches!(c, Cell::Text(t) if boolean_word(t).is_some())) {
                return plan(Some(ColumnKind::BooleanText), "boolean (text)");
            }
            let all_numeric = cells
                .iter()
                .filter(|c| !c.is_missing())
                .all(|c| matches!(c, Cell::Number(_)));
            if all_numeric {
                let integers = cells
                    .iter()
                    .filter_map(Cell::as_f64)
                    .all(|v| v.fract() == 0.0);
                if integers && distinct == present && present > 20 && looks_like_id(name, cells) {
                    return plan(None, "dropped: ID-like (unique integers)");
                }
                return plan(Some(ColumnKind::Numeric), "numeric");
            }
            if distinct == present && present > 20 {
                return plan(None, "dropped: ID-like (every value distinct)");
            }
            if distinct > cardinality_cap {
                return plan(
                    None,
                    &format!(
                        "dropped: text with {distinct} distinct values (cap {cardinality_cap})"
                    ),
                );
            }
            plan(Some(ColumnKind::Categorical), "categorical")
        })
        .collect()
}

/// Unique integers count as an ID when the name says so or they run 0..n / 1..n in row order.
fn looks_like_id(name: &str, cells: &[Cell]) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower == "id" || lower.ends_with("_id") || lower.ends_with(" id") || lower == "index" {
        return true;
    }
    let values: Vec<f64> = cells.iter().filter_map(Cell::as_f64).collect();
    values.windows(2).all(|w| w[1] == w[0] + 1.0)
}

/// The target's class labels, in sorted order, with each row's class index (`None` where the
/// target is missing). Integer labels when every label is an integer.
pub fn class_targets(cells: &[Cell]) -> (crate::pipeline::Labels, Vec<Option<usize>>) {
    use crate::pipeline::Labels;
    let ints: Option<Vec<Option<i64>>> = cells
        .iter()
        .map(|c| match c {
            Cell::Missing => Some(None),
            Cell::Number(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(Some(*v as i64)),
            _ => None,
        })
        .collect();
    if let Some(ints) = ints {
        let mut labels: Vec<i64> = ints.iter().flatten().copied().collect();
        labels.sort_unstable();
        labels.dedup();
        let index: HashMap<i64, usize> = labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        let y = ints.iter().map(|v| v.map(|v| index[&v])).collect();
        return (Labels::Ints(labels), y);
    }
    let texts: Vec<Option<String>> = cells
        .iter()
        .map(|c| (!c.is_missing()).then(|| c.text()))
        .collect();
    let mut labels: Vec<String> = texts.iter().flatten().cloned().collect();
    labels.sort();
    labels.dedup();
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let y = texts
        .iter()
        .map(|v| v.as_deref().map(|v| index[v]))
        .collect();
    (Labels::Strings(labels), y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_and_missing_values() {
        let f = read(b"a,b,c\n1,x,\n2.5,NA,true\n", Format::Csv).unwrap();
        assert_eq!(f.names, ["a", "b", "c"]);
        assert_eq!(f.columns[0], [Cell::Number(1.0), Cell::Number(2.5)]);
        assert_eq!(f.columns[1], [Cell::Text("x".into()), Cell::Missing]);
        assert_eq!(f.columns[2], [Cell::Missing, Cell::Text("true".into())]);
    }

    #[test]
    fn empty_and_header_only_files_are_rejected() {
        assert!(read(b"", Format::Csv)
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(read(b"a,b\n", Format::Csv)
            .unwrap_err()
            .message
            .contains("no rows"));
        assert!(read(b"a,a\n1,2\n", Format::Csv)
            .unwrap_err()
            .message
            .contains("two columns"));
        assert!(read(b"a,b\n1,2,3\n", Format::Csv).is_err());
        assert!(read(b"not parquet", Format::Parquet).is_err());
    }

    #[test]
    fn column_types_are_detected_and_useless_columns_dropped() {
        let n = 30;
        let mut csv = String::from("id,num,flag,color,const,free,y\n");
        for i in 0..n {
            csv += &format!(
                "{i},{},{},{},7,text {i},{}\n",
                i % 7,
                if i % 2 == 0 { "yes" } else { "no" },
                ["red", "green", "blue"][i % 3],
                i % 2
            );
        }
        let f = read(csv.as_bytes(), Format::Csv).unwrap();
        let plans = plan_columns(&f, 6, &[], 50);
        let kinds: Vec<_> = plans.iter().map(|p| (p.name.as_str(), p.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("id", None),
                ("num", Some(ColumnKind::Numeric)),
                ("flag", Some(ColumnKind::BooleanText)),
                ("color", Some(ColumnKind::Categorical)),
                ("const", None),
                ("free", None),
            ]
        );
        let excluded = plan_columns(&f, 6, &["num".to_string()], 50);
        assert_eq!(excluded[1].kind, None);
        assert!(excluded[1].note.contains("exclude_cols"));
    }

    #[test]
    fn class_labels_are_ints_when_they_can_be() {
        let (labels, y) = class_targets(&[Cell::Number(2.0), Cell::Missing, Cell::Number(0.0)]);
        assert_eq!(labels, crate::pipeline::Labels::Ints(vec![0, 2]));
        assert_eq!(y, [Some(1), None, Some(0)]);
        let (labels, y) = class_targets(&[Cell::Text("b".into()), Cell::Text("a".into())]);
        assert_eq!(
            labels,
            crate::pipeline::Labels::Strings(vec!["a".into(), "b".into()])
        );
        assert_eq!(y, [Some(1), Some(0)]);
    }
}
