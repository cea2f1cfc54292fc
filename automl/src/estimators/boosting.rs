//! Gradient boosting over smartcore's regression trees: squared loss for regression, log loss
//! (one tree per round) for two classes and softmax loss (one tree per class per round) for
//! more. Exported as a tree ensemble whose leaf values are scaled by the learning rate.

use ndarray::{Array1, Array2, ArrayView2};
use smartcore::tree::decision_tree_regressor::DecisionTreeRegressorParameters;

use super::{dense, Output, Params, Problem, SmartTree, TrainSet};

pub struct Boosted {
    pub problem: Problem,
    pub n_classes: usize,
    /// Initial score per output (one for regression and two classes, else one per class).
    pub base: Vec<f64>,
    /// Per round, one tree per output.
    pub rounds: Vec<Vec<SmartTree>>,
    pub learning_rate: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn softmax_rows(scores: &mut Array2<f64>) {
    for mut row in scores.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

impl Boosted {
    fn outputs(problem: Problem, n_classes: usize) -> usize {
        match problem {
            Problem::Regression => 1,
            Problem::Classification if n_classes == 2 => 1,
            Problem::Classification => n_classes,
        }
    }

    pub fn fit(problem: Problem, params: &Params, data: &TrainSet) -> Result<Boosted, String> {
        let n = data.x.nrows();
        let k = Self::outputs(problem, data.n_classes);
        let x = dense(data.x);
        let rounds_wanted = params.int("n_estimators").max(1) as usize;
        let learning_rate = params.float("learning_rate");
        let tree_params = DecisionTreeRegressorParameters::default()
            .with_max_depth(params.int("max_depth").max(1) as u16)
            .with_min_samples_leaf(params.int("min_samples_leaf").max(1) as usize);
        // Targets per output: y itself, or the one-hot class indicator.
        let targets: Vec<Array1<f64>> = match problem {
            Problem::Regression => vec![data.y.to_owned()],
            Problem::Classification if k == 1 => vec![data.y.mapv(|c| f64::from(c == 1.0))],
            Problem::Classification => (0..k)
                .map(|c| data.y.mapv(|v| f64::from(v as usize == c)))
                .collect(),
        };
        let base: Vec<f64> = targets
            .iter()
            .map(|t| {
                let mean = t.mean().unwrap_or(0.0);
                match problem {
                    Problem::Regression => mean,
                    Problem::Classification => {
                        let p = mean.clamp(1e-6, 1.0 - 1e-6);
                        if k == 1 {
                            (p / (1.0 - p)).ln()
                        } else {
                            p.ln()
                        }
                    }
                }
            })
            .collect();
        let mut scores = Array2::from_shape_fn((n, k), |(_, j)| base[j]);
        let mut rounds = Vec::with_capacity(rounds_wanted);
        for _ in 0..rounds_wanted {
            // Negative gradients of the loss at the current scores.
            let residuals: Vec<Vec<f64>> = match problem {
                Problem::Regression => vec![(&targets[0] - &scores.column(0)).to_vec()],
                Problem::Classification if k == 1 => vec![targets[0]
                    .iter()
                    .zip(scores.column(0))
                    .map(|(t, s)| t - sigmoid(*s))
                    .collect()],
                Problem::Classification => {
                    let mut p = scores.clone();
                    softmax_rows(&mut p);
                    (0..k)
                        .map(|j| (&targets[j] - &p.column(j)).to_vec())
                        .collect()
                }
            };
            let mut trees = Vec::with_capacity(k);
            for (j, r) in residuals.iter().enumerate() {
                let tree = SmartTree::fit(&x, r, tree_params.clone())
                    .map_err(|e| format!("gradient_boosting failed to fit: {e}"))?;
                let step = tree.predict(&x).map_err(|e| e.to_string())?;
                for (s, v) in scores.column_mut(j).iter_mut().zip(step) {
                    *s += learning_rate * v;
                }
                trees.push(tree);
            }
            rounds.push(trees);
        }
        Ok(Boosted {
            problem,
            n_classes: data.n_classes,
            base,
            rounds,
            learning_rate,
        })
    }

    /// Raw scores: base plus the learning-rate-scaled sum of the trees.
    pub fn scores(&self, x: ArrayView2<f64>) -> Result<Array2<f64>, String> {
        let k = self.base.len();
        let m = dense(x);
        let mut scores = Array2::from_shape_fn((x.nrows(), k), |(_, j)| self.base[j]);
        for trees in &self.rounds {
            for (j, tree) in trees.iter().enumerate() {
                let step = tree.predict(&m).map_err(|e| e.to_string())?;
                for (s, v) in scores.column_mut(j).iter_mut().zip(step) {
                    *s += self.learning_rate * v;
                }
            }
        }
        Ok(scores)
    }

    pub fn predict(&self, x: ArrayView2<f64>) -> Result<Output, String> {
        let mut scores = self.scores(x)?;
        Ok(match self.problem {
            Problem::Regression => Output::Values(scores.column(0).to_owned()),
            Problem::Classification if self.base.len() == 1 => {
                let mut p = Array2::zeros((x.nrows(), 2));
                for (i, s) in scores.column(0).iter().enumerate() {
                    let p1 = sigmoid(*s);
                    p[[i, 0]] = 1.0 - p1;
                    p[[i, 1]] = p1;
                }
                Output::Classes(p)
            }
            Problem::Classification => {
                softmax_rows(&mut scores);
                Output::Classes(scores)
            }
        })
    }
}
