//! The estimators a sweep can try, their hyperparameter spaces, and the fitted models with
//! their predictions and (where the estimator allows it) their export as pipeline parameters.
//!
//! Every estimator sees the same feature matrix (imputed, standardized, one-hot encoded; the
//! tree learners are indifferent to the scaling). Configurations live in the unit cube: one
//! coordinate in [0, 1] per hyperparameter, decoded on a log or linear scale, so the search can
//! step in every space alike.

mod boosting;
mod export;

use std::fmt;

use linfa::prelude::*;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use smartcore::linalg::basic::matrix::DenseMatrix;

pub use boosting::Boosted;

use crate::pipeline::Estimator as ExportedEstimator;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    Classification,
    Regression,
}

/// The estimators, by the names the API and the runs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    LogisticRegression,
    LinearRegression,
    ElasticNet,
    DecisionTree,
    RandomForest,
    GradientBoosting,
    Knn,
    GaussianNb,
    Svm,
}

/// SVM training is quadratic in rows: it is searched on at most this many training rows.
pub const SVM_MAX_ROWS: usize = 5000;

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::LogisticRegression => "logistic_regression",
            Algorithm::LinearRegression => "linear_regression",
            Algorithm::ElasticNet => "elastic_net",
            Algorithm::DecisionTree => "decision_tree",
            Algorithm::RandomForest => "random_forest",
            Algorithm::GradientBoosting => "gradient_boosting",
            Algorithm::Knn => "knn",
            Algorithm::GaussianNb => "gaussian_nb",
            Algorithm::Svm => "svm",
        }
    }

    /// Which library fits it.
    pub fn library(self, problem: Problem) -> &'static str {
        match (self, problem) {
            (Algorithm::LogisticRegression, _) => "linfa-logistic (two classes), smartcore (more)",
            (Algorithm::LinearRegression, _) => "linfa-linear",
            (Algorithm::ElasticNet, _) => "linfa-elasticnet",
            (Algorithm::DecisionTree, Problem::Classification) => "linfa-trees",
            (Algorithm::RandomForest, Problem::Classification) => "linfa-ensemble",
            (Algorithm::DecisionTree | Algorithm::RandomForest, Problem::Regression) => "smartcore",
            (Algorithm::GradientBoosting, _) => "ferroflow (smartcore regression trees)",
            (Algorithm::Knn, _) => "smartcore",
            (Algorithm::GaussianNb, _) => "linfa-bayes",
            (Algorithm::Svm, _) => "linfa-svm",
        }
    }

    /// Whether the fitted model can be written as an ONNX graph.
    pub fn exportable(self) -> bool {
        !matches!(
            self,
            Algorithm::Knn | Algorithm::GaussianNb | Algorithm::Svm
        )
    }

    pub fn all(problem: Problem) -> &'static [Algorithm] {
        match problem {
            Problem::Classification => &[
                Algorithm::LogisticRegression,
                Algorithm::DecisionTree,
                Algorithm::RandomForest,
                Algorithm::GradientBoosting,
                Algorithm::Knn,
                Algorithm::GaussianNb,
                Algorithm::Svm,
            ],
            Problem::Regression => &[
                Algorithm::LinearRegression,
                Algorithm::ElasticNet,
                Algorithm::DecisionTree,
                Algorithm::RandomForest,
                Algorithm::GradientBoosting,
                Algorithm::Knn,
            ],
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        [
            Algorithm::LogisticRegression,
            Algorithm::LinearRegression,
            Algorithm::ElasticNet,
            Algorithm::DecisionTree,
            Algorithm::RandomForest,
            Algorithm::GradientBoosting,
            Algorithm::Knn,
            Algorithm::GaussianNb,
            Algorithm::Svm,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One hyperparameter: its range, scale, and the coordinate of its cheapest useful value.
#[derive(Debug, Clone, Copy)]
pub struct Dim {
    pub name: &'static str,
    pub kind: DimKind,
    /// Where the search starts (FLAML's low-cost initial point).
    pub start: f64,
}

#[derive(Debug, Clone, Copy)]
pub enum DimKind {
    Int { lo: f64, hi: f64, log: bool },
    Float { lo: f64, hi: f64, log: bool },
    Choice(&'static [&'static str]),
}

/// A decoded hyperparameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Choice(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{}", format_float(*v)),
            Value::Choice(v) => f.write_str(v),
        }
    }
}

fn format_float(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.4e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

impl Dim {
    /// The value at unit coordinate `u`.
    pub fn decode(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        let scale = |lo: f64, hi: f64, log: bool| {
            if log {
                (lo.ln() + u * (hi.ln() - lo.ln())).exp()
            } else {
                lo + u * (hi - lo)
            }
        };
        match self.kind {
            DimKind::Int { lo, hi, log } => {
                Value::Int(scale(lo, hi, log).round().clamp(lo, hi) as i64)
            }
            DimKind::Float { lo, hi, log } => Value::Float(scale(lo, hi, log)),
            DimKind::Choice(options) => {
                let i = ((u * options.len() as f64).floor() as usize).min(options.len() - 1);
                Value::Choice(options[i])
            }
        }
    }
}

const fn int(name: &'static str, lo: f64, hi: f64, log: bool, start: f64) -> Dim {
    Dim {
        name,
        kind: DimKind::Int { lo, hi, log },
        start,
    }
}

const fn float(name: &'static str, lo: f64, hi: f64, log: bool, start: f64) -> Dim {
    Dim {
        name,
        kind: DimKind::Float { lo, hi, log },
        start,
    }
}

const fn choice(name: &'static str, options: &'static [&'static str], start: f64) -> Dim {
    Dim {
        name,
        kind: DimKind::Choice(options),
        start,
    }
}

/// The search space of an estimator. Starting points are the cheap corner: few trees, shallow
/// depth, strong regularization.
pub fn space(algorithm: Algorithm, problem: Problem) -> Vec<Dim> {
    match (algorithm, problem) {
        (Algorithm::LogisticRegression, _) => vec![float("alpha", 1e-4, 100.0, true, 0.55)],
        (Algorithm::LinearRegression, _) | (Algorithm::GaussianNb, _) => vec![],
        (Algorithm::ElasticNet, _) => vec![
            float("penalty", 1e-4, 10.0, true, 0.5),
            float("l1_ratio", 0.0, 1.0, false, 0.5),
        ],
        (Algorithm::DecisionTree, Problem::Classification) => vec![
            int("max_depth", 2.0, 30.0, true, 0.2),
            int("min_weight_leaf", 1.0, 64.0, true, 0.5),
            choice("criterion", &["gini", "entropy"], 0.0),
        ],
        (Algorithm::DecisionTree, Problem::Regression) => vec![
            int("max_depth", 2.0, 30.0, true, 0.2),
            int("min_samples_leaf", 1.0, 64.0, true, 0.5),
        ],
        (Algorithm::RandomForest, Problem::Classification) => vec![
            int("n_estimators", 4.0, 256.0, true, 0.0),
            int("max_depth", 3.0, 40.0, true, 0.5),
            float("feature_fraction", 0.2, 1.0, false, 0.5),
        ],
        (Algorithm::RandomForest, Problem::Regression) => vec![
            int("n_estimators", 4.0, 256.0, true, 0.0),
            int("max_depth", 3.0, 40.0, true, 0.5),
            float("feature_fraction", 0.2, 1.0, false, 0.5),
            int("min_samples_leaf", 1.0, 32.0, true, 0.0),
        ],
        (Algorithm::GradientBoosting, _) => vec![
            int("n_estimators", 4.0, 512.0, true, 0.0),
            float("learning_rate", 0.01, 1.0, true, 0.6),
            int("max_depth", 1.0, 10.0, false, 0.25),
            int("min_samples_leaf", 1.0, 64.0, true, 0.3),
        ],
        (Algorithm::Svm, _) => vec![
            float("c", 0.01, 100.0, true, 0.5),
            float("kernel_width", 0.1, 100.0, true, 0.5),
        ],
        (Algorithm::Knn, _) => vec![
            int("n_neighbors", 2.0, 50.0, true, 0.4),
            choice("weights", &["uniform", "distance"], 0.0),
        ],
    }
}

/// A configuration decoded into named values.
#[derive(Debug, Clone)]
pub struct Params(pub Vec<(&'static str, Value)>);

impl Params {
    pub fn decode(space: &[Dim], config: &[f64]) -> Params {
        Params(
            space
                .iter()
                .zip(config)
                .map(|(d, u)| (d.name, d.decode(*u)))
                .collect(),
        )
    }

    fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(v)) => *v,
            Some(Value::Float(v)) => *v as i64,
            _ => 0,
        }
    }

    fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Value::Float(v)) => *v,
            Some(Value::Int(v)) => *v as f64,
            _ => 0.0,
        }
    }

    fn choice(&self, name: &str) -> &'static str {
        match self.get(name) {
            Some(Value::Choice(v)) => v,
            _ => "",
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A rough relative cost, for keeping the cheap configurations first and the budget.
    pub fn cost_factor(&self) -> f64 {
        let trees = self
            .get("n_estimators")
            .map_or(1.0, |_| self.int("n_estimators") as f64);
        let depth = self
            .get("max_depth")
            .map_or(1.0, |_| (self.int("max_depth") as f64).min(12.0) / 4.0);
        trees * depth.max(0.25)
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// Predictions of a fitted model on a feature matrix.
#[derive(Debug, Clone)]
pub enum Output {
    /// Per row, one probability per class (rows sum to 1).
    Classes(Array2<f64>),
    Values(Array1<f64>),
}

impl Output {
    /// The predicted class per row: the first class with the highest probability.
    pub fn classes(&self) -> Vec<usize> {
        match self {
            Output::Classes(p) => p.rows().into_iter().map(argmax).collect(),
            Output::Values(_) => Vec::new(),
        }
    }
}

pub fn argmax(row: ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Training data for one fit: features and targets (class indexes as f64 for classification).
pub struct TrainSet<'a> {
    pub x: ArrayView2<'a, f64>,
    pub y: ArrayView1<'a, f64>,
    pub n_classes: usize,
}

/// A fitted model.
pub enum Fitted {
    Logistic(linfa_logistic::FittedLogisticRegression<f64, usize>),
    SmartLogistic(SmartLogistic),
    Linear(linfa_linear::FittedLinearRegression<f64>),
    ElasticNet(linfa_elasticnet::ElasticNet<f64>),
    Tree(linfa_trees::DecisionTree<f64, usize>),
    Forest(linfa_ensemble::EnsembleLearner<linfa_trees::DecisionTree<f64, usize>>),
    RegressionTree(SmartTree),
    RegressionForest(SmartForest),
    Boosted(Boosted),
    KnnClassifier(SmartKnnClassifier),
    KnnRegressor(SmartKnnRegressor),
    NaiveBayes(linfa_bayes::GaussianNb<f64, usize>),
    Svm(linfa_svm::Svm<f64, linfa::dataset::Pr>),
}

pub type SmartLogistic = smartcore::linear::logistic_regression::LogisticRegression<
    f64,
    i32,
    DenseMatrix<f64>,
    Vec<i32>,
>;
pub type SmartTree = smartcore::tree::decision_tree_regressor::DecisionTreeRegressor<
    f64,
    f64,
    DenseMatrix<f64>,
    Vec<f64>,
>;
pub type SmartForest = smartcore::ensemble::random_forest_regressor::RandomForestRegressor<
    f64,
    f64,
    DenseMatrix<f64>,
    Vec<f64>,
>;
pub type SmartKnnClassifier = smartcore::neighbors::knn_classifier::KNNClassifier<
    f64,
    u32,
    DenseMatrix<f64>,
    Vec<u32>,
    smartcore::metrics::distance::euclidian::Euclidian<f64>,
>;
pub type SmartKnnRegressor = smartcore::neighbors::knn_regressor::KNNRegressor<
    f64,
    f64,
    DenseMatrix<f64>,
    Vec<f64>,
    smartcore::metrics::distance::euclidian::Euclidian<f64>,
>;

pub(crate) fn dense(x: ArrayView2<f64>) -> DenseMatrix<f64> {
    let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    DenseMatrix::from_2d_vec(&rows).expect("a rectangular matrix")
}

fn knn_weight(p: &Params) -> smartcore::neighbors::KNNWeightFunction {
    if p.choice("weights") == "distance" {
        smartcore::neighbors::KNNWeightFunction::Distance
    } else {
        smartcore::neighbors::KNNWeightFunction::Uniform
    }
}

/// Fit one configuration. Errors are the library's message (a failed trial, not a failed sweep).
pub fn fit(
    algorithm: Algorithm,
    problem: Problem,
    params: &Params,
    data: &TrainSet,
    seed: u64,
) -> Result<Fitted, String> {
    let x = data.x.to_owned();
    let labels = || -> Array1<usize> { data.y.mapv(|v| v as usize) };
    let err = |e: &dyn fmt::Display| format!("{algorithm} failed to fit: {e}");
    match (algorithm, problem) {
        (Algorithm::LogisticRegression, Problem::Classification) => {
            let ds = Dataset::new(x, labels());
            if data.n_classes == 2 {
                linfa_logistic::LogisticRegression::default()
                    .alpha(params.float("alpha"))
                    .max_iterations(200)
                    .fit(&ds)
                    .map(Fitted::Logistic)
                    .map_err(|e| err(&e))
            } else {
                // linfa's multinomial solver stops short of the optimum (digits: 0.92 train
                // accuracy at any iteration count); smartcore's converges.
                let y: Vec<i32> = data.y.iter().map(|v| *v as i32).collect();
                let p =
                    smartcore::linear::logistic_regression::LogisticRegressionParameters::default()
                        .with_alpha(params.float("alpha"));
                SmartLogistic::fit(&dense(data.x), &y, p)
                    .map(Fitted::SmartLogistic)
                    .map_err(|e| err(&e))
            }
        }
        (Algorithm::LinearRegression, Problem::Regression) => {
            let ds = Dataset::new(x, data.y.to_owned());
            linfa_linear::LinearRegression::new()
                .fit(&ds)
                .map(Fitted::Linear)
                .map_err(|e| err(&e))
        }
        (Algorithm::ElasticNet, Problem::Regression) => {
            let ds = Dataset::new(x, data.y.to_owned());
            linfa_elasticnet::ElasticNet::params()
                .penalty(params.float("penalty"))
                .l1_ratio(params.float("l1_ratio"))
                .max_iterations(1000)
                .fit(&ds)
                .map(Fitted::ElasticNet)
                .map_err(|e| err(&e))
        }
        (Algorithm::DecisionTree, Problem::Classification) => {
            let ds = Dataset::new(x, labels());
            tree_params(params)
                .fit(&ds)
                .map(Fitted::Tree)
                .map_err(|e| err(&e))
        }
        (Algorithm::RandomForest, Problem::Classification) => {
            let ds = Dataset::new(x, labels());
            let n = params.int("n_estimators").max(1) as usize;
            let tree = linfa_trees::DecisionTree::params()
                .max_depth(Some(params.int("max_depth").max(1) as usize))
                .min_weight_leaf(1.0);
            linfa_ensemble::EnsembleLearnerParams::new_fixed_rng(tree, StdRng::seed_from_u64(seed))
                .ensemble_size(n)
                .bootstrap_proportion(1.0)
                .feature_proportion(params.float("feature_fraction"))
                .fit(&ds)
                .map(Fitted::Forest)
                .map_err(|e| err(&e))
        }
        (Algorithm::DecisionTree, Problem::Regression) => {
            let p =
                smartcore::tree::decision_tree_regressor::DecisionTreeRegressorParameters::default(
                )
                .with_max_depth(params.int("max_depth").max(1) as u16)
                .with_min_samples_leaf(params.int("min_samples_leaf").max(1) as usize);
            SmartTree::fit(&dense(data.x), &data.y.to_vec(), p)
                .map(Fitted::RegressionTree)
                .map_err(|e| err(&e))
        }
        (Algorithm::RandomForest, Problem::Regression) => {
            let n_features = data.x.ncols();
            let m = ((n_features as f64 * params.float("feature_fraction")).ceil() as usize)
                .clamp(1, n_features);
            let p = smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters::default()
                .with_n_trees(params.int("n_estimators").max(1) as usize)
                .with_max_depth(params.int("max_depth").max(1) as u16)
                .with_min_samples_leaf(params.int("min_samples_leaf").max(1) as usize)
                .with_m(m)
                .with_seed(seed);
            SmartForest::fit(&dense(data.x), &data.y.to_vec(), p)
                .map(Fitted::RegressionForest)
                .map_err(|e| err(&e))
        }
        (Algorithm::GradientBoosting, _) => {
            Boosted::fit(problem, params, data).map(Fitted::Boosted)
        }
        (Algorithm::Knn, Problem::Classification) => {
            let y: Vec<u32> = data.y.iter().map(|v| *v as u32).collect();
            let p = smartcore::neighbors::knn_classifier::KNNClassifierParameters::default()
                .with_k(params.int("n_neighbors").max(1) as usize)
                .with_weight(knn_weight(params));
            SmartKnnClassifier::fit(&dense(data.x), &y, p)
                .map(Fitted::KnnClassifier)
                .map_err(|e| err(&e))
        }
        (Algorithm::Knn, Problem::Regression) => {
            let p = smartcore::neighbors::knn_regressor::KNNRegressorParameters::default()
                .with_k(params.int("n_neighbors").max(1) as usize)
                .with_weight(knn_weight(params));
            SmartKnnRegressor::fit(&dense(data.x), &data.y.to_vec(), p)
                .map(Fitted::KnnRegressor)
                .map_err(|e| err(&e))
        }
        (Algorithm::GaussianNb, Problem::Classification) => {
            let ds = Dataset::new(x, labels());
            linfa_bayes::GaussianNb::params()
                .fit(&ds)
                .map(Fitted::NaiveBayes)
                .map_err(|e| err(&e))
        }
        (Algorithm::Svm, Problem::Classification) if data.n_classes == 2 => {
            // Gaussian kernel, Platt-calibrated probabilities of the second class.
            let ds = Dataset::new(x, data.y.mapv(|v| v == 1.0));
            let c = params.float("c");
            linfa_svm::Svm::<f64, linfa::dataset::Pr>::params()
                .gaussian_kernel(params.float("kernel_width"))
                .pos_neg_weights(c, c)
                .fit(&ds)
                .map(Fitted::Svm)
                .map_err(|e| err(&e))
        }
        (a, p) => Err(format!("{a} does not do {p:?}")),
    }
}

fn tree_params(params: &Params) -> linfa_trees::DecisionTreeParams<f64, usize> {
    let quality = if params.choice("criterion") == "entropy" {
        linfa_trees::SplitQuality::Entropy
    } else {
        linfa_trees::SplitQuality::Gini
    };
    let leaf = params.int("min_weight_leaf").max(1) as f32;
    linfa_trees::DecisionTree::params()
        .split_quality(quality)
        .max_depth(Some(params.int("max_depth").max(1) as usize))
        .min_weight_leaf(leaf)
        .min_weight_split(2.0 * leaf)
}

fn one_hot(classes: &[usize], n_classes: usize) -> Array2<f64> {
    let mut p = Array2::zeros((classes.len(), n_classes));
    for (i, c) in classes.iter().enumerate() {
        if *c < n_classes {
            p[[i, *c]] = 1.0;
        }
    }
    p
}

impl Fitted {
    /// Predict with the library's own model.
    pub fn predict(&self, x: ArrayView2<f64>, n_classes: usize) -> Result<Output, String> {
        let owned = || x.to_owned();
        Ok(match self {
            Fitted::Logistic(m) => {
                let p_pos = m.predict_probabilities(&x);
                let pos = m.labels().pos.class;
                let mut p = Array2::zeros((x.nrows(), 2));
                for (i, v) in p_pos.iter().enumerate() {
                    p[[i, pos]] = *v;
                    p[[i, 1 - pos]] = 1.0 - v;
                }
                Output::Classes(p)
            }
            Fitted::SmartLogistic(m) => {
                // smartcore predicts labels only; probabilities are the softmax of its scores.
                use smartcore::linalg::basic::arrays::Array;
                let (w, b) = (m.coefficients(), m.intercept());
                let mut p = Array2::zeros((x.nrows(), n_classes));
                for (i, row) in x.rows().into_iter().enumerate() {
                    let scores: Vec<f64> = m
                        .classes()
                        .iter()
                        .enumerate()
                        .map(|(j, _)| {
                            *b.get((j, 0))
                                + row
                                    .iter()
                                    .enumerate()
                                    .map(|(f, v)| v * *w.get((j, f)))
                                    .sum::<f64>()
                        })
                        .collect();
                    let max = scores.iter().fold(f64::NEG_INFINITY, |a, v| a.max(*v));
                    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for (j, class) in m.classes().iter().enumerate() {
                        p[[i, *class as usize]] = (scores[j] - max).exp() / sum;
                    }
                }
                Output::Classes(p)
            }
            Fitted::Linear(m) => Output::Values(m.predict(&owned())),
            Fitted::ElasticNet(m) => Output::Values(m.predict(&owned())),
            Fitted::Tree(m) => {
                let classes: Array1<usize> = m.predict(&owned());
                Output::Classes(one_hot(
                    classes.as_slice().unwrap_or(&classes.to_vec()),
                    n_classes,
                ))
            }
            Fitted::Forest(m) => {
                // Vote shares of the ensemble's own trees, each on its own feature subset.
                let mut p = Array2::zeros((x.nrows(), n_classes));
                let share = 1.0 / m.models.len().max(1) as f64;
                for (tree, features) in m.models.iter().zip(&m.model_features) {
                    let sub = x.select(Axis(1), features);
                    let votes: Array1<usize> = tree.predict(&sub);
                    for (i, c) in votes.iter().enumerate() {
                        p[[i, *c]] += share;
                    }
                }
                Output::Classes(p)
            }
            Fitted::RegressionTree(m) => Output::Values(Array1::from(
                m.predict(&dense(x)).map_err(|e| e.to_string())?,
            )),
            Fitted::RegressionForest(m) => Output::Values(Array1::from(
                m.predict(&dense(x)).map_err(|e| e.to_string())?,
            )),
            Fitted::Boosted(m) => m.predict(x)?,
            Fitted::KnnClassifier(m) => {
                let probs = m.predict_proba(&dense(x)).map_err(|e| e.to_string())?;
                let mut p = Array2::zeros((x.nrows(), n_classes));
                for (i, row) in probs.iter().enumerate() {
                    for (j, v) in row.iter().enumerate().take(n_classes) {
                        p[[i, j]] = *v;
                    }
                }
                Output::Classes(p)
            }
            Fitted::KnnRegressor(m) => Output::Values(Array1::from(
                m.predict(&dense(x)).map_err(|e| e.to_string())?,
            )),
            Fitted::NaiveBayes(m) => {
                let classes: Array1<usize> = m.predict(&owned());
                Output::Classes(one_hot(&classes.to_vec(), n_classes))
            }
            Fitted::Svm(m) => {
                let p1: Array1<linfa::dataset::Pr> = m.predict(&owned());
                let mut p = Array2::zeros((x.nrows(), 2));
                for (i, v) in p1.iter().enumerate() {
                    let v = f64::from(**v);
                    p[[i, 1]] = v;
                    p[[i, 0]] = 1.0 - v;
                }
                Output::Classes(p)
            }
        })
    }

    /// The model as pipeline parameters, or `None` for estimators ONNX cannot express here.
    pub fn export(&self, n_classes: usize) -> Option<ExportedEstimator> {
        export::export(self, n_classes)
    }
}
