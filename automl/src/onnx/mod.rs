//! ONNX export of a fitted pipeline.
//!
//! [`export`] turns a [`Pipeline`] into one ONNX graph over the raw columns, built only from
//! `ai.onnx` (opset 17) and `ai.onnx.ml` (opset 3) operators that ONNX Runtime's CPU provider
//! implements:
//!
//! ```text
//! column ─ Imputer ─ Scaler ───────────────┐                     (Numeric step, [N,1])
//! column ─ LabelEncoder ─ Imputer ─ Scaler ┤                     (boolean text, string [N,1])
//! column ─ OneHotEncoder ─ Flatten ────────┼─ Concat(axis=1) ─ X  (OneHot step, [N,K])
//! ...                                      ┘
//! X ─ LinearClassifier | TreeEnsembleClassifier ─ (Add base_values) ─ raw [N,C]
//!     raw ─ ArgMax(axis=1) ─ Gather(class labels) ─ "label"          [N]
//!     raw ─ Softmax | Sigmoid | Identity ─ "probabilities"            [N,C]
//! X ─ LinearRegressor | TreeEnsembleRegressor ─ Sigmoid | Softmax | Identity ─ "variable" [N,1]
//! ```
//!
//! The ml estimators always run with `post_transform = NONE` and their own label output is not
//! used: ONNX Runtime treats two classes as a "binary case" whatever the weights say
//! (`TreeEnsembleClassifier` then answers the literal labels 1/0 by the sign of class 1's
//! score and rewrites the scores when `base_values` has two entries; `LinearRegressor` and the
//! one-target tree regressor ignore LOGISTIC/SOFTMAX). Taking the label as the first arg-max of
//! the raw scores and applying the post transform with plain `ai.onnx` operators gives the same
//! semantics for every class count, which is what `Pipeline::evaluate` computes.
//!
//! Names: graph inputs are the column names, whatever they are. Every other value (outputs
//! included) gets a name no input uses: the outputs are `label`, `probabilities` and
//! `variable` unless a column has that name, in which case they become `predicted_label` (and
//! so on; see [`output_names`]).

pub mod check;
pub mod proto;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use prost::Message;

use crate::pipeline::{
    BranchMode, ColumnKind, Estimator, FeatureStep, Labels, Pipeline, PostTransform, Task, Tree,
    TreeNode, BOOLEAN_WORDS,
};
use proto::attribute_proto::AttributeType;
use proto::tensor_proto::DataType;
use proto::tensor_shape_proto::{dimension, Dimension};
use proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// IR version of the exported models (ONNX 1.10+).
pub const IR_VERSION: i64 = 8;
/// Opset of the default (`ai.onnx`) domain.
pub const OPSET: i64 = 17;
/// The traditional-ML operator domain and its opset.
pub const ML_DOMAIN: &str = "ai.onnx.ml";
pub const ML_OPSET: i64 = 3;
pub const PRODUCER_NAME: &str = "ferroflow";
/// Graph outputs (unless a column takes the name; see [`output_names`]): classification answers
/// `label` `[N]` (int64 or string, as the labels are) and `probabilities` `[N, C]` (float);
/// regression answers `variable` `[N, 1]` (float).
pub const OUTPUT_LABEL: &str = "label";
pub const OUTPUT_PROBABILITIES: &str = "probabilities";
pub const OUTPUT_VARIABLE: &str = "variable";
/// The symbolic batch dimension of every input and output.
pub const BATCH_DIM: &str = "N";

/// The names of the graph's outputs for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputNames {
    pub label: String,
    pub probabilities: String,
    pub variable: String,
}

/// `label`, `probabilities`, `variable`; where a column already has one of these names (graph
/// inputs are named after the columns), `predicted_<name>`, then `predicted_<name>_1`, ...
pub fn output_names(pipeline: &Pipeline) -> OutputNames {
    let taken: HashSet<&str> = pipeline.inputs.iter().map(|c| c.name.as_str()).collect();
    let pick = |base: &str| {
        let mut candidates = [base.to_string(), format!("predicted_{base}")]
            .into_iter()
            .chain((1..).map(|n| format!("predicted_{base}_{n}")));
        candidates
            .find(|c| !taken.contains(c.as_str()))
            .expect("an unbounded list has a free name")
    };
    OutputNames {
        label: pick(OUTPUT_LABEL),
        probabilities: pick(OUTPUT_PROBABILITIES),
        variable: pick(OUTPUT_VARIABLE),
    }
}

/// The pipeline as a serialized `ModelProto`.
///
/// Inputs are named after the columns; outputs as [`output_names`] says. Classification
/// expects one score row per class (`coefficients.len()` / leaf values per class
/// `== labels.len()`).
pub fn export(pipeline: &Pipeline, producer_version: &str) -> Vec<u8> {
    model_proto(pipeline, producer_version).encode_to_vec()
}

/// The pipeline as a `ModelProto` message (what [`export`] serializes).
pub fn model_proto(pipeline: &Pipeline, producer_version: &str) -> ModelProto {
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            },
            OperatorSetIdProto {
                domain: Some(ML_DOMAIN.to_string()),
                version: Some(ML_OPSET),
            },
        ],
        producer_name: Some(PRODUCER_NAME.to_string()),
        producer_version: Some(producer_version.to_string()),
        graph: Some(graph(pipeline)),
        ..Default::default()
    }
}

fn graph(pipeline: &Pipeline) -> GraphProto {
    let names = output_names(pipeline);
    let mut g = Builder::new(pipeline, &names);

    let inputs = pipeline
        .inputs
        .iter()
        .map(|c| {
            let ty = if c.kind.is_text() {
                DataType::String
            } else {
                DataType::Float
            };
            value_info(&c.name, ty, &[Dim::Batch, Dim::Fixed(1)])
        })
        .collect();

    let x = g.features();
    let outputs = match &pipeline.task {
        Task::Classification { labels } => {
            let raw = g.class_scores(&pipeline.estimator, labels, x);
            let index = g.fresh("label_index");
            g.node(
                "ArgMax",
                "",
                &[&raw],
                &[&index],
                vec![attr_int("axis", 1), attr_int("keepdims", 0)],
            );
            let (table, label_type) = match labels {
                Labels::Ints(v) => (
                    TensorProto {
                        dims: vec![v.len() as i64],
                        data_type: Some(DataType::Int64 as i32),
                        int64_data: v.clone(),
                        ..Default::default()
                    },
                    DataType::Int64,
                ),
                Labels::Strings(v) => (
                    TensorProto {
                        dims: vec![v.len() as i64],
                        data_type: Some(DataType::String as i32),
                        string_data: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
                        ..Default::default()
                    },
                    DataType::String,
                ),
            };
            let table = g.initializer("class_labels", table);
            g.node(
                "Gather",
                "",
                &[&table, &index],
                &[&names.label],
                vec![attr_int("axis", 0)],
            );
            g.post_transform(post(&pipeline.estimator), &raw, &names.probabilities);
            vec![
                value_info(&names.label, label_type, &[Dim::Batch]),
                value_info(
                    &names.probabilities,
                    DataType::Float,
                    &[Dim::Batch, Dim::Fixed(labels.len() as i64)],
                ),
            ]
        }
        Task::Regression => {
            let raw = g.regression_score(&pipeline.estimator, x);
            g.post_transform(post(&pipeline.estimator), &raw, &names.variable);
            vec![value_info(
                &names.variable,
                DataType::Float,
                &[Dim::Batch, Dim::Fixed(1)],
            )]
        }
    };

    GraphProto {
        node: g.nodes,
        name: Some("ferroflow_pipeline".to_string()),
        initializer: g.initializers,
        input: inputs,
        output: outputs,
        ..Default::default()
    }
}

fn post(estimator: &Estimator) -> PostTransform {
    match estimator {
        Estimator::Linear { post, .. } | Estimator::Trees { post, .. } => *post,
    }
}

/// Collects nodes and initializers, handing out value names no input or output uses.
struct Builder<'a> {
    pipeline: &'a Pipeline,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    used: HashSet<String>,
}

impl<'a> Builder<'a> {
    fn new(pipeline: &'a Pipeline, outputs: &OutputNames) -> Self {
        let mut used: HashSet<String> = pipeline.inputs.iter().map(|c| c.name.clone()).collect();
        for name in [&outputs.label, &outputs.probabilities, &outputs.variable] {
            used.insert(name.clone());
        }
        Builder {
            pipeline,
            nodes: Vec::new(),
            initializers: Vec::new(),
            used,
        }
    }

    /// A new value name starting with `base`.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }

    fn node(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        let name = format!("{op_type}_{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name),
            op_type: Some(op_type.to_string()),
            domain: Some(domain.to_string()),
            attribute,
            ..Default::default()
        });
    }

    fn initializer(&mut self, base: &str, mut tensor: TensorProto) -> String {
        let name = self.fresh(base);
        tensor.name = Some(name.clone());
        self.initializers.push(tensor);
        name
    }

    /// The `[N, F]` float feature matrix, in `pipeline.features` order.
    fn features(&mut self) -> String {
        let pipeline = self.pipeline;
        let mut blocks = Vec::new();
        for (i, step) in pipeline.features.iter().enumerate() {
            let input = &pipeline.inputs[step.input()];
            let column = &input.name;
            match step {
                FeatureStep::Numeric {
                    impute,
                    offset,
                    scale,
                    ..
                } => {
                    // Boolean words arrive as text: 1.0 / 0.0, anything else NaN (imputed).
                    let number = if input.kind == ColumnKind::BooleanText {
                        let number = self.fresh(&format!("f{i}_boolean"));
                        let (words, values): (Vec<String>, Vec<f32>) = BOOLEAN_WORDS
                            .iter()
                            .map(|(w, b)| (w.to_string(), if *b { 1.0 } else { 0.0 }))
                            .unzip();
                        self.node(
                            "LabelEncoder",
                            ML_DOMAIN,
                            &[column],
                            &[&number],
                            vec![
                                attr_strings("keys_strings", &words),
                                attr_floats("values_floats", values),
                                attr_float("default_float", f32::NAN),
                            ],
                        );
                        number
                    } else {
                        column.clone()
                    };
                    let imputed = self.fresh(&format!("f{i}_imputed"));
                    self.node(
                        "Imputer",
                        ML_DOMAIN,
                        &[&number],
                        &[&imputed],
                        vec![
                            attr_floats("imputed_value_floats", vec![*impute]),
                            attr_float("replaced_value_float", f32::NAN),
                        ],
                    );
                    let scaled = self.fresh(&format!("f{i}_scaled"));
                    self.node(
                        "Scaler",
                        ML_DOMAIN,
                        &[&imputed],
                        &[&scaled],
                        vec![
                            attr_floats("offset", vec![*offset]),
                            attr_floats("scale", vec![*scale]),
                        ],
                    );
                    blocks.push(scaled);
                }
                // No categories, no features (and OneHotEncoder refuses an empty list).
                FeatureStep::OneHot { categories, .. } if categories.is_empty() => {}
                FeatureStep::OneHot { categories, .. } => {
                    let encoded = self.fresh(&format!("f{i}_onehot"));
                    self.node(
                        "OneHotEncoder",
                        ML_DOMAIN,
                        &[column],
                        &[&encoded],
                        vec![
                            attr_strings("cats_strings", categories),
                            attr_int("zeros", 1),
                        ],
                    );
                    // [N, 1, K] -> [N, K]
                    let flat = self.fresh(&format!("f{i}_onehot_flat"));
                    self.node(
                        "Flatten",
                        "",
                        &[&encoded],
                        &[&flat],
                        vec![attr_int("axis", 1)],
                    );
                    blocks.push(flat);
                }
            }
        }
        if blocks.len() == 1 {
            return blocks.pop().expect("one block");
        }
        let x = self.fresh("features");
        let inputs: Vec<&str> = blocks.iter().map(String::as_str).collect();
        self.node("Concat", "", &inputs, &[&x], vec![attr_int("axis", 1)]);
        x
    }

    /// Raw per-class scores `[N, C]` (before the post transform).
    fn class_scores(&mut self, estimator: &Estimator, labels: &Labels, x: String) -> String {
        let n_features = self.pipeline.n_features();
        let label_attr = |name_ints: &str| match labels {
            Labels::Ints(v) => attr_ints(name_ints, v.clone()),
            Labels::Strings(v) => attr_strings("classlabels_strings", v),
        };
        match estimator {
            Estimator::Linear {
                coefficients,
                intercepts,
                ..
            } => {
                let rows = coefficients.len();
                let unused = self.fresh("linear_label");
                let raw = self.fresh("scores");
                self.node(
                    "LinearClassifier",
                    ML_DOMAIN,
                    &[&x],
                    &[&unused, &raw],
                    vec![
                        attr_floats("coefficients", flatten_rows(coefficients, n_features)),
                        attr_floats("intercepts", padded(intercepts, rows)),
                        label_attr("classlabels_ints"),
                        attr_int("multi_class", 0),
                        attr_string("post_transform", "NONE"),
                    ],
                );
                raw
            }
            Estimator::Trees {
                trees,
                weight,
                base_values,
                ..
            } => {
                let n_classes = labels.len();
                let t = tree_attributes(trees, *weight, n_classes);
                let unused = self.fresh("tree_label");
                let sums = self.fresh("tree_sums");
                let mut attrs = t.node_attributes();
                attrs.extend([
                    attr_ints("class_treeids", t.target_treeids),
                    attr_ints("class_nodeids", t.target_nodeids),
                    attr_ints("class_ids", t.target_ids),
                    attr_floats("class_weights", t.target_weights),
                    label_attr("classlabels_int64s"),
                    attr_string("post_transform", "NONE"),
                ]);
                self.node(
                    "TreeEnsembleClassifier",
                    ML_DOMAIN,
                    &[&x],
                    &[&unused, &sums],
                    attrs,
                );
                // base_values are added here, not by the operator: with two classes ONNX
                // Runtime would score [-(s0 + b1), s0 + b1] instead of [s0 + b0, s1 + b1].
                if base_values.iter().all(|b| *b == 0.0) {
                    return sums;
                }
                let base = self.initializer(
                    "base_values",
                    TensorProto {
                        dims: vec![n_classes as i64],
                        data_type: Some(DataType::Float as i32),
                        float_data: padded(base_values, n_classes),
                        ..Default::default()
                    },
                );
                let raw = self.fresh("scores");
                self.node("Add", "", &[&sums, &base], &[&raw], Vec::new());
                raw
            }
        }
    }

    /// The raw regression score `[N, 1]` (before the post transform).
    fn regression_score(&mut self, estimator: &Estimator, x: String) -> String {
        let n_features = self.pipeline.n_features();
        let raw = self.fresh("score");
        match estimator {
            Estimator::Linear {
                coefficients,
                intercepts,
                ..
            } => {
                let first = coefficients.first().cloned().unwrap_or_default();
                self.node(
                    "LinearRegressor",
                    ML_DOMAIN,
                    &[&x],
                    &[&raw],
                    vec![
                        attr_floats("coefficients", flatten_rows(&[first], n_features)),
                        attr_floats("intercepts", padded(intercepts, 1)),
                        attr_int("targets", 1),
                        attr_string("post_transform", "NONE"),
                    ],
                );
            }
            Estimator::Trees {
                trees,
                weight,
                base_values,
                ..
            } => {
                let t = tree_attributes(trees, *weight, 1);
                let mut attrs = t.node_attributes();
                attrs.extend([
                    attr_ints("target_treeids", t.target_treeids),
                    attr_ints("target_nodeids", t.target_nodeids),
                    attr_ints("target_ids", t.target_ids),
                    attr_floats("target_weights", t.target_weights),
                    attr_int("n_targets", 1),
                    // One target: the score is Σ leaves + base_values[0].
                    attr_floats("base_values", padded(base_values, 1)),
                    attr_string("aggregate_function", "SUM"),
                    attr_string("post_transform", "NONE"),
                ]);
                self.node("TreeEnsembleRegressor", ML_DOMAIN, &[&x], &[&raw], attrs);
            }
        }
        raw
    }

    /// `output = post(raw)` over the last axis.
    fn post_transform(&mut self, post: PostTransform, raw: &str, output: &str) {
        match post {
            PostTransform::None => self.node("Identity", "", &[raw], &[output], Vec::new()),
            PostTransform::Softmax => {
                self.node("Softmax", "", &[raw], &[output], vec![attr_int("axis", -1)])
            }
            PostTransform::Logistic => self.node("Sigmoid", "", &[raw], &[output], Vec::new()),
        }
    }
}

/// The `nodes_*` and `target_*`/`class_*` attribute lists of a tree ensemble. Tree `t` has
/// id `t`, its nodes keep their indexes as ids (the root, index 0, first), and every leaf
/// carries one weight per target, `weight × value` (zeros included).
struct TreeAttributes {
    treeids: Vec<i64>,
    nodeids: Vec<i64>,
    featureids: Vec<i64>,
    values: Vec<f32>,
    modes: Vec<String>,
    truenodeids: Vec<i64>,
    falsenodeids: Vec<i64>,
    target_treeids: Vec<i64>,
    target_nodeids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
}

impl TreeAttributes {
    fn node_attributes(&self) -> Vec<AttributeProto> {
        vec![
            attr_ints("nodes_treeids", self.treeids.clone()),
            attr_ints("nodes_nodeids", self.nodeids.clone()),
            attr_ints("nodes_featureids", self.featureids.clone()),
            attr_floats("nodes_values", self.values.clone()),
            attr_strings("nodes_modes", &self.modes),
            attr_ints("nodes_truenodeids", self.truenodeids.clone()),
            attr_ints("nodes_falsenodeids", self.falsenodeids.clone()),
            attr_ints(
                "nodes_missing_value_tracks_true",
                vec![0; self.treeids.len()],
            ),
        ]
    }
}

fn tree_attributes(trees: &[Tree], weight: f32, n_targets: usize) -> TreeAttributes {
    let mut t = TreeAttributes {
        treeids: Vec::new(),
        nodeids: Vec::new(),
        featureids: Vec::new(),
        values: Vec::new(),
        modes: Vec::new(),
        truenodeids: Vec::new(),
        falsenodeids: Vec::new(),
        target_treeids: Vec::new(),
        target_nodeids: Vec::new(),
        target_ids: Vec::new(),
        target_weights: Vec::new(),
    };
    // Trees without nodes contribute nothing; they are left out (ids stay dense).
    for (tree_id, tree) in trees.iter().filter(|t| !t.nodes.is_empty()).enumerate() {
        for (node_id, node) in tree.nodes.iter().enumerate() {
            t.treeids.push(tree_id as i64);
            t.nodeids.push(node_id as i64);
            match node {
                TreeNode::Branch {
                    feature,
                    threshold,
                    mode,
                    left,
                    right,
                } => {
                    t.featureids.push(*feature as i64);
                    t.values.push(*threshold);
                    t.modes.push(
                        match mode {
                            BranchMode::Lt => "BRANCH_LT",
                            BranchMode::Leq => "BRANCH_LEQ",
                        }
                        .to_string(),
                    );
                    t.truenodeids.push(*left as i64);
                    t.falsenodeids.push(*right as i64);
                }
                TreeNode::Leaf { values } => {
                    t.featureids.push(0);
                    t.values.push(0.0);
                    t.modes.push("LEAF".to_string());
                    t.truenodeids.push(0);
                    t.falsenodeids.push(0);
                    for target in 0..n_targets {
                        t.target_treeids.push(tree_id as i64);
                        t.target_nodeids.push(node_id as i64);
                        t.target_ids.push(target as i64);
                        t.target_weights
                            .push(leaf_weight(weight, values.get(target).copied()));
                    }
                }
            }
        }
    }
    t
}

/// What one leaf adds to one target's score: exactly the `f32` product `Pipeline::evaluate`
/// adds.
pub(crate) fn leaf_weight(weight: f32, value: Option<f32>) -> f32 {
    weight * value.unwrap_or(0.0)
}

/// Row-major `[rows × width]`, each row cut or zero-padded to `width`.
fn flatten_rows(rows: &[Vec<f32>], width: usize) -> Vec<f32> {
    rows.iter().flat_map(|r| padded(r, width)).collect()
}

fn padded(values: &[f32], len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| values.get(i).copied().unwrap_or(0.0))
        .collect()
}

enum Dim {
    Batch,
    Fixed(i64),
}

fn value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => dimension::Value::DimParam(BATCH_DIM.to_string()),
                Dim::Fixed(n) => dimension::Value::DimValue(*n),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i: Some(i),
        ..attr(name, AttributeType::Int)
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        f: Some(f),
        ..attr(name, AttributeType::Float)
    }
}

fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: Some(s.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}

fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        ints,
        ..attr(name, AttributeType::Ints)
    }
}

fn attr_floats(name: &str, floats: Vec<f32>) -> AttributeProto {
    AttributeProto {
        floats,
        ..attr(name, AttributeType::Floats)
    }
}

fn attr_strings(name: &str, strings: &[String]) -> AttributeProto {
    AttributeProto {
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}
