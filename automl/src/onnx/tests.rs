//! Hand-built pipelines exported and run by the real ONNX Runtime (through ferroflow-serving),
//! compared with `Pipeline::evaluate` row by row. The ONNX Runtime tests need `ORT_DYLIB_PATH`
//! and fail without it (`scripts/test` sets it). With `FERROFLOW_AUTOML_ONNX_DUMP=<dir>` every
//! exported model is also written there (for `onnx.checker` by hand).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferroflow_serving::tensor::{OutputValue, Tensor, TensorData};
use ferroflow_serving::{init_runtime, BatchOptions, LoadedModel, RuntimeStatus};
use prost::Message;

use super::proto::tensor_shape_proto::dimension;
use super::proto::{type_proto, GraphProto, ModelProto, ValueInfoProto};
use super::*;
use crate::pipeline::{
    BranchMode, ColumnKind, Estimator, FeatureStep, InputColumn, Labels, Pipeline, PostTransform,
    Prediction, RawValue, Task, Tree, TreeNode, BOOLEAN_WORDS,
};

/// Absolute for values up to 1 (every probability), relative beyond (a regression value of
/// 1e4 has f32 steps of 1e-3).
const TOLERANCE: f32 = 1e-5;

// ---------------------------------------------------------------------------------------------
// Pipelines

fn column(name: &str, kind: ColumnKind) -> InputColumn {
    InputColumn {
        name: name.to_string(),
        kind,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// age (numeric), member (boolean), city (categorical), plan (categorical):
/// features [age_scaled, member, city=paris, city=london, city=tokyo, plan=basic, plan=pro].
fn mixed_inputs() -> (Vec<InputColumn>, Vec<FeatureStep>) {
    (
        vec![
            column("age", ColumnKind::Numeric),
            column("member", ColumnKind::Boolean),
            column("city", ColumnKind::Categorical),
            column("plan", ColumnKind::Categorical),
        ],
        vec![
            FeatureStep::Numeric {
                input: 0,
                impute: 37.5,
                offset: 40.0,
                scale: 0.1,
            },
            FeatureStep::Numeric {
                input: 1,
                impute: 0.25,
                offset: 0.0,
                scale: 1.0,
            },
            FeatureStep::OneHot {
                input: 2,
                categories: strings(&["paris", "london", "tokyo"]),
            },
            FeatureStep::OneHot {
                input: 3,
                categories: strings(&["basic", "pro"]),
            },
        ],
    )
}

fn num(x: f32) -> RawValue {
    RawValue::Number(x)
}

fn text(s: &str) -> RawValue {
    RawValue::Text(s.to_string())
}

/// Fixed rows covering missing values, unseen categories and exact threshold hits, plus
/// pseudo-random ones.
fn mixed_rows() -> Vec<Vec<RawValue>> {
    let mut rows = vec![
        vec![num(40.0), num(1.0), text("paris"), text("basic")],
        vec![num(f32::NAN), num(0.0), text("london"), text("pro")],
        vec![num(25.0), num(f32::NAN), text(""), text("")],
        vec![num(61.0), num(1.0), text("berlin"), text("enterprise")],
        vec![num(-3.5), num(0.0), text("tokyo"), text("basic")],
        vec![num(50.0), num(1.0), text("Paris"), text("pro")],
        vec![num(45.0), num(0.0), text("tokyo"), text("pro")],
        vec![num(1.0e4), num(1.0), text("london"), text("")],
    ];
    let cities = ["paris", "london", "tokyo", "", "rome"];
    let plans = ["basic", "pro", "", "gold"];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..40 {
        let age = if next() % 7 == 0 {
            f32::NAN
        } else {
            (next() % 800) as f32 / 10.0
        };
        let member = match next() % 5 {
            0 => f32::NAN,
            1 | 2 => 1.0,
            _ => 0.0,
        };
        let city = cities[(next() % cities.len() as u64) as usize];
        let plan = plans[(next() % plans.len() as u64) as usize];
        rows.push(vec![num(age), num(member), text(city), text(plan)]);
    }
    rows
}

fn linear(coefficients: Vec<Vec<f32>>, intercepts: Vec<f32>, post: PostTransform) -> Estimator {
    Estimator::Linear {
        coefficients,
        intercepts,
        post,
    }
}

fn pipeline(estimator: Estimator, task: Task) -> Pipeline {
    let (inputs, features) = mixed_inputs();
    Pipeline {
        inputs,
        features,
        estimator,
        task,
    }
}

fn classification(labels: Labels) -> Task {
    Task::Classification { labels }
}

fn branch(feature: usize, threshold: f32, mode: BranchMode, left: usize, right: usize) -> TreeNode {
    TreeNode::Branch {
        feature,
        threshold,
        mode,
        left,
        right,
    }
}

fn leaf(values: &[f32]) -> TreeNode {
    TreeNode::Leaf {
        values: values.to_vec(),
    }
}

/// Three 3-class trees over the mixed features, with `Lt` and `Leq` branches whose thresholds
/// the fixed rows hit exactly (age 40 → feature 0 = 0.0; one-hot features are 0/1).
fn three_class_trees() -> Vec<Tree> {
    vec![
        Tree {
            nodes: vec![
                branch(0, 0.0, BranchMode::Lt, 1, 2),
                leaf(&[0.7, 0.2, 0.1]),
                branch(2, 0.5, BranchMode::Leq, 3, 4),
                leaf(&[0.1, 0.8, 0.1]),
                leaf(&[0.2, 0.2, 0.6]),
            ],
        },
        Tree {
            nodes: vec![
                branch(0, 0.0, BranchMode::Leq, 1, 4),
                branch(1, 0.5, BranchMode::Lt, 2, 3),
                leaf(&[0.5, 0.5, 0.0]),
                leaf(&[0.0, 0.0, 1.0]),
                branch(6, 1.0, BranchMode::Lt, 5, 6),
                leaf(&[0.3, 0.3, 0.4]),
                leaf(&[1.0, 0.0, 0.0]),
            ],
        },
        // The right child listed before the left one.
        Tree {
            nodes: vec![
                branch(4, 0.5, BranchMode::Lt, 2, 1),
                leaf(&[0.0, 0.0, 1.0]),
                branch(1, 1.0, BranchMode::Leq, 3, 4),
                leaf(&[0.6, 0.4, 0.0]),
                leaf(&[0.2, 0.3, 0.5]),
            ],
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Running the export in ONNX Runtime

/// Loads ONNX Runtime from `ORT_DYLIB_PATH`. A comparison that cannot run fails: the library
/// is part of the test setup (`scripts/test` fetches it; `scripts/onnxruntime.sh` prints its
/// path), and a test that passes without running would hide a broken export.
fn require_ort(test: &str) {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => {
            let status = init_runtime(None);
            assert!(
                matches!(status, RuntimeStatus::Ready { .. }),
                "ONNX Runtime failed to load: {status:?}"
            );
        }
        _ => panic!(
            "{test}: ORT_DYLIB_PATH is not set, so the export cannot be compared in ONNX Runtime; \
             run scripts/test, or export ORT_DYLIB_PATH=\"$(scripts/onnxruntime.sh | tail -n 1)\""
        ),
    }
}

fn dump(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("FERROFLOW_AUTOML_ONNX_DUMP") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("creating the dump directory");
        std::fs::write(dir.join(format!("{name}.onnx")), bytes).expect("writing the dump");
    }
}

/// Runs the exported model on `rows` as an MLflow model directory served by ferroflow-serving.
fn run_in_ort(pipeline: &Pipeline, bytes: &[u8], rows: &[Vec<RawValue>]) -> Vec<OutputValue> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferroflow-automl-onnx-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("MLmodel"),
        "flavors:\n  onnx:\n    data: model.onnx\n",
    )
    .unwrap();
    std::fs::write(dir.join("model.onnx"), bytes).unwrap();
    let options = BatchOptions {
        max_batch_size: 1,
        max_delay_us: 0,
        workers: 1,
    };
    let model = LoadedModel::load(&dir, options)
        .unwrap_or_else(|e| panic!("ONNX Runtime rejected the export: {e}"));
    let names: Vec<&str> = model.inputs().iter().map(|s| s.name.as_str()).collect();
    let expected: Vec<&str> = pipeline.inputs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, expected, "graph inputs");

    // The same feeds the check before registering sends.
    let feeds = super::check::feeds(pipeline, rows);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime
        .block_on(model.run(feeds))
        .unwrap_or_else(|e| panic!("ONNX Runtime failed: {e}"));
    drop(model);
    let _ = std::fs::remove_dir_all(&dir);
    outputs
}

fn tensor(output: &OutputValue) -> &Tensor {
    match output {
        OutputValue::Tensor(t) => t,
        other => panic!("expected a tensor output, got {other:?}"),
    }
}

fn floats(t: &Tensor) -> &[f32] {
    match &t.data {
        TensorData::Float(v) => v,
        other => panic!("expected float data, got {other:?}"),
    }
}

fn close(a: f32, b: f32) -> bool {
    let scale = a.abs().max(b.abs()).max(1.0);
    (a - b).abs() <= TOLERANCE * scale || (a.is_nan() && b.is_nan())
}

/// Exports `pipeline`, runs it in ONNX Runtime and asserts it answers what
/// `Pipeline::evaluate` answers; returns the expected prediction.
fn check(name: &str, pipeline: &Pipeline, rows: &[Vec<RawValue>]) -> Prediction {
    let expected = pipeline.evaluate(rows);
    let bytes = export(pipeline, "test");
    dump(name, &bytes);
    require_ort(name);
    let outputs = run_in_ort(pipeline, &bytes, rows);
    let n = rows.len();
    match (&expected, &pipeline.task) {
        (
            Prediction::Classification {
                classes,
                probabilities,
            },
            Task::Classification { labels },
        ) => {
            assert_eq!(outputs.len(), 2, "{name}: outputs");
            let label = tensor(&outputs[0]);
            assert_eq!(label.shape, vec![n], "{name}: label shape");
            let got_labels: Vec<String> = match (&label.data, labels) {
                (TensorData::Int64(v), Labels::Ints(_)) => v.iter().map(i64::to_string).collect(),
                (TensorData::String(v), Labels::Strings(_)) => v.clone(),
                (data, _) => panic!("{name}: label data {data:?} for labels {labels:?}"),
            };
            let want_labels: Vec<String> = classes.iter().map(|&c| labels.text(c)).collect();
            let probs = tensor(&outputs[1]);
            let c = labels.len();
            assert_eq!(probs.shape, vec![n, c], "{name}: probabilities shape");
            let got = floats(probs);
            for i in 0..n {
                assert_eq!(
                    got_labels[i],
                    want_labels[i],
                    "{name}: label of row {i} {:?} (expected scores {:?}, onnxruntime {:?})",
                    rows[i],
                    probabilities[i],
                    &got[i * c..(i + 1) * c]
                );
                for k in 0..c {
                    assert!(
                        close(got[i * c + k], probabilities[i][k]),
                        "{name}: row {i} class {k}: onnxruntime {} vs evaluate {}",
                        got[i * c + k],
                        probabilities[i][k]
                    );
                }
            }
        }
        (Prediction::Regression { values }, Task::Regression) => {
            assert_eq!(outputs.len(), 1, "{name}: outputs");
            let variable = tensor(&outputs[0]);
            assert_eq!(variable.shape, vec![n, 1], "{name}: variable shape");
            let got = floats(variable);
            for i in 0..n {
                assert!(
                    close(got[i], values[i]),
                    "{name}: row {i}: onnxruntime {} vs evaluate {}",
                    got[i],
                    values[i]
                );
            }
        }
        _ => panic!("{name}: prediction does not match the task"),
    }
    expected
}

fn classes(p: &Prediction) -> &[usize] {
    match p {
        Prediction::Classification { classes, .. } => classes,
        Prediction::Regression { .. } => panic!("not a classification"),
    }
}

fn distinct(classes: &[usize]) -> usize {
    let mut v = classes.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

// ---------------------------------------------------------------------------------------------
// The model file itself

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("the export decodes as a ModelProto")
}

fn shape_of(v: &ValueInfoProto) -> (i32, Vec<String>) {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.clone())
    else {
        panic!("{:?} is not a tensor", v.name)
    };
    let dims = t
        .shape
        .expect("shape")
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(n)) => n.to_string(),
            Some(dimension::Value::DimParam(p)) => p.clone(),
            None => "?".to_string(),
        })
        .collect();
    (t.elem_type.expect("elem_type"), dims)
}

#[test]
fn onnx_field_numbers_match_onnx_proto() {
    // ir_version = 1 (varint), opset_import = 8, producer_name = 2, graph = 7.
    let m = ModelProto {
        ir_version: Some(8),
        ..Default::default()
    };
    assert_eq!(m.encode_to_vec(), vec![0x08, 0x08]);
    let m = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        ..Default::default()
    };
    // field 8, length 4: { domain (1) = "", version (2) = 17 }
    assert_eq!(m.encode_to_vec(), vec![0x42, 0x04, 0x0a, 0x00, 0x10, 0x11]);
    // AttributeProto: name = 1, f = 2 (fixed32), type = 20, ints = 8 unpacked (proto2).
    let a = AttributeProto {
        name: Some("a".into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: vec![1, 2],
        ..Default::default()
    };
    assert_eq!(
        a.encode_to_vec(),
        vec![0x0a, 0x01, b'a', 0x40, 0x01, 0x40, 0x02, 0xa0, 0x01, 0x07]
    );
    let a = AttributeProto {
        f: Some(0.0),
        ..Default::default()
    };
    assert_eq!(a.encode_to_vec(), vec![0x15, 0, 0, 0, 0]);
    // Dimension: dim_value = 1, dim_param = 2.
    let d = Dimension {
        value: Some(dimension::Value::DimParam("N".into())),
        denotation: None,
    };
    assert_eq!(d.encode_to_vec(), vec![0x12, 0x01, b'N']);
    // TensorProto: dims = 1, data_type = 2, int64_data = 7 (packed), name = 8.
    let t = TensorProto {
        dims: vec![2],
        data_type: Some(DataType::Int64 as i32),
        int64_data: vec![3, 4],
        name: Some("t".into()),
        ..Default::default()
    };
    assert_eq!(
        t.encode_to_vec(),
        vec![0x08, 0x02, 0x10, 0x07, 0x3a, 0x02, 0x03, 0x04, 0x42, 0x01, b't']
    );
}

#[test]
fn onnx_export_header_inputs_and_outputs() {
    let p = pipeline(
        linear(
            vec![vec![0.1; 7], vec![-0.1; 7], vec![0.0; 7]],
            vec![0.0, 0.1, 0.2],
            PostTransform::Softmax,
        ),
        classification(Labels::Strings(strings(&["a", "b", "c"]))),
    );
    let m = decode(&export(&p, "1.2.3"));
    assert_eq!(m.ir_version, Some(8));
    assert_eq!(m.producer_name.as_deref(), Some("ferroflow"));
    assert_eq!(m.producer_version.as_deref(), Some("1.2.3"));
    let opsets: Vec<(String, i64)> = m
        .opset_import
        .iter()
        .map(|o| (o.domain.clone().unwrap(), o.version.unwrap()))
        .collect();
    assert_eq!(
        opsets,
        vec![("".to_string(), 17), ("ai.onnx.ml".to_string(), 3)]
    );
    let g = m.graph.expect("graph");
    let inputs: Vec<(String, (i32, Vec<String>))> = g
        .input
        .iter()
        .map(|v| (v.name.clone().unwrap(), shape_of(v)))
        .collect();
    let float = DataType::Float as i32;
    let string = DataType::String as i32;
    let n1 = vec!["N".to_string(), "1".to_string()];
    assert_eq!(
        inputs,
        vec![
            ("age".to_string(), (float, n1.clone())),
            ("member".to_string(), (float, n1.clone())),
            ("city".to_string(), (string, n1.clone())),
            ("plan".to_string(), (string, n1.clone())),
        ]
    );
    let outputs: Vec<(String, (i32, Vec<String>))> = g
        .output
        .iter()
        .map(|v| (v.name.clone().unwrap(), shape_of(v)))
        .collect();
    assert_eq!(
        outputs,
        vec![
            ("label".to_string(), (string, vec!["N".to_string()])),
            (
                "probabilities".to_string(),
                (float, vec!["N".to_string(), "3".to_string()])
            ),
        ]
    );
    let ops: Vec<&str> = g.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
    assert_eq!(
        ops,
        vec![
            "Imputer",
            "Scaler",
            "Imputer",
            "Scaler",
            "OneHotEncoder",
            "Flatten",
            "OneHotEncoder",
            "Flatten",
            "Concat",
            "LinearClassifier",
            "ArgMax",
            "Gather",
            "Softmax",
        ]
    );

    let r = pipeline(
        linear(vec![vec![1.0; 7]], vec![0.5], PostTransform::None),
        Task::Regression,
    );
    let g = decode(&export(&r, "x")).graph.unwrap();
    let outputs: Vec<(String, (i32, Vec<String>))> = g
        .output
        .iter()
        .map(|v| (v.name.clone().unwrap(), shape_of(v)))
        .collect();
    assert_eq!(
        outputs,
        vec![(
            "variable".to_string(),
            (float, vec!["N".to_string(), "1".to_string()])
        )]
    );
}

#[test]
fn onnx_internal_names_avoid_column_names() {
    let p = Pipeline {
        inputs: vec![
            column("features", ColumnKind::Numeric),
            column("scores", ColumnKind::Numeric),
        ],
        features: vec![
            FeatureStep::Numeric {
                input: 0,
                impute: 0.0,
                offset: 0.0,
                scale: 1.0,
            },
            FeatureStep::Numeric {
                input: 1,
                impute: 0.0,
                offset: 0.0,
                scale: 1.0,
            },
        ],
        estimator: linear(
            vec![vec![1.0, -1.0], vec![-1.0, 1.0]],
            vec![0.0, 0.0],
            PostTransform::Softmax,
        ),
        task: classification(Labels::Ints(vec![0, 1])),
    };
    let g = decode(&export(&p, "x")).graph.unwrap();
    for node in &g.node {
        for out in &node.output {
            assert!(
                out != "features" && out != "scores",
                "{:?} writes the input {out}",
                node.op_type
            );
        }
    }
    let rows = vec![
        vec![num(1.0), num(2.0)],
        vec![num(3.0), num(-2.0)],
        vec![num(f32::NAN), num(0.5)],
    ];
    check("internal_names", &p, &rows);
}

/// Every value name in the graph (inputs, node outputs, initializers) is defined once, and
/// every graph output is written by exactly one node.
fn assert_names_unique(g: &GraphProto) {
    let mut seen = HashSet::new();
    let defined = g
        .input
        .iter()
        .filter_map(|v| v.name.clone())
        .chain(g.initializer.iter().filter_map(|t| t.name.clone()))
        .chain(g.node.iter().flat_map(|n| n.output.clone()));
    for name in defined {
        assert!(seen.insert(name.clone()), "{name} is defined twice");
    }
    let node_names: Vec<&str> = g.node.iter().filter_map(|n| n.name.as_deref()).collect();
    let distinct: HashSet<&&str> = node_names.iter().collect();
    assert_eq!(
        distinct.len(),
        node_names.len(),
        "node names {node_names:?}"
    );
}

/// Columns named like the outputs, the internal values and the nodes of the graph.
fn colliding_columns(names: &[&str]) -> (Vec<InputColumn>, Vec<FeatureStep>) {
    let inputs = names
        .iter()
        .map(|n| column(n, ColumnKind::Numeric))
        .collect();
    let features = (0..names.len())
        .map(|i| FeatureStep::Numeric {
            input: i,
            impute: 0.5,
            offset: 0.25,
            scale: 2.0,
        })
        .collect();
    (inputs, features)
}

#[test]
fn onnx_columns_named_like_outputs_and_internal_values_still_load_and_answer() {
    let names = [
        "label",
        "probabilities",
        "variable",
        "predicted_label",
        "scores",
        "features",
        "class_labels",
        "label_index",
        "f0_imputed",
        "ArgMax_0",
        "Imputer_0",
    ];
    let (inputs, features) = colliding_columns(&names);
    let width = names.len();
    let rows: Vec<Vec<RawValue>> = (0..12)
        .map(|r| {
            (0..width)
                .map(|c| {
                    if (r + c) % 7 == 0 {
                        num(f32::NAN)
                    } else {
                        num(((r * 5 + c * 3) % 11) as f32 / 4.0 - 1.0)
                    }
                })
                .collect()
        })
        .collect();
    let coefficients: Vec<Vec<f32>> = (0..3)
        .map(|k| {
            (0..width)
                .map(|f| ((f + k) % 4) as f32 * 0.3 - 0.4)
                .collect()
        })
        .collect();
    let classifier = Pipeline {
        inputs: inputs.clone(),
        features: features.clone(),
        estimator: linear(coefficients, vec![0.1, -0.2, 0.0], PostTransform::Softmax),
        task: classification(Labels::Strings(strings(&["label", "probabilities", "x"]))),
    };
    let names_out = output_names(&classifier);
    assert_eq!(names_out.label, "predicted_label_1");
    assert_eq!(names_out.probabilities, "predicted_probabilities");
    let g = decode(&export(&classifier, "x")).graph.unwrap();
    assert_names_unique(&g);
    let outputs: Vec<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
    assert_eq!(outputs, ["predicted_label_1", "predicted_probabilities"]);
    let predicted = check("colliding_names_classifier", &classifier, &rows);
    assert!(distinct(classes(&predicted)) >= 2, "{predicted:?}");

    let regressor = Pipeline {
        inputs,
        features,
        estimator: Estimator::Trees {
            trees: vec![Tree {
                nodes: vec![
                    branch(2, 0.0, BranchMode::Lt, 1, 2),
                    leaf(&[-1.5]),
                    leaf(&[2.25]),
                ],
            }],
            weight: 1.0,
            base_values: vec![0.5],
            post: PostTransform::None,
        },
        task: Task::Regression,
    };
    assert_eq!(output_names(&regressor).variable, "predicted_variable");
    let g = decode(&export(&regressor, "x")).graph.unwrap();
    assert_names_unique(&g);
    check("colliding_names_regressor", &regressor, &rows);
}

#[test]
fn onnx_boolean_text_columns_are_string_inputs_mapped_in_the_graph() {
    let p = Pipeline {
        inputs: vec![
            column("idp", ColumnKind::BooleanText),
            column("score", ColumnKind::Numeric),
        ],
        features: vec![
            FeatureStep::Numeric {
                input: 0,
                impute: 0.4,
                offset: 0.5,
                scale: 2.0,
            },
            FeatureStep::Numeric {
                input: 1,
                impute: 0.0,
                offset: 0.0,
                scale: 1.0,
            },
        ],
        estimator: linear(
            vec![vec![2.0, 0.1], vec![-2.0, -0.1]],
            vec![0.0, 0.0],
            PostTransform::Softmax,
        ),
        task: classification(Labels::Ints(vec![0, 1])),
    };
    let g = decode(&export(&p, "x")).graph.unwrap();
    let string = DataType::String as i32;
    assert_eq!(shape_of(&g.input[0]).0, string, "idp is fed as text");
    assert_eq!(shape_of(&g.input[1]).0, DataType::Float as i32);
    assert_eq!(g.node[0].op_type.as_deref(), Some("LabelEncoder"));
    assert_names_unique(&g);
    // Every boolean word, a word outside the table (missing), and the empty string (missing).
    let mut rows: Vec<Vec<RawValue>> = BOOLEAN_WORDS
        .iter()
        .enumerate()
        .map(|(i, (w, _))| vec![text(w), num(i as f32 / 10.0)])
        .collect();
    rows.push(vec![text("maybe"), num(0.0)]);
    rows.push(vec![text(""), num(1.0)]);
    rows.push(vec![text(" yes"), num(1.0)]);
    // By hand: yes -> (1 - 0.5) * 2 = 1, no -> -1, anything else -> (0.4 - 0.5) * 2.
    assert_eq!(p.features(&[text("yes"), num(0.0)])[0], 1.0);
    assert_eq!(p.features(&[text("N"), num(0.0)])[0], -1.0);
    assert_eq!(
        p.features(&[text("maybe"), num(0.0)])[0],
        (0.4f32 - 0.5) * 2.0
    );
    let predicted = check("boolean_text", &p, &rows);
    let c = classes(&predicted);
    for (i, (_, value)) in BOOLEAN_WORDS.iter().enumerate() {
        assert_eq!(c[i], usize::from(!*value), "row {i}");
    }
}

/// What the model directory asks pip and conda for: ranges of what loading needs, no `onnx`
/// (pyfunc never imports it) and no exact pin, in the files themselves.
#[test]
fn model_files_ask_for_ranges_of_what_loading_needs() {
    let p = pipeline(
        linear(
            vec![vec![0.3, -0.2, 0.5, 0.0, -0.5, 0.2, 0.1], vec![0.0; 7]],
            vec![0.1, 0.0],
            PostTransform::Softmax,
        ),
        classification(Labels::Strings(strings(&["no", "yes"]))),
    );
    let files = crate::package::files(&p, &export(&p, "t"), "m-test", &[], "");
    let text = |name: &str| {
        let (_, bytes) = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"));
        String::from_utf8(bytes.clone()).unwrap()
    };
    let requirements: Vec<String> = text("requirements.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(requirements, ["mlflow>=3.0,<4", "onnxruntime>=1.13"]);
    let conda = text("conda.yaml");
    for r in &requirements {
        assert!(
            conda.contains(r.as_str()),
            "{r} missing from conda.yaml: {conda}"
        );
    }
    assert!(!conda.contains("=="), "an exact pin in conda.yaml: {conda}");
    assert!(
        !conda.contains("- onnx>") && !conda.contains("- onnx="),
        "{conda}"
    );
}

#[test]
fn onnx_check_refuses_a_graph_that_answers_differently_or_does_not_load() {
    use crate::estimators::Output;
    use crate::onnx::check::{disagreement, run, Outcome};

    require_ort("onnx_check_refuses");
    let p = pipeline(
        linear(
            vec![vec![0.3, -0.2, 0.5, 0.0, -0.5, 0.2, 0.1], vec![0.0; 7]],
            vec![0.1, 0.0],
            PostTransform::Softmax,
        ),
        classification(Labels::Strings(strings(&["no", "yes"]))),
    );
    let rows = mixed_rows();
    let expected = p.evaluate(&rows);
    let Prediction::Classification { probabilities, .. } = &expected else {
        panic!("a classification")
    };
    let native = Output::Classes(ndarray::Array2::from_shape_fn((rows.len(), 2), |(i, k)| {
        f64::from(probabilities[i][k])
    }));
    let files = |bytes: Vec<u8>| {
        crate::package::files(&p, &bytes, "m-test", &[], "2026-01-01 00:00:00.000000")
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The faithful export passes.
    let outcome = runtime
        .block_on(run(&files(export(&p, "t")), &p, &rows))
        .expect("the export loads");
    let Outcome::Ran { prediction, .. } = outcome else {
        panic!("ONNX Runtime is loaded")
    };
    assert_eq!(disagreement(&native, &prediction), None);

    // A graph with other weights loads but is caught answering differently.
    let mut other = p.clone();
    other.estimator = linear(
        vec![vec![-0.3, 0.2, -0.5, 0.0, 0.5, -0.2, -0.1], vec![0.0; 7]],
        vec![-0.1, 0.0],
        PostTransform::Softmax,
    );
    let outcome = runtime
        .block_on(run(&files(export(&other, "t")), &p, &rows))
        .expect("the other export loads");
    let Outcome::Ran { prediction, .. } = outcome else {
        panic!("ONNX Runtime is loaded")
    };
    let problem = disagreement(&native, &prediction).expect("a mismatch");
    assert!(problem.contains("row 0"), "{problem}");

    // A graph ONNX Runtime refuses (a value defined twice, as the export once wrote it when a
    // column was called `label`) is an error naming the load.
    let mut broken = model_proto(&p, "t");
    let graph = broken.graph.as_mut().unwrap();
    graph.input[0].name = Some("label".to_string());
    for node in &mut graph.node {
        for input in &mut node.input {
            if input == "age" {
                *input = "label".to_string();
            }
        }
    }
    let err = runtime
        .block_on(run(&files(broken.encode_to_vec()), &p, &rows))
        .expect_err("a broken graph is refused");
    assert!(err.contains("cannot load"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Pipeline::evaluate by hand

#[test]
fn onnx_evaluate_features_by_hand() {
    let p = pipeline(
        linear(vec![vec![0.0; 7]], vec![0.0], PostTransform::None),
        Task::Regression,
    );
    let f = p.features(&[num(45.0), num(1.0), text("tokyo"), text("pro")]);
    assert_eq!(
        f,
        vec![(45.0f32 - 40.0) * 0.1, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    );
    let f = p.features(&[num(f32::NAN), num(f32::NAN), text(""), text("gold")]);
    assert_eq!(
        f,
        vec![(37.5f32 - 40.0) * 0.1, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(p.n_features(), 7);
}

#[test]
fn onnx_evaluate_linear_and_ties_by_hand() {
    // Classes 0 and 1 have identical rows: always tied, the first wins.
    let p = pipeline(
        linear(
            vec![
                vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                vec![-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            vec![0.0, 0.0, 0.0],
            PostTransform::Softmax,
        ),
        classification(Labels::Ints(vec![5, 6, 7])),
    );
    let rows = vec![
        vec![num(50.0), num(0.0), text(""), text("")],
        vec![num(30.0), num(0.0), text(""), text("")],
        vec![num(40.0), num(0.0), text(""), text("")],
    ];
    let Prediction::Classification {
        classes,
        probabilities,
    } = check("linear_ties", &p, &rows)
    else {
        unreachable!()
    };
    // x = 1: scores [1, 1, -1]; x = -1: [-1, -1, 1]; x = 0: all 0 -> class 0.
    assert_eq!(classes, vec![0, 2, 0]);
    let e = 1.0f32.exp();
    let z = e + e + 1.0 / e;
    assert!((probabilities[0][0] - e / z).abs() < 1e-6);
    assert!((probabilities[2][1] - 1.0 / 3.0).abs() < 1e-6);
}

#[test]
fn onnx_evaluate_trees_by_hand() {
    let p = pipeline(
        Estimator::Trees {
            trees: three_class_trees(),
            weight: 0.5,
            base_values: vec![0.0, 0.0, 0.0],
            post: PostTransform::None,
        },
        classification(Labels::Ints(vec![0, 1, 2])),
    );
    // age 40 -> feature 0 is exactly 0.0: tree 0 (Lt) goes right, tree 1 (Leq) goes left.
    // member 1, city paris (f2 = 1), plan basic (f5 = 1, f6 = 0), city tokyo f4 = 0.
    // tree 0: 0 <  0 false -> node 2: f2 = 1 <= 0.5 false -> node 4 [0.2, 0.2, 0.6]
    // tree 1: 0 <= 0 true  -> node 1: f1 = 1 < 0.5 false -> node 3 [0, 0, 1]
    // tree 2: f4 = 0 < 0.5 true -> node 2: f1 = 1 <= 1 true -> node 3 [0.6, 0.4, 0]
    let p0 = p.evaluate(&[vec![num(40.0), num(1.0), text("paris"), text("basic")]]);
    let Prediction::Classification {
        classes,
        probabilities,
    } = p0
    else {
        unreachable!()
    };
    let want = [
        0.5f32 * 0.2 + 0.5 * 0.0 + 0.5 * 0.6,
        0.5 * 0.2 + 0.5 * 0.0 + 0.5 * 0.4,
        0.5 * 0.6 + 0.5 * 1.0 + 0.5 * 0.0,
    ];
    for k in 0..3 {
        assert!((probabilities[0][k] - want[k]).abs() < 1e-6);
    }
    assert_eq!(classes, vec![2]);
}

// ---------------------------------------------------------------------------------------------
// Against ONNX Runtime

#[test]
fn onnx_linear_binary_softmax_int_labels() {
    let p = pipeline(
        linear(
            vec![
                vec![0.8, -1.2, 0.5, -0.3, 0.0, 0.7, -0.7],
                vec![-0.8, 1.2, -0.5, 0.3, 0.0, -0.7, 0.7],
            ],
            vec![0.15, -0.15],
            PostTransform::Softmax,
        ),
        // Not 0/1: onnxruntime's own binary paths answer 0/1 literally.
        classification(Labels::Ints(vec![3, 7])),
    );
    let e = check("linear_binary", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 2);
}

#[test]
fn onnx_linear_binary_logistic_string_labels() {
    let p = pipeline(
        linear(
            vec![
                vec![0.4, -0.6, 0.2, 0.1, -0.1, 0.3, -0.2],
                vec![-0.4, 0.6, -0.2, -0.1, 0.1, -0.3, 0.2],
            ],
            vec![0.0, 0.0],
            PostTransform::Logistic,
        ),
        classification(Labels::Strings(strings(&["no", "yes"]))),
    );
    let e = check("linear_binary_logistic", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 2);
}

#[test]
fn onnx_linear_multiclass_int_labels() {
    let p = pipeline(
        linear(
            vec![
                vec![1.5, 0.2, 0.3, -0.2, 0.1, 0.0, 0.4],
                vec![-0.5, 0.9, -0.4, 0.8, 0.2, 0.3, -0.1],
                vec![-1.0, -1.1, 0.1, -0.6, 0.9, -0.3, -0.3],
            ],
            vec![0.1, 0.0, -0.1],
            PostTransform::Softmax,
        ),
        classification(Labels::Ints(vec![-1, 0, 10])),
    );
    let e = check("linear_multiclass_ints", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 3);
}

#[test]
fn onnx_linear_multiclass_string_labels() {
    let p = pipeline(
        linear(
            vec![
                vec![1.5, 0.2, 0.3, -0.2, 0.1, 0.0, 0.4],
                vec![-0.5, 0.9, -0.4, 0.8, 0.2, 0.3, -0.1],
                vec![-1.0, -1.1, 0.1, -0.6, 0.9, -0.3, -0.3],
                vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            vec![0.1, 0.0, -0.1, -0.5],
            PostTransform::Logistic,
        ),
        classification(Labels::Strings(strings(&["cat", "dog", "fish", "eel"]))),
    );
    let e = check("linear_multiclass_strings", &p, &mixed_rows());
    assert!(distinct(classes(&e)) >= 3);
}

#[test]
fn onnx_linear_multiclass_no_post_transform() {
    let p = pipeline(
        linear(
            vec![
                vec![0.3, 0.2, 0.3, -0.2, 0.1, 0.0, 0.4],
                vec![-0.5, 0.9, -0.4, 0.8, 0.2, 0.3, -0.1],
                vec![-1.0, -1.1, 0.1, -0.6, 0.9, -0.3, -0.3],
            ],
            vec![0.1, 0.0, -0.1],
            PostTransform::None,
        ),
        classification(Labels::Strings(strings(&["a", "b", "c"]))),
    );
    check("linear_multiclass_raw", &p, &mixed_rows());
}

#[test]
fn onnx_linear_regression() {
    let p = pipeline(
        linear(
            vec![vec![12.5, -3.0, 1.25, -0.5, 2.0, 0.0, 4.5]],
            vec![100.0],
            PostTransform::None,
        ),
        Task::Regression,
    );
    check("linear_regression", &p, &mixed_rows());
}

#[test]
fn onnx_tree_classifier_three_trees_averaged() {
    let mut trees = three_class_trees();
    trees.push(Tree {
        nodes: vec![leaf(&[0.1, 0.1, 0.1])],
    });
    let n = trees.len() as f32;
    let p = pipeline(
        Estimator::Trees {
            trees,
            weight: 1.0 / n,
            base_values: vec![0.0, 0.0, 0.0],
            post: PostTransform::None,
        },
        classification(Labels::Strings(strings(&["low", "mid", "high"]))),
    );
    let e = check("tree_classifier", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 3);
}

#[test]
fn onnx_tree_classifier_binary_with_base_values() {
    // Two classes, int labels that are not 0/1, non-zero base values and a softmax: every
    // one of onnxruntime's binary special cases would change the answer.
    let trees = vec![
        Tree {
            nodes: vec![
                branch(0, 0.5, BranchMode::Lt, 1, 2),
                leaf(&[0.9, -0.4]),
                branch(3, 0.5, BranchMode::Leq, 3, 4),
                leaf(&[-0.2, 0.6]),
                leaf(&[0.0, 1.3]),
            ],
        },
        Tree {
            nodes: vec![
                branch(1, 0.5, BranchMode::Leq, 1, 2),
                leaf(&[0.3, 0.0]),
                leaf(&[-0.5, 0.5]),
            ],
        },
    ];
    let p = pipeline(
        Estimator::Trees {
            trees,
            weight: 0.7,
            base_values: vec![0.25, -0.4],
            post: PostTransform::Softmax,
        },
        classification(Labels::Ints(vec![3, 7])),
    );
    let e = check("tree_binary", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 2);
}

#[test]
fn onnx_tree_classifier_boosted_softmax() {
    let p = pipeline(
        Estimator::Trees {
            trees: three_class_trees(),
            weight: 0.3,
            base_values: vec![-0.2, 0.1, 0.05],
            post: PostTransform::Softmax,
        },
        classification(Labels::Ints(vec![1, 2, 3])),
    );
    let e = check("tree_boosted_softmax", &p, &mixed_rows());
    assert!(distinct(classes(&e)) >= 2);
}

#[test]
fn onnx_tree_classifier_logistic_and_ties() {
    // Leaves tie classes 0 and 1: the first wins, in ONNX Runtime too.
    let trees = vec![Tree {
        nodes: vec![
            branch(0, 0.0, BranchMode::Leq, 1, 2),
            leaf(&[0.5, 0.5, 0.1]),
            leaf(&[0.2, 0.7, 0.7]),
        ],
    }];
    let p = pipeline(
        Estimator::Trees {
            trees,
            weight: 1.0,
            base_values: vec![],
            post: PostTransform::Logistic,
        },
        classification(Labels::Strings(strings(&["x", "y", "z"]))),
    );
    let e = check("tree_ties", &p, &mixed_rows());
    assert_eq!(distinct(classes(&e)), 2);
    assert!(classes(&e).iter().all(|&c| c == 0 || c == 1));
}

#[test]
fn onnx_tree_regressor_with_base_value() {
    let trees = vec![
        Tree {
            nodes: vec![
                branch(0, 0.0, BranchMode::Lt, 1, 2),
                leaf(&[-12.0]),
                branch(5, 0.5, BranchMode::Leq, 3, 4),
                leaf(&[7.5]),
                leaf(&[3.25]),
            ],
        },
        Tree {
            nodes: vec![
                branch(1, 0.5, BranchMode::Lt, 1, 2),
                leaf(&[1.0]),
                leaf(&[-2.0]),
            ],
        },
        Tree {
            nodes: vec![leaf(&[0.125])],
        },
    ];
    let p = pipeline(
        Estimator::Trees {
            trees,
            weight: 0.1,
            base_values: vec![42.0],
            post: PostTransform::None,
        },
        Task::Regression,
    );
    let e = check("tree_regressor", &p, &mixed_rows());
    let Prediction::Regression { values } = e else {
        unreachable!()
    };
    let mut v = values.clone();
    v.sort_by(f32::total_cmp);
    v.dedup();
    assert!(v.len() >= 4, "{v:?}");
}

#[test]
fn onnx_single_block_pipelines() {
    // One numeric feature: no Concat.
    let p = Pipeline {
        inputs: vec![column("x", ColumnKind::Numeric)],
        features: vec![FeatureStep::Numeric {
            input: 0,
            impute: 1.0,
            offset: 2.0,
            scale: 0.5,
        }],
        estimator: linear(vec![vec![3.0]], vec![-1.0], PostTransform::None),
        task: Task::Regression,
    };
    let rows = vec![vec![num(0.0)], vec![num(f32::NAN)], vec![num(10.0)]];
    check("single_numeric", &p, &rows);

    // One categorical column only (plus an unused boolean input).
    let p = Pipeline {
        inputs: vec![
            column("unused", ColumnKind::Boolean),
            column("c", ColumnKind::Categorical),
        ],
        features: vec![FeatureStep::OneHot {
            input: 1,
            categories: strings(&["a", "b"]),
        }],
        estimator: linear(
            vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            vec![0.0, 0.5],
            PostTransform::Softmax,
        ),
        task: classification(Labels::Strings(strings(&["A", "B"]))),
    };
    let rows = vec![
        vec![num(0.0), text("a")],
        vec![num(1.0), text("b")],
        vec![num(0.0), text("")],
        vec![num(1.0), text("z")],
    ];
    let e = check("single_onehot", &p, &rows);
    assert_eq!(classes(&e), &[0, 1, 1, 1]);
}

#[test]
fn onnx_empty_batch() {
    let p = pipeline(
        linear(
            vec![vec![1.0; 7], vec![-1.0; 7]],
            vec![0.0, 0.0],
            PostTransform::Softmax,
        ),
        classification(Labels::Ints(vec![0, 1])),
    );
    assert_eq!(
        p.evaluate(&[]),
        Prediction::Classification {
            classes: vec![],
            probabilities: vec![]
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Fitted estimators: the library's own predictions against the exported ONNX graph

mod fitted {
    use super::*;
    use crate::data::{read, Format};
    use crate::estimators::{fit, space, Algorithm, Output, Params, Problem, TrainSet};
    use crate::prep::{prepare, Settings};
    use ndarray::Axis;

    /// Numeric (with missing values), boolean and categorical columns; a target that depends
    /// on all of them.
    fn dataset(problem: Problem, n_classes: usize) -> String {
        let mut csv = String::from("x1,x2,flag,city,target\n");
        let cities = ["paris", "london", "tokyo", "lima"];
        for i in 0..400u32 {
            let x1 = ((i * 37) % 101) as f64 / 10.0;
            let x2 = ((i * 53) % 89) as f64 / 7.0 - 5.0;
            let flag = i % 3 == 0;
            let city = cities[(i as usize * 7) % 4];
            let score = x1 - 0.8 * x2 + if flag { 2.0 } else { 0.0 } + (i % 4) as f64;
            let target = match problem {
                Problem::Regression => format!("{:.3}", score * 3.0 + 10.0),
                Problem::Classification => {
                    let c = ((score.max(0.0) / 4.0) as usize).min(n_classes - 1);
                    if n_classes == 2 {
                        ["no", "yes"][c].to_string()
                    } else {
                        c.to_string()
                    }
                }
            };
            let x1 = if i % 17 == 0 {
                String::new()
            } else {
                x1.to_string()
            };
            let city = if i % 23 == 0 { "" } else { city };
            csv += &format!("{x1},{x2},{flag},{city},{target}\n");
        }
        csv
    }

    fn mid_config(algorithm: Algorithm, problem: Problem) -> Params {
        let dims = space(algorithm, problem);
        let config: Vec<f64> = dims.iter().map(|d| (d.start + 0.35).min(0.9)).collect();
        Params::decode(&dims, &config)
    }

    fn check_algorithm(algorithm: Algorithm, problem: Problem, n_classes: usize) {
        let frame = read(dataset(problem, n_classes).as_bytes(), Format::Csv).unwrap();
        let p = prepare(
            &frame,
            &Settings {
                target: "target",
                problem,
                exclude_cols: &[],
                split_col: None,
                seed: 3,
            },
        )
        .unwrap();
        let train = &p.splits.train;
        let x = p.x.select(Axis(0), train);
        let y = p.y.select(Axis(0), train);
        let params = mid_config(algorithm, problem);
        let model = fit(
            algorithm,
            problem,
            &params,
            &TrainSet {
                x: x.view(),
                y: y.view(),
                n_classes: p.n_classes(),
            },
            5,
        )
        .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        let name = format!("{algorithm}-{problem:?}-{n_classes}");
        let estimator = model
            .export(p.n_classes())
            .unwrap_or_else(|| panic!("{name}: not exported"));
        let pipeline = Pipeline {
            inputs: p.inputs.clone(),
            features: p.features.clone(),
            estimator,
            task: match &p.labels {
                Some(labels) => Task::Classification {
                    labels: labels.clone(),
                },
                None => Task::Regression,
            },
        };
        // Every row (train and held out), so splits on training values are exercised too.
        let rows: Vec<Vec<RawValue>> = p.raw.clone();
        let native = model.predict(p.x.view(), p.n_classes()).unwrap();
        // ONNX Runtime against the pipeline's own evaluation...
        let exported = check(&name, &pipeline, &rows);
        // ...and the pipeline against the library's model.
        match (&native, &exported) {
            (
                Output::Classes(probs),
                Prediction::Classification {
                    classes,
                    probabilities,
                },
            ) => {
                let native_classes = native.classes();
                for i in 0..rows.len() {
                    for k in 0..p.n_classes() {
                        let d = (probs[[i, k]] - probabilities[i][k] as f64).abs();
                        assert!(
                            d <= 1e-5,
                            "{name}: row {i} class {k}: native {} vs onnx {}",
                            probs[[i, k]],
                            probabilities[i][k]
                        );
                    }
                    // Labels agree wherever the native scores have a unique maximum.
                    let row = probs.row(i);
                    let top = row[native_classes[i]];
                    if row.iter().filter(|v| (**v - top).abs() < 1e-6).count() == 1 {
                        assert_eq!(native_classes[i], classes[i], "{name}: label of row {i}");
                    }
                }
            }
            (Output::Values(v), Prediction::Regression { values }) => {
                for i in 0..rows.len() {
                    let d = (v[i] - values[i] as f64).abs();
                    assert!(
                        d <= 1e-5 * v[i].abs().max(1.0),
                        "{name}: row {i}: native {} vs onnx {}",
                        v[i],
                        values[i]
                    );
                }
            }
            _ => panic!("{name}: task mismatch"),
        }
    }

    #[test]
    fn every_exportable_classifier_matches_its_onnx_export() {
        for algorithm in Algorithm::all(Problem::Classification) {
            if algorithm.exportable() {
                check_algorithm(*algorithm, Problem::Classification, 2);
                check_algorithm(*algorithm, Problem::Classification, 3);
            }
        }
    }

    #[test]
    fn every_exportable_regressor_matches_its_onnx_export() {
        for algorithm in Algorithm::all(Problem::Regression) {
            if algorithm.exportable() {
                check_algorithm(*algorithm, Problem::Regression, 0);
            }
        }
    }
}
