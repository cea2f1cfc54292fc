//! Fitted models as pipeline parameters (`crate::pipeline::Estimator`), for the ONNX exporter.
//!
//! Thresholds: the features are `f32` values (the pipeline computes them in `f32`, as ONNX
//! does) and the libraries split on `f64` midpoints. A `<` threshold is rounded up and a `<=`
//! threshold down to the nearest `f32`, which sends every `f32` input down the same branch as
//! the library's `f64` comparison.

use serde_json::Value as Json;

use super::{Boosted, Fitted, Problem};
use crate::pipeline::{BranchMode, Estimator, PostTransform, Tree, TreeNode};

pub(super) fn export(fitted: &Fitted, n_classes: usize) -> Option<Estimator> {
    match fitted {
        Fitted::Logistic(m) => {
            let pos = m.labels().pos.class;
            let n_features = m.params().len();
            let mut coefficients = vec![vec![0.0f32; n_features]; 2];
            let mut intercepts = vec![0.0f32; 2];
            coefficients[pos] = m.params().iter().map(|v| *v as f32).collect();
            intercepts[pos] = m.intercept() as f32;
            Some(Estimator::Linear {
                coefficients,
                intercepts,
                post: PostTransform::Softmax,
            })
        }
        Fitted::SmartLogistic(m) => {
            use smartcore::linalg::basic::arrays::Array;
            let (w, b) = (m.coefficients(), m.intercept());
            let n_features = w.shape().1;
            let mut coefficients = vec![vec![0.0f32; n_features]; n_classes];
            let mut intercepts = vec![-1.0e30f32; n_classes];
            for (j, class) in m.classes().iter().enumerate() {
                let c = *class as usize;
                coefficients[c] = (0..n_features).map(|f| *w.get((j, f)) as f32).collect();
                intercepts[c] = *b.get((j, 0)) as f32;
            }
            Some(Estimator::Linear {
                coefficients,
                intercepts,
                post: PostTransform::Softmax,
            })
        }
        Fitted::Linear(m) => Some(linear_regression(m.params().iter(), m.intercept())),
        Fitted::ElasticNet(m) => Some(linear_regression(m.hyperplane().iter(), m.intercept())),
        Fitted::Tree(m) => Some(Estimator::Trees {
            trees: vec![linfa_tree(m, None, n_classes)],
            weight: 1.0,
            base_values: vec![0.0; n_classes],
            post: PostTransform::None,
        }),
        Fitted::Forest(m) => Some(Estimator::Trees {
            trees: m
                .models
                .iter()
                .zip(&m.model_features)
                .map(|(t, features)| linfa_tree(t, Some(features), n_classes))
                .collect(),
            weight: 1.0 / m.models.len().max(1) as f32,
            base_values: vec![0.0; n_classes],
            post: PostTransform::None,
        }),
        Fitted::RegressionTree(m) => {
            let trees = smartcore_trees(m, 0, 1)?;
            Some(Estimator::Trees {
                trees,
                weight: 1.0,
                base_values: vec![0.0],
                post: PostTransform::None,
            })
        }
        Fitted::RegressionForest(m) => {
            let trees = smartcore_trees(m, 0, 1)?;
            let weight = 1.0 / trees.len().max(1) as f32;
            Some(Estimator::Trees {
                trees,
                weight,
                base_values: vec![0.0],
                post: PostTransform::None,
            })
        }
        Fitted::Boosted(m) => boosted(m, n_classes),
        Fitted::KnnClassifier(_)
        | Fitted::KnnRegressor(_)
        | Fitted::NaiveBayes(_)
        | Fitted::Svm(_) => None,
    }
}

fn linear_regression<'a>(coefficients: impl Iterator<Item = &'a f64>, intercept: f64) -> Estimator {
    Estimator::Linear {
        coefficients: vec![coefficients.map(|v| *v as f32).collect()],
        intercepts: vec![intercept as f32],
        post: PostTransform::None,
    }
}

/// The smallest `f32` at or above `t`.
pub(crate) fn f32_at_or_above(t: f64) -> f32 {
    let c = t as f32;
    if (c as f64) < t {
        c.next_up()
    } else {
        c
    }
}

/// The largest `f32` at or below `t`.
pub(crate) fn f32_at_or_below(t: f64) -> f32 {
    let c = t as f32;
    if (c as f64) > t {
        c.next_down()
    } else {
        c
    }
}

fn linfa_tree(
    tree: &linfa_trees::DecisionTree<f64, usize>,
    features: Option<&Vec<usize>>,
    n_classes: usize,
) -> Tree {
    fn walk(
        node: &linfa_trees::TreeNode<f64, usize>,
        features: Option<&Vec<usize>>,
        n_classes: usize,
        out: &mut Vec<TreeNode>,
    ) -> usize {
        let index = out.len();
        let children = node.children();
        let (left, right) = match (children.first(), children.get(1)) {
            (Some(Some(l)), Some(Some(r))) if !node.is_leaf() => (l, r),
            _ => {
                let mut values = vec![0.0f32; n_classes];
                if let Some(c) = node.prediction() {
                    if c < n_classes {
                        values[c] = 1.0;
                    }
                }
                out.push(TreeNode::Leaf { values });
                return index;
            }
        };
        let (feature, threshold, _) = node.split();
        let feature = features.map_or(feature, |f| f[feature]);
        out.push(TreeNode::Leaf { values: Vec::new() });
        let l = walk(left, features, n_classes, out);
        let r = walk(right, features, n_classes, out);
        out[index] = TreeNode::Branch {
            feature,
            threshold: f32_at_or_above(threshold),
            mode: BranchMode::Lt,
            left: l,
            right: r,
        };
        index
    }
    let mut nodes = Vec::new();
    walk(tree.root_node(), features, n_classes, &mut nodes);
    Tree { nodes }
}

/// smartcore keeps its tree nodes private but serializes them: read every `nodes` array of the
/// model's serde form. A leaf's output goes to `values[slot]` of `width` values.
fn smartcore_trees<T: serde::Serialize>(model: &T, slot: usize, width: usize) -> Option<Vec<Tree>> {
    fn collect(v: &Json, out: &mut Vec<Vec<Json>>) {
        match v {
            Json::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("nodes", Json::Array(nodes))
                            if nodes
                                .first()
                                .is_some_and(|n| n.get("split_feature").is_some()) =>
                        {
                            out.push(nodes.clone())
                        }
                        _ => collect(child, out),
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    let json = serde_json::to_value(model).ok()?;
    let mut raw = Vec::new();
    collect(&json, &mut raw);
    if raw.is_empty() {
        return None;
    }
    raw.iter()
        .map(|nodes| {
            let nodes = nodes
                .iter()
                .map(|n| {
                    let child = |k: &str| n.get(k).and_then(Json::as_u64).map(|v| v as usize);
                    match (child("true_child"), child("false_child")) {
                        (Some(left), Some(right)) => Some(TreeNode::Branch {
                            feature: n.get("split_feature")?.as_u64()? as usize,
                            threshold: f32_at_or_below(n.get("split_value")?.as_f64()?),
                            mode: BranchMode::Leq,
                            left,
                            right,
                        }),
                        _ => {
                            let mut values = vec![0.0f32; width];
                            values[slot] = n.get("output")?.as_f64()? as f32;
                            Some(TreeNode::Leaf { values })
                        }
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Tree { nodes })
        })
        .collect()
}

fn boosted(m: &Boosted, n_classes: usize) -> Option<Estimator> {
    let k = m.base.len();
    let (width, base_values, post) = match m.problem {
        Problem::Regression => (1, vec![m.base[0] as f32], PostTransform::None),
        // Two classes: scores [0, F] under softmax are [1 - sigmoid(F), sigmoid(F)].
        Problem::Classification if k == 1 => {
            (2, vec![0.0, m.base[0] as f32], PostTransform::Softmax)
        }
        Problem::Classification => (
            n_classes,
            m.base.iter().map(|v| *v as f32).collect(),
            PostTransform::Softmax,
        ),
    };
    let mut trees = Vec::new();
    for round in &m.rounds {
        for (j, tree) in round.iter().enumerate() {
            let slot = if width == 2 { 1 } else { j };
            trees.extend(smartcore_trees(tree, slot, width)?);
        }
    }
    Some(Estimator::Trees {
        trees,
        weight: m.learning_rate as f32,
        base_values,
        post,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_keep_every_f32_on_its_branch() {
        for t in [0.1f64, -2.5, 1.0 / 3.0, 1e-9, 123456.789] {
            let up = f32_at_or_above(t);
            assert!(up as f64 >= t && up.next_down() as f64 <= t);
            let down = f32_at_or_below(t);
            assert!(down as f64 <= t && down.next_up() as f64 >= t);
        }
    }
}
