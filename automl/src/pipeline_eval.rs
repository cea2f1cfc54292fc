//! `Pipeline::evaluate`: the exported ONNX graph's answers computed in Rust, step by step in
//! the same `f32` arithmetic ONNX Runtime's operators use:
//!
//! - LabelEncoder (boolean-text inputs): a boolean word becomes 1.0 / 0.0, other text NaN.
//! - Imputer: NaN becomes `impute`; Scaler: `(x - offset) * scale`.
//! - OneHotEncoder (`zeros = 1`): 1.0 at the category's index (the last one if a category is
//!   listed twice, as ONNX Runtime's lookup table keeps it), all zeros for "" or an unseen value.
//! - Linear: `Σ_f coefficients[t][f] * x[f]`, then `+ intercepts[t]`.
//! - Trees: from node 0, `left` when `x < threshold` (`Lt`) / `x <= threshold` (`Leq`), else
//!   `right` (so NaN goes right); the leaves' `weight * value` products summed tree by tree
//!   from 0.0, then `+ base_values[t]`.
//! - Label: the first class with the highest raw score (before the post transform).
//! - Post transform: softmax `exp(s - max) / Σ`, logistic `1 / (1 + exp(-|s|))` mirrored for
//!   negative scores.
//!
//! Different summation orders (ONNX Runtime's GEMM, its softmax kernel) can move the last bits,
//! so comparisons with ONNX Runtime allow a small tolerance.

use crate::onnx::leaf_weight;
use crate::pipeline::{
    BranchMode, Estimator, FeatureStep, Pipeline, PostTransform, Prediction, RawValue, Task, Tree,
    TreeNode,
};

impl Pipeline {
    /// The model features of one raw row (`row[j]` is the value of input column `j`); a
    /// missing or mistyped value counts as missing (NaN / "").
    pub fn features(&self, row: &[RawValue]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n_features());
        for step in &self.features {
            match step {
                FeatureStep::Numeric {
                    input,
                    impute,
                    offset,
                    scale,
                } => {
                    let x = row.get(*input).map_or(f32::NAN, RawValue::number);
                    let x = if x.is_nan() { *impute } else { x };
                    out.push((x - offset) * scale);
                }
                FeatureStep::OneHot { input, categories } => {
                    let text = match row.get(*input) {
                        Some(RawValue::Text(s)) => s.as_str(),
                        _ => "",
                    };
                    let hit = categories.iter().rposition(|c| c == text);
                    out.extend((0..categories.len()).map(
                        |k| {
                            if Some(k) == hit {
                                1.0
                            } else {
                                0.0
                            }
                        },
                    ));
                }
            }
        }
        out
    }

    /// What the exported model answers for these raw rows.
    pub fn evaluate(&self, rows: &[Vec<RawValue>]) -> Prediction {
        let features: Vec<Vec<f32>> = rows.iter().map(|r| self.features(r)).collect();
        self.evaluate_features(&features)
    }

    /// The estimator part alone, on rows of model features (as [`Pipeline::features`] builds
    /// them).
    pub fn evaluate_features(&self, features: &[Vec<f32>]) -> Prediction {
        let post = match &self.estimator {
            Estimator::Linear { post, .. } | Estimator::Trees { post, .. } => *post,
        };
        match &self.task {
            Task::Classification { labels } => {
                let mut classes = Vec::with_capacity(features.len());
                let mut probabilities = Vec::with_capacity(features.len());
                for x in features {
                    let mut scores = self.raw_scores(x, labels.len());
                    classes.push(first_argmax(&scores));
                    apply_post(post, &mut scores);
                    probabilities.push(scores);
                }
                Prediction::Classification {
                    classes,
                    probabilities,
                }
            }
            Task::Regression => Prediction::Regression {
                values: features
                    .iter()
                    .map(|x| {
                        let mut scores = self.raw_scores(x, 1);
                        scores.truncate(1);
                        apply_post(post, &mut scores);
                        scores[0]
                    })
                    .collect(),
            },
        }
    }

    /// The estimator's scores before the post transform: one per class for classification
    /// (`n_outputs` classes), one for regression.
    fn raw_scores(&self, x: &[f32], n_outputs: usize) -> Vec<f32> {
        match &self.estimator {
            Estimator::Linear {
                coefficients,
                intercepts,
                ..
            } => {
                let rows = match self.task {
                    Task::Classification { .. } => coefficients.len(),
                    Task::Regression => 1,
                };
                (0..rows)
                    .map(|t| {
                        let row = coefficients.get(t).map(Vec::as_slice).unwrap_or(&[]);
                        let mut dot = 0.0f32;
                        for (f, xf) in x.iter().enumerate() {
                            dot += row.get(f).copied().unwrap_or(0.0) * xf;
                        }
                        dot + intercepts.get(t).copied().unwrap_or(0.0)
                    })
                    .collect()
            }
            Estimator::Trees {
                trees,
                weight,
                base_values,
                ..
            } => {
                let mut sums = vec![0.0f32; n_outputs];
                for tree in trees {
                    if let Some(values) = leaf(tree, x) {
                        for (t, sum) in sums.iter_mut().enumerate() {
                            *sum += leaf_weight(*weight, values.get(t).copied());
                        }
                    }
                }
                for (t, sum) in sums.iter_mut().enumerate() {
                    *sum += base_values.get(t).copied().unwrap_or(0.0);
                }
                sums
            }
        }
    }
}

/// The values of the leaf `x` reaches, or `None` for an empty or malformed tree.
fn leaf<'t>(tree: &'t Tree, x: &[f32]) -> Option<&'t [f32]> {
    let mut i = 0;
    // A well-formed tree reaches a leaf in fewer steps than it has nodes.
    for _ in 0..=tree.nodes.len() {
        match tree.nodes.get(i)? {
            TreeNode::Leaf { values } => return Some(values),
            TreeNode::Branch {
                feature,
                threshold,
                mode,
                left,
                right,
            } => {
                let v = x.get(*feature).copied().unwrap_or(f32::NAN);
                let go_left = match mode {
                    BranchMode::Lt => v < *threshold,
                    BranchMode::Leq => v <= *threshold,
                };
                i = if go_left { *left } else { *right };
            }
        }
    }
    None
}

/// The index of the first maximum (strict `>`, so ties and NaN keep the earlier index).
fn first_argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate().skip(1) {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

fn apply_post(post: PostTransform, scores: &mut [f32]) {
    match post {
        PostTransform::None => {}
        PostTransform::Softmax => {
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            for s in scores.iter_mut() {
                *s /= sum;
            }
        }
        PostTransform::Logistic => {
            for s in scores.iter_mut() {
                let v = 1.0 / (1.0 + (-s.abs()).exp());
                *s = if *s < 0.0 { 1.0 - v } else { v };
            }
        }
    }
}
