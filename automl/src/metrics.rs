//! Scores: classification (accuracy, F1, precision, recall, log loss, ROC AUC) and regression
//! (R², RMSE, MAE, MSE), with the primary metric turned into a loss the search minimizes.

use ndarray::{Array2, ArrayView1};
use serde::Serialize;

use crate::estimators::{argmax, Output, Problem};

/// A metric the sweep can optimize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    F1,
    Precision,
    Recall,
    LogLoss,
    RocAuc,
    R2,
    Rmse,
    Mae,
    Mse,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::LogLoss => "log_loss",
            Metric::RocAuc => "roc_auc",
            Metric::R2 => "r2",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::Mse => "mse",
        }
    }

    pub fn for_problem(problem: Problem) -> &'static [Metric] {
        match problem {
            Problem::Classification => &[
                Metric::F1,
                Metric::Accuracy,
                Metric::Precision,
                Metric::Recall,
                Metric::LogLoss,
                Metric::RocAuc,
            ],
            Problem::Regression => &[Metric::R2, Metric::Rmse, Metric::Mae, Metric::Mse],
        }
    }

    /// The default primary metric, as Databricks AutoML picks it.
    pub fn default_for(problem: Problem) -> Metric {
        match problem {
            Problem::Classification => Metric::F1,
            Problem::Regression => Metric::R2,
        }
    }

    pub fn parse(problem: Problem, name: &str) -> Option<Metric> {
        let name = name.trim().to_ascii_lowercase();
        Self::for_problem(problem)
            .iter()
            .copied()
            .find(|m| m.name() == name)
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::LogLoss | Metric::Rmse | Metric::Mae | Metric::Mse
        )
    }

    /// The value as a loss (lower is better).
    pub fn loss(self, value: f64) -> f64 {
        let loss = if self.higher_is_better() {
            -value
        } else {
            value
        };
        if loss.is_nan() {
            f64::INFINITY
        } else {
            loss
        }
    }
}

/// Every metric of the problem type for predictions `output` against targets `y` (class indexes
/// as f64 for classification).
pub fn evaluate(
    problem: Problem,
    output: &Output,
    y: ArrayView1<f64>,
    n_classes: usize,
) -> Vec<(Metric, f64)> {
    match (problem, output) {
        (Problem::Classification, Output::Classes(p)) => classification(p, y, n_classes),
        (Problem::Regression, Output::Values(v)) => regression(v.view(), y),
        _ => Vec::new(),
    }
}

pub fn value(metrics: &[(Metric, f64)], metric: Metric) -> f64 {
    metrics
        .iter()
        .find(|(m, _)| *m == metric)
        .map_or(f64::NAN, |(_, v)| *v)
}

fn classification(p: &Array2<f64>, y: ArrayView1<f64>, n_classes: usize) -> Vec<(Metric, f64)> {
    let n = y.len().max(1) as f64;
    let truth: Vec<usize> = y.iter().map(|v| *v as usize).collect();
    let predicted: Vec<usize> = p.rows().into_iter().map(argmax).collect();
    let accuracy = truth.iter().zip(&predicted).filter(|(a, b)| a == b).count() as f64 / n;
    let counts = confusion(&truth, &predicted, n_classes);
    // Binary: the scores of the second class (the positive label). More: support-weighted.
    let per_class: Vec<(f64, f64, f64, f64)> = (0..n_classes)
        .map(|c| {
            let tp = counts[c][c] as f64;
            let predicted_c: f64 = (0..n_classes).map(|a| counts[a][c] as f64).sum();
            let actual_c: f64 = counts[c].iter().map(|v| *v as f64).sum();
            let precision = if predicted_c > 0.0 {
                tp / predicted_c
            } else {
                0.0
            };
            let recall = if actual_c > 0.0 { tp / actual_c } else { 0.0 };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            (precision, recall, f1, actual_c)
        })
        .collect();
    let (precision, recall, f1) = if n_classes == 2 {
        (per_class[1].0, per_class[1].1, per_class[1].2)
    } else {
        let total: f64 = per_class.iter().map(|c| c.3).sum::<f64>().max(1.0);
        per_class.iter().fold((0.0, 0.0, 0.0), |acc, c| {
            (
                acc.0 + c.0 * c.3 / total,
                acc.1 + c.1 * c.3 / total,
                acc.2 + c.2 * c.3 / total,
            )
        })
    };
    let log_loss = truth
        .iter()
        .enumerate()
        .map(|(i, c)| -p[[i, *c]].clamp(1e-15, 1.0 - 1e-15).ln())
        .sum::<f64>()
        / n;
    vec![
        (Metric::F1, f1),
        (Metric::Accuracy, accuracy),
        (Metric::Precision, precision),
        (Metric::Recall, recall),
        (Metric::LogLoss, log_loss),
        (Metric::RocAuc, roc_auc(p, &truth, n_classes)),
    ]
}

/// counts[actual][predicted].
pub fn confusion(truth: &[usize], predicted: &[usize], n_classes: usize) -> Vec<Vec<u64>> {
    let mut counts = vec![vec![0u64; n_classes]; n_classes];
    for (a, b) in truth.iter().zip(predicted) {
        if *a < n_classes && *b < n_classes {
            counts[*a][*b] += 1;
        }
    }
    counts
}

/// Binary: AUC of the second class. More: the macro average of one-vs-rest AUCs over the
/// classes present in `truth`.
pub fn roc_auc(p: &Array2<f64>, truth: &[usize], n_classes: usize) -> f64 {
    let classes: Vec<usize> = if n_classes == 2 {
        vec![1]
    } else {
        (0..n_classes).collect()
    };
    let aucs: Vec<f64> = classes
        .iter()
        .filter_map(|c| {
            let scores: Vec<f64> = p.column(*c).to_vec();
            let positive: Vec<bool> = truth.iter().map(|t| t == c).collect();
            binary_auc(&scores, &positive)
        })
        .collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// The Mann-Whitney form of AUC (ties count half); `None` when one side is empty.
fn binary_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|p| **p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            if positive[*k] {
                rank_sum_pos += rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// ROC curve points (false positive rate, true positive rate) for one class against the rest.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let n_pos = positive.iter().filter(|p| **p).count().max(1) as f64;
    let n_neg = (positive.len() as f64 - n_pos).max(1.0);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (i, k) in order.iter().enumerate() {
        if positive[*k] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(i + 1)
            .is_none_or(|next| scores[*next] != scores[*k]);
        if last_of_tie {
            points.push((fp / n_neg, tp / n_pos));
        }
    }
    points
}

fn regression(pred: ArrayView1<f64>, y: ArrayView1<f64>) -> Vec<(Metric, f64)> {
    let n = y.len().max(1) as f64;
    let mean = y.sum() / n;
    let mut sse = 0.0;
    let mut sae = 0.0;
    let mut sst = 0.0;
    for (p, t) in pred.iter().zip(y) {
        sse += (p - t) * (p - t);
        sae += (p - t).abs();
        sst += (t - mean) * (t - mean);
    }
    let mse = sse / n;
    let r2 = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
    vec![
        (Metric::R2, r2),
        (Metric::Rmse, mse.sqrt()),
        (Metric::Mae, sae / n),
        (Metric::Mse, mse),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    #[test]
    fn binary_scores_match_hand_computed_values() {
        let p = array![[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]];
        let y = array![0.0, 0.0, 1.0, 1.0];
        let m = evaluate(Problem::Classification, &Output::Classes(p), y.view(), 2);
        assert_eq!(value(&m, Metric::Accuracy), 0.75);
        // Positive class 1: tp 2, fp 1, fn 0.
        assert!((value(&m, Metric::Precision) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(value(&m, Metric::Recall), 1.0);
        assert!((value(&m, Metric::F1) - 0.8).abs() < 1e-12);
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.6,0.65,0.8]) == 1.0
        assert_eq!(value(&m, Metric::RocAuc), 1.0);
        let ll = -(0.9f64.ln() + 0.4f64.ln() + 0.65f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((value(&m, Metric::LogLoss) - ll).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(binary_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(binary_auc(&[0.5, 0.5], &[true, true]), None);
        let curve = roc_curve(&[0.9, 0.8, 0.3], &[true, false, true]);
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn regression_scores() {
        let pred: Array1<f64> = array![2.5, 0.0, 2.0, 8.0];
        let y = array![3.0, -0.5, 2.0, 7.0];
        let m = evaluate(Problem::Regression, &Output::Values(pred), y.view(), 0);
        // sklearn: r2_score = 0.9486081370449679, mse = 0.375, mae = 0.5
        assert!((value(&m, Metric::R2) - 0.9486081370449679).abs() < 1e-12);
        assert_eq!(value(&m, Metric::Mse), 0.375);
        assert_eq!(value(&m, Metric::Mae), 0.5);
        assert!(Metric::Rmse.loss(1.0) < Metric::Rmse.loss(2.0));
        assert!(Metric::R2.loss(0.9) < Metric::R2.loss(0.5));
    }
}
