//! Data preparation: the raw columns the model takes, the feature steps fitted on the training
//! split (mean imputation, standardization, one-hot encoding), the splits (stratified
//! train/validation/test, or k folds on small data) and class balancing on the training rows.

use std::collections::HashMap;

use ferroflow_core::{Error, Result};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::data::{class_targets, plan_columns, Cell, ColumnPlan, Frame};
use crate::estimators::Problem;
use crate::pipeline::{ColumnKind, FeatureStep, InputColumn, Labels, RawValue};

/// Text columns with more distinct values than this are dropped as free text.
pub const CARDINALITY_CAP: usize = 64;
/// At most this many one-hot features per categorical column (the most frequent values).
pub const MAX_CATEGORIES: usize = 32;
/// Below this many train + validation rows, trials are scored by k-fold cross-validation.
pub const CV_BELOW_ROWS: usize = 2000;
pub const CV_FOLDS: usize = 5;

/// The dataset made ready for the sweep.
#[derive(Debug)]
pub struct Prepared {
    pub columns: Vec<ColumnPlan>,
    pub inputs: Vec<InputColumn>,
    pub features: Vec<FeatureStep>,
    /// Feature names, one per model feature (`color=red` for one-hot features).
    pub feature_names: Vec<String>,
    /// Raw values per kept row (rows with a target), one per input.
    pub raw: Vec<Vec<RawValue>>,
    /// Model features per kept row (computed in f32 as the ONNX graph does).
    pub x: Array2<f64>,
    /// Targets per kept row: class index (as f64) or value.
    pub y: Array1<f64>,
    pub labels: Option<Labels>,
    pub splits: Splits,
    pub dropped_rows: usize,
    /// The first `EXAMPLE_ROWS` test rows as the dataset held them (one JSON value per input),
    /// for the model's input example.
    pub examples: Vec<Vec<serde_json::Value>>,
}

/// Rows in the logged model's input example.
pub const EXAMPLE_ROWS: usize = 5;

impl Prepared {
    pub fn n_classes(&self) -> usize {
        self.labels.as_ref().map_or(0, Labels::len)
    }

    pub fn problem(&self) -> Problem {
        if self.labels.is_some() {
            Problem::Classification
        } else {
            Problem::Regression
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Splits {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
    /// When set, trials are scored by these folds over train + validation instead.
    #[serde(skip)]
    pub folds: Option<Vec<Vec<usize>>>,
    pub method: String,
    pub balancing: Option<String>,
}

pub struct Settings<'a> {
    pub target: &'a str,
    pub problem: Problem,
    pub exclude_cols: &'a [String],
    /// A column whose values `train` / `validate` / `test` assign each row to a split.
    pub split_col: Option<&'a str>,
    pub seed: u64,
}

/// Plan the columns, fit the feature steps on the training rows and build the matrices.
pub fn prepare(frame: &Frame, settings: &Settings) -> Result<Prepared> {
    let target = frame.column(settings.target).ok_or_else(|| {
        Error::invalid(format!(
            "target_col '{}' is not a column of the dataset (columns: {})",
            settings.target,
            frame.names.join(", ")
        ))
    })?;
    let split_col = match settings.split_col {
        Some(name) => Some(frame.column(name).ok_or_else(|| {
            Error::invalid(format!("split_col '{name}' is not a column of the dataset"))
        })?),
        None => None,
    };
    let mut exclude: Vec<String> = settings.exclude_cols.to_vec();
    if let Some(s) = settings.split_col {
        exclude.push(s.to_string());
    }
    for e in settings.exclude_cols {
        if frame.column(e).is_none() {
            return Err(Error::invalid(format!(
                "exclude_cols names '{e}', which is not a column of the dataset"
            )));
        }
    }
    let columns = plan_columns(frame, target, &exclude, CARDINALITY_CAP);
    let target_cells = &frame.columns[target];
    let (labels, y_all): (Option<Labels>, Vec<Option<f64>>) = match settings.problem {
        Problem::Classification => {
            let (labels, y) = class_targets(target_cells);
            (
                Some(labels),
                y.into_iter().map(|c| c.map(|c| c as f64)).collect(),
            )
        }
        Problem::Regression => {
            let mut y = Vec::with_capacity(target_cells.len());
            for (i, cell) in target_cells.iter().enumerate() {
                match cell {
                    Cell::Missing => y.push(None),
                    Cell::Number(v) => y.push(Some(*v)),
                    other => {
                        return Err(Error::invalid(format!(
                            "The regression target '{}' must be numeric; row {} holds '{}'",
                            settings.target,
                            i + 1,
                            other.text()
                        )))
                    }
                }
            }
            (None, y)
        }
    };
    let kept: Vec<usize> = (0..frame.n_rows())
        .filter(|i| y_all[*i].is_some())
        .collect();
    if kept.is_empty() {
        return Err(Error::invalid(format!(
            "The target column '{}' has no values",
            settings.target
        )));
    }
    if let Some(labels) = &labels {
        if labels.len() < 2 {
            return Err(Error::invalid(format!(
                "The target column '{}' has only one class ({}); classification needs at least two",
                settings.target,
                labels.text(0)
            )));
        }
    }
    if kept.len() < 10 {
        return Err(Error::invalid(format!(
            "The dataset has {} rows with a target; AutoML needs at least 10",
            kept.len()
        )));
    }
    let y = Array1::from(
        kept.iter()
            .map(|i| y_all[*i].unwrap_or(0.0))
            .collect::<Vec<_>>(),
    );
    let inputs: Vec<(usize, InputColumn)> = columns
        .iter()
        .filter_map(|plan| {
            let kind = plan.kind?;
            Some((
                frame.column(&plan.name)?,
                InputColumn {
                    name: plan.name.clone(),
                    kind,
                },
            ))
        })
        .collect();
    if inputs.is_empty() {
        return Err(Error::invalid(
            "No usable feature columns: every column besides the target was dropped or excluded",
        ));
    }
    let raw: Vec<Vec<RawValue>> = kept
        .iter()
        .map(|row| {
            inputs
                .iter()
                .map(|(col, input)| raw_value(&frame.columns[*col][*row], input.kind))
                .collect()
        })
        .collect();
    let splits = match split_col {
        Some(col) => explicit_splits(&frame.columns[col], &kept, settings.seed)?,
        None => random_splits(&y, settings.problem, labels.as_ref(), settings.seed),
    };
    let fit_rows: Vec<usize> = if splits.folds.is_some() {
        splits
            .train
            .iter()
            .chain(&splits.validation)
            .copied()
            .collect()
    } else {
        splits.train.clone()
    };
    let (features, feature_names) = fit_features(&inputs, &raw, &fit_rows);
    let examples = splits
        .test
        .iter()
        .take(EXAMPLE_ROWS)
        .map(|r| {
            inputs
                .iter()
                .map(|(col, _)| crate::package::cell_json(&frame.columns[*col][kept[*r]]))
                .collect()
        })
        .collect();
    let inputs: Vec<InputColumn> = inputs.into_iter().map(|(_, i)| i).collect();
    let width: usize = features.iter().map(FeatureStep::width).sum();
    let mut x = Array2::zeros((raw.len(), width));
    for (i, row) in raw.iter().enumerate() {
        for (j, v) in feature_row(&features, row).into_iter().enumerate() {
            x[[i, j]] = v as f64;
        }
    }
    let mut splits = splits;
    if let (Problem::Classification, Some(labels)) = (settings.problem, &labels) {
        splits.balancing = balance(&mut splits, &y, labels.len(), settings.seed);
    }
    Ok(Prepared {
        dropped_rows: frame.n_rows() - kept.len(),
        columns,
        inputs,
        features,
        feature_names,
        raw,
        x,
        y,
        labels,
        splits,
        examples,
    })
}

pub fn raw_value(cell: &Cell, kind: ColumnKind) -> RawValue {
    match kind {
        ColumnKind::Numeric | ColumnKind::Boolean => {
            RawValue::Number(cell.as_f64().map_or(f32::NAN, |v| v as f32))
        }
        ColumnKind::BooleanText | ColumnKind::Categorical => RawValue::Text(cell.text()),
    }
}

/// The model features of one raw row, in f32 arithmetic as the ONNX Imputer/Scaler/OneHot do.
pub fn feature_row(features: &[FeatureStep], row: &[RawValue]) -> Vec<f32> {
    let mut out = Vec::new();
    for step in features {
        match (step, &row[step.input()]) {
            (
                FeatureStep::Numeric {
                    impute,
                    offset,
                    scale,
                    ..
                },
                raw,
            ) => {
                let v = raw.number();
                let v = if v.is_nan() { *impute } else { v };
                out.push((v - offset) * scale);
            }
            (FeatureStep::OneHot { categories, .. }, RawValue::Text(t)) => {
                out.extend(categories.iter().map(|c| f32::from(c == t)));
            }
            (step, _) => out.extend(std::iter::repeat_n(0.0, step.width())),
        }
    }
    out
}

fn fit_features(
    inputs: &[(usize, InputColumn)],
    raw: &[Vec<RawValue>],
    rows: &[usize],
) -> (Vec<FeatureStep>, Vec<String>) {
    let mut steps = Vec::new();
    let mut names = Vec::new();
    for (j, (_, input)) in inputs.iter().enumerate() {
        match input.kind {
            ColumnKind::Numeric | ColumnKind::Boolean | ColumnKind::BooleanText => {
                let values: Vec<f64> = rows
                    .iter()
                    .map(|r| raw[*r][j].number())
                    .filter(|v| !v.is_nan())
                    .map(f64::from)
                    .collect();
                let n = values.len().max(1) as f64;
                let mean = values.iter().sum::<f64>() / n;
                let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                let std = var.sqrt();
                steps.push(FeatureStep::Numeric {
                    input: j,
                    impute: mean as f32,
                    offset: mean as f32,
                    scale: if std > 1e-12 { (1.0 / std) as f32 } else { 1.0 },
                });
                names.push(input.name.clone());
            }
            ColumnKind::Categorical => {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for r in rows {
                    if let RawValue::Text(t) = &raw[*r][j] {
                        if !t.is_empty() {
                            *counts.entry(t.as_str()).or_default() += 1;
                        }
                    }
                }
                let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
                cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                cats.truncate(MAX_CATEGORIES);
                let categories: Vec<String> =
                    cats.into_iter().map(|(c, _)| c.to_string()).collect();
                names.extend(categories.iter().map(|c| format!("{}={c}", input.name)));
                steps.push(FeatureStep::OneHot {
                    input: j,
                    categories,
                });
            }
        }
    }
    (steps, names)
}

fn explicit_splits(cells: &[Cell], kept: &[usize], seed: u64) -> Result<Splits> {
    let mut s = Splits {
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
        folds: None,
        method: "split_col".into(),
        balancing: None,
    };
    for (i, row) in kept.iter().enumerate() {
        match cells[*row].text().trim().to_ascii_lowercase().as_str() {
            "train" => s.train.push(i),
            "validate" | "validation" | "val" => s.validation.push(i),
            "test" => s.test.push(i),
            other => {
                return Err(Error::invalid(format!(
                    "split_col values must be train, validate or test; row {} holds '{other}'",
                    row + 1
                )))
            }
        }
    }
    if s.train.is_empty() || s.test.is_empty() {
        return Err(Error::invalid(
            "split_col must assign at least one row to train and one to test",
        ));
    }
    if s.validation.is_empty() && s.train.len() < CV_BELOW_ROWS {
        // No validation rows: score trials by folds over the training rows.
        s.folds = Some(folds(&s.train, CV_FOLDS));
        s.method = format!("split_col with {CV_FOLDS}-fold cross-validation on train");
    } else if s.validation.is_empty() {
        // Plenty of training rows: every fifth (in a seeded shuffle) validates.
        let mut rows = std::mem::take(&mut s.train);
        rows.shuffle(&mut StdRng::seed_from_u64(seed));
        for (i, r) in rows.into_iter().enumerate() {
            if i % 5 == 0 {
                s.validation.push(r);
            } else {
                s.train.push(r);
            }
        }
        s.method = "split_col train (80/20 train/validation) and test".into();
    }
    Ok(s)
}

/// Round-robin fold assignment (the rows are already shuffled or stratified).
fn folds(rows: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut folds = vec![Vec::new(); k];
    for (i, r) in rows.iter().enumerate() {
        folds[i % k].push(*r);
    }
    folds
}

/// 60/20/20 train/validation/test, stratified by class; 5-fold cross-validation over
/// train + validation when they hold fewer than `CV_BELOW_ROWS` rows.
fn random_splits(y: &Array1<f64>, problem: Problem, labels: Option<&Labels>, seed: u64) -> Splits {
    let mut rng = StdRng::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = match (problem, labels) {
        (Problem::Classification, Some(labels)) => {
            let mut g = vec![Vec::new(); labels.len()];
            for (i, c) in y.iter().enumerate() {
                g[*c as usize].push(i);
            }
            g
        }
        _ => vec![(0..y.len()).collect()],
    };
    let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
    // Interleave the groups so round-robin folds stay stratified too.
    let mut ordered_trainval: Vec<Vec<usize>> = Vec::new();
    for mut g in groups {
        g.shuffle(&mut rng);
        let n = g.len();
        let n_test = ((n as f64) * 0.2).round() as usize;
        let n_test = if n >= 3 { n_test.max(1) } else { 0 };
        let n_val = if n - n_test >= 3 {
            (((n as f64) * 0.2).round() as usize).max(1)
        } else {
            0
        };
        test.extend_from_slice(&g[..n_test]);
        validation.extend_from_slice(&g[n_test..n_test + n_val]);
        train.extend_from_slice(&g[n_test + n_val..]);
        ordered_trainval.push(g[n_test..].to_vec());
    }
    let trainval_len = train.len() + validation.len();
    let folds = (trainval_len < CV_BELOW_ROWS).then(|| {
        let mut interleaved = Vec::with_capacity(trainval_len);
        let longest = ordered_trainval.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for g in &ordered_trainval {
                if let Some(r) = g.get(i) {
                    interleaved.push(*r);
                }
            }
        }
        folds(&interleaved, CV_FOLDS)
    });
    let method = if folds.is_some() {
        format!("{CV_FOLDS}-fold cross-validation on 80% (stratified), 20% held-out test")
    } else {
        "60/20/20 train/validation/test (stratified)".to_string()
    };
    let method = if problem == Problem::Regression {
        method.replace(" (stratified)", "")
    } else {
        method
    };
    Splits {
        train,
        validation,
        test,
        folds,
        method,
        balancing: None,
    }
}

/// Random oversampling of the minority classes in the training rows when the largest class is
/// more than 3× the smallest: each class is brought up to half the largest class's count.
/// Validation and test rows are never touched. Returns what was done.
fn balance(splits: &mut Splits, y: &Array1<f64>, n_classes: usize, seed: u64) -> Option<String> {
    let added = match &splits.folds {
        // Folds are balanced when a trial trains on them (`balanced_rows` in the search).
        Some(_) => None,
        None => {
            let before = splits.train.len();
            splits.train = balanced_rows(&splits.train, y, n_classes, seed ^ 0x5eed);
            Some(splits.train.len() - before).filter(|n| *n > 0)
        }
    };
    let imbalance = {
        let mut counts = vec![0usize; n_classes];
        for v in y {
            counts[*v as usize] += 1;
        }
        let max = counts.iter().max().copied().unwrap_or(0);
        let min = counts
            .iter()
            .filter(|c| **c > 0)
            .min()
            .copied()
            .unwrap_or(0);
        (min > 0 && max > 3 * min).then_some((max, min))
    };
    match (added, imbalance, &splits.folds) {
        (Some(n), _, _) => Some(format!(
            "random oversampling of minority classes in the training split ({n} rows added)"
        )),
        (None, Some((max, min)), Some(_)) => Some(format!(
            "classes range from {min} to {max} rows; minority classes are oversampled in each training fold"
        )),
        _ => None,
    }
}

/// Random oversampling of the minority classes in `rows` when the largest class is more than
/// 3× the smallest: each class is brought up to half the largest class's count.
pub fn balanced_rows(rows: &[usize], y: &Array1<f64>, n_classes: usize, seed: u64) -> Vec<usize> {
    if n_classes == 0 {
        return rows.to_vec();
    }
    let mut by_class = vec![Vec::new(); n_classes];
    for r in rows {
        by_class[y[*r] as usize].push(*r);
    }
    let max = by_class.iter().map(Vec::len).max().unwrap_or(0);
    let min = by_class
        .iter()
        .map(Vec::len)
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(0);
    let mut out = rows.to_vec();
    if min == 0 || max <= 3 * min {
        return out;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for class_rows in by_class.iter().filter(|c| !c.is_empty()) {
        for _ in class_rows.len()..max / 2 {
            if let Some(r) = class_rows.choose(&mut rng) {
                out.push(*r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{read, Format};

    fn iris_like(n: usize) -> Frame {
        let mut csv = String::from("a,b,color,label\n");
        for i in 0..n {
            let c = i % 3;
            csv += &format!(
                "{},{},{},{}\n",
                if i == 5 {
                    "".to_string()
                } else {
                    format!("{}", c as f64 + (i % 7) as f64 * 0.1)
                },
                i % 11,
                ["red", "green", "blue"][(i / 2) % 3],
                ["x", "y", "z"][c]
            );
        }
        read(csv.as_bytes(), Format::Csv).unwrap()
    }

    fn settings(problem: Problem) -> Settings<'static> {
        Settings {
            target: "label",
            problem,
            exclude_cols: &[],
            split_col: None,
            seed: 7,
        }
    }

    #[test]
    fn features_are_imputed_scaled_and_one_hot_encoded() {
        let p = prepare(&iris_like(90), &settings(Problem::Classification)).unwrap();
        assert_eq!(p.inputs.len(), 3);
        assert_eq!(p.x.ncols(), 2 + 3);
        assert_eq!(p.n_classes(), 3);
        // Standardized on the fitting rows: mean ~0.
        let fit: Vec<usize> = p
            .splits
            .train
            .iter()
            .chain(&p.splits.validation)
            .copied()
            .collect();
        let mean: f64 = fit.iter().map(|r| p.x[[*r, 1]]).sum::<f64>() / fit.len() as f64;
        assert!(mean.abs() < 1e-5, "{mean}");
        // The missing value was imputed with the mean: its feature is 0 after centering.
        assert!(p.x[[5, 0]].abs() < 1e-6);
        // Stratified: every class in test.
        let mut test_classes: Vec<usize> = p.splits.test.iter().map(|r| p.y[*r] as usize).collect();
        test_classes.sort();
        test_classes.dedup();
        assert_eq!(test_classes, [0, 1, 2]);
        assert!(p.splits.folds.is_some());
    }

    #[test]
    fn bad_targets_are_rejected() {
        let f = iris_like(30);
        let mut s = settings(Problem::Classification);
        s.target = "nope";
        assert!(prepare(&f, &s)
            .unwrap_err()
            .message
            .contains("not a column"));
        let s = settings(Problem::Regression);
        assert!(prepare(&f, &s)
            .unwrap_err()
            .message
            .contains("must be numeric"));
        let one = read(
            b"a,label\n1,x\n2,x\n3,x\n4,x\n5,x\n6,x\n7,x\n8,x\n9,x\n10,x\n",
            Format::Csv,
        )
        .unwrap();
        assert!(prepare(&one, &settings(Problem::Classification))
            .unwrap_err()
            .message
            .contains("only one class"));
    }

    #[test]
    fn boolean_words_stay_text_and_the_example_holds_the_file_values() {
        let mut csv = String::from("idp,smoker,flag,dose,y\n");
        for i in 0..60 {
            csv += &format!(
                "{},{},{},{},{}\n",
                ["yes", "no"][i % 2],
                ["Y", "N", ""][i % 3],
                ["true", "False"][(i / 2) % 2],
                if i % 5 == 0 {
                    "6.907755".to_string()
                } else {
                    format!("{}", i % 7)
                },
                i % 2
            );
        }
        let f = read(csv.as_bytes(), Format::Csv).unwrap();
        let mut s = settings(Problem::Classification);
        s.target = "y";
        let p = prepare(&f, &s).unwrap();
        let kinds: Vec<ColumnKind> = p.inputs.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ColumnKind::BooleanText,
                ColumnKind::BooleanText,
                ColumnKind::BooleanText,
                ColumnKind::Numeric
            ]
        );
        // The model reads the words as the client has them; the features are 1/0 (missing
        // imputed), standardized.
        assert_eq!(p.raw[0][0], RawValue::Text("yes".into()));
        assert_eq!(p.raw[2][1], RawValue::Text("".into()));
        let FeatureStep::Numeric { offset, scale, .. } = p.features[0] else {
            panic!("a numeric step")
        };
        assert_eq!(p.x[[0, 0]], f64::from((1.0 - offset) * scale));
        assert_eq!(p.x[[1, 0]], f64::from((0.0 - offset) * scale));
        // The example: test rows exactly as the file wrote them.
        assert_eq!(p.examples.len(), EXAMPLE_ROWS);
        for (row, example) in p.splits.test.iter().zip(&p.examples) {
            let i = *row;
            assert_eq!(example[0], serde_json::json!(["yes", "no"][i % 2]));
            let smoker = ["Y", "N", ""][i % 3];
            let want = if smoker.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(smoker)
            };
            assert_eq!(example[1], want);
            let dose = if i % 5 == 0 {
                serde_json::json!(6.907755)
            } else {
                serde_json::json!(i % 7)
            };
            assert_eq!(example[3], dose, "row {i}");
        }
        assert_eq!(
            crate::package::raw_json(&RawValue::Number(6.907755)).to_string(),
            "6.907755"
        );
    }

    #[test]
    fn imbalanced_training_rows_are_oversampled() {
        let mut csv = String::from("a,label\n");
        for i in 0..5000 {
            csv += &format!("{},{}\n", i % 97, if i % 20 == 0 { 1 } else { 0 });
        }
        let f = read(csv.as_bytes(), Format::Csv).unwrap();
        let p = prepare(&f, &settings(Problem::Classification)).unwrap();
        assert!(p.splits.balancing.is_some());
        let pos = p.splits.train.iter().filter(|r| p.y[**r] == 1.0).count();
        let neg = p.splits.train.len() - pos;
        assert!(pos * 2 >= neg - 2, "{pos} {neg}");
        let test_pos = p.splits.test.iter().filter(|r| p.y[**r] == 1.0).count();
        assert_eq!(test_pos, 50);
    }
}
