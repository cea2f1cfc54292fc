//! The fitted pipeline as plain data: what the raw columns are, how each becomes model features
//! (imputation, scaling, one-hot encoding) and the estimator's parameters (linear coefficients
//! or tree ensembles). The ONNX exporter (`crate::onnx`) turns this into a graph over the raw
//! columns; `Pipeline::evaluate` computes the same answers in Rust, in the same `f32`
//! arithmetic the ONNX ml operators use, so the two can be compared value by value.

use serde::{Deserialize, Serialize};

/// How a raw column enters the model. Numeric and boolean columns are `tensor(float)` inputs
/// (booleans as 0/1, missing values as NaN); categorical and boolean-text columns are
/// `tensor(string)` inputs (missing values as the empty string). Every input has shape `[N, 1]`
/// and is named after the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    /// True/false values the file typed as such (a Parquet boolean column), fed as 0/1.
    Boolean,
    /// Text that spells booleans (`yes`/`no`, `true`/`false`, `Y`/`N`; see [`BOOLEAN_WORDS`]),
    /// fed as the client has it, a string, and mapped to 1/0 inside the graph; any other text
    /// counts as missing.
    BooleanText,
    Categorical,
}

impl ColumnKind {
    /// Whether the column is a `tensor(string)` input.
    pub fn is_text(self) -> bool {
        match self {
            ColumnKind::Numeric | ColumnKind::Boolean => false,
            ColumnKind::BooleanText | ColumnKind::Categorical => true,
        }
    }
}

/// The words a boolean-text column may hold, with their values: exact matches only (no
/// trimming, these three casings), so the graph's lookup table and [`boolean_word`] are the
/// same rule.
pub const BOOLEAN_WORDS: [(&str, bool); 18] = [
    ("true", true),
    ("True", true),
    ("TRUE", true),
    ("yes", true),
    ("Yes", true),
    ("YES", true),
    ("y", true),
    ("Y", true),
    ("t", true),
    ("false", false),
    ("False", false),
    ("FALSE", false),
    ("no", false),
    ("No", false),
    ("NO", false),
    ("n", false),
    ("N", false),
    ("f", false),
];

/// The value of a boolean word (1.0 / 0.0), or `None` for any other text.
pub fn boolean_word(text: &str) -> Option<f32> {
    BOOLEAN_WORDS
        .iter()
        .find(|(w, _)| *w == text)
        .map(|(_, b)| if *b { 1.0 } else { 0.0 })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputColumn {
    pub name: String,
    pub kind: ColumnKind,
}

/// One block of model features, built from one raw column (`input` indexes `Pipeline::inputs`).
/// Features are laid out in the order of `Pipeline::features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureStep {
    /// One feature: `(x_or_imputed - offset) * scale`, where NaN is replaced by `impute`.
    /// (ONNX: Imputer then Scaler.) `offset = 0, scale = 1` when the estimator needs no scaling.
    Numeric {
        input: usize,
        impute: f32,
        offset: f32,
        scale: f32,
    },
    /// `categories.len()` features, 1.0 at the matching category, all 0.0 for a missing or
    /// unseen value. (ONNX: OneHotEncoder with `zeros = 1`.)
    OneHot {
        input: usize,
        categories: Vec<String>,
    },
}

impl FeatureStep {
    pub fn width(&self) -> usize {
        match self {
            FeatureStep::Numeric { .. } => 1,
            FeatureStep::OneHot { categories, .. } => categories.len(),
        }
    }

    pub fn input(&self) -> usize {
        match self {
            FeatureStep::Numeric { input, .. } | FeatureStep::OneHot { input, .. } => *input,
        }
    }
}

/// Class labels as the target column held them: integers when every label parses as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "labels", rename_all = "snake_case")]
pub enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label at class index `i`, as text.
    pub fn text(&self, i: usize) -> String {
        match self {
            Labels::Ints(v) => v[i].to_string(),
            Labels::Strings(v) => v[i].clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostTransform {
    /// Raw scores.
    None,
    /// Softmax over the class scores.
    Softmax,
    /// Logistic sigmoid of each score.
    Logistic,
}

/// Comparison at a branch node: go to `left` when `x[feature] < threshold` (`Lt`) or
/// `x[feature] <= threshold` (`Leq`), else to `right`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchMode {
    Lt,
    Leq,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TreeNode {
    Branch {
        feature: usize,
        threshold: f32,
        mode: BranchMode,
        left: usize,
        right: usize,
    },
    /// One value per class (classification) or one value (regression).
    Leaf { values: Vec<f32> },
}

/// A tree's nodes; node 0 is the root, children are indexes into `nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Estimator {
    /// `score[t] = intercepts[t] + Σ_f coefficients[t][f] * x[f]`, then `post`.
    /// Classification has one row per class; regression has one row.
    Linear {
        coefficients: Vec<Vec<f32>>,
        intercepts: Vec<f32>,
        post: PostTransform,
    },
    /// `score[t] = base_values[t] + Σ_trees weight * leaf.values[t]`, then `post`.
    /// (`weight = 1/n_trees` averages, `weight = learning_rate` boosts.)
    Trees {
        trees: Vec<Tree>,
        weight: f32,
        base_values: Vec<f32>,
        post: PostTransform,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Predicts a label (the class with the highest score; the first one on ties) and the
    /// per-class scores after the post transform ("probabilities").
    Classification { labels: Labels },
    /// Predicts score[0].
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub inputs: Vec<InputColumn>,
    pub features: Vec<FeatureStep>,
    pub estimator: Estimator,
    pub task: Task,
}

/// One raw value of an input column.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// Numeric or boolean (0/1) column; NaN when missing.
    Number(f32),
    /// Categorical or boolean-text column; "" when missing.
    Text(String),
}

impl RawValue {
    /// The number a numeric feature step reads: the number itself, or a boolean word's 1/0
    /// (NaN for any other text), as the graph's LabelEncoder maps a boolean-text input.
    pub fn number(&self) -> f32 {
        match self {
            RawValue::Number(v) => *v,
            RawValue::Text(t) => boolean_word(t).unwrap_or(f32::NAN),
        }
    }
}

/// What the pipeline answers for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Classification {
        /// Class index per row (into the task's labels).
        classes: Vec<usize>,
        /// Per row, one score per class.
        probabilities: Vec<Vec<f32>>,
    },
    Regression {
        values: Vec<f32>,
    },
}

impl Pipeline {
    pub fn n_features(&self) -> usize {
        self.features.iter().map(FeatureStep::width).sum()
    }
}
