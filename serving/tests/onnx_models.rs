//! Real ONNX Runtime, real MLflow models: every answer is compared with what MLflow's own
//! scoring server gives for the same request (written by tests/fixtures/make_models.py).
//!
//! Needs the repo venv (`scripts/python-env.sh`) and the ONNX Runtime library
//! (`scripts/onnxruntime.sh`); fails, never skips, without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use actix_web::{test, App};
use ferroflow_serving::protocol::ScoringError;
use ferroflow_serving::v2::InferRequest;
use ferroflow_serving::{init_runtime, BatchOptions, LoadedModel, RuntimeStatus};
use serde_json::{json, Value};

const TOLERANCE: f64 = 1e-6;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    let path = std::env::var_os("FERROFLOW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "Python with mlflow/skl2onnx/onnxruntime not found at {}: run scripts/python-env.sh \
         (creates .venv) or set FERROFLOW_PYTHON",
        path.display()
    );
    path
}

fn onnxruntime_lib() -> PathBuf {
    let path = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".ort/lib/libonnxruntime.so.1.31.1"));
    assert!(
        path.exists(),
        "ONNX Runtime library not found at {}: run scripts/onnxruntime.sh or set ORT_DYLIB_PATH",
        path.display()
    );
    path
}

/// Generates the models once per test binary and loads ONNX Runtime.
fn models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = init_runtime(Some(&onnxruntime_lib()));
        assert!(
            matches!(status, RuntimeStatus::Ready { .. }),
            "ONNX Runtime failed to load: {status:?}"
        );
        let dir =
            std::env::temp_dir().join(format!("ferroflow-serving-models-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_models.py");
        let out = Command::new(python())
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("failed to run make_models.py");
        assert!(
            out.status.success(),
            "make_models.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn load(name: &str, opts: BatchOptions) -> Arc<LoadedModel> {
    LoadedModel::load(&models().join(name), opts).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn batching() -> BatchOptions {
    BatchOptions {
        max_batch_size: 16,
        max_delay_us: 500,
        workers: 2,
    }
}

/// JSON equality with floats compared to an absolute tolerance.
fn assert_close(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            if e.is_f64() || a.is_f64() {
                let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
                assert!((a - e).abs() <= TOLERANCE, "{path}: {a} vs expected {e}");
            } else {
                assert_eq!(a, e, "{path}");
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{path}: length");
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            let mut ak: Vec<_> = a.keys().collect();
            let mut ek: Vec<_> = e.keys().collect();
            ak.sort();
            ek.sort();
            assert_eq!(ak, ek, "{path}: keys");
            for (k, v) in e {
                assert_close(&a[k], v, &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

/// Python prints sets in hash order; sort the items of `{'a', 'b'}` literals to compare.
fn canonical_sets(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{'") {
        let Some(len) = rest[start..].find("'}") else {
            break;
        };
        let inner = &rest[start + 1..start + len + 1];
        let mut items: Vec<&str> = inner.split(", ").collect();
        items.sort();
        out.push_str(&rest[..start]);
        out.push('{');
        out.push_str(&items.join(", "));
        out.push('}');
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Ours must carry MLflow's detail: the text after its last "Error: " (MLflow prefixes it with
/// pandas/numpy reprs of the data, which we do not print), or the whole message if none.
fn assert_message_matches(case: &str, ours: &str, mlflow: &str) {
    let (ours, mlflow) = (canonical_sets(ours), canonical_sets(mlflow));
    match mlflow.rfind("Error: ") {
        // Python's JSONDecodeError text is not serde_json's: compare what precedes it.
        Some(i) if mlflow[i..].contains("JSONDecodeError") => {
            assert!(
                ours.starts_with(&mlflow[..i]),
                "{case}: {ours:?} vs MLflow {mlflow:?}"
            )
        }
        Some(i) => {
            let tail = &mlflow[i + "Error: ".len()..];
            assert!(
                ours.ends_with(tail),
                "{case}: {ours:?}\n  does not end with MLflow's {tail:?}"
            )
        }
        None => assert!(
            ours.starts_with(&mlflow),
            "{case}: {ours:?} vs MLflow {mlflow:?}"
        ),
    }
}

async fn check_cases(model_name: &str) {
    let model = load(model_name, batching());
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(models().join(model_name).join("cases.json")).unwrap(),
    )
    .unwrap();
    assert!(!cases.is_empty());
    for case in &cases {
        let name = format!("{model_name}/{}", case["name"].as_str().unwrap());
        let content_type = case["content_type"].as_str();
        let body = case["body"].as_str().unwrap().as_bytes();
        let status = case["status"].as_u64().unwrap();
        let expected = &case["response"];
        match model.invocations(content_type, body).await {
            Ok(v) => {
                assert_eq!(
                    status, 200,
                    "{name}: we answered 200 {v}, MLflow {status} {expected}"
                );
                assert_close(&v, expected, &name);
            }
            Err(ScoringError::UnsupportedMediaType(text)) => {
                assert_eq!(status, 415, "{name}: we answered 415, MLflow {status}");
                assert_eq!(
                    canonical_sets(&text),
                    canonical_sets(expected.as_str().unwrap()),
                    "{name}"
                );
            }
            Err(ScoringError::Mlflow(e)) => {
                assert_eq!(
                    u64::from(e.code.http_status().as_u16()),
                    status,
                    "{name}: we answered {} {:?}, MLflow {expected}",
                    e.code.as_str(),
                    e.message
                );
                assert_eq!(
                    e.code.as_str(),
                    expected["error_code"].as_str().unwrap(),
                    "{name}"
                );
                assert_message_matches(&name, &e.message, expected["message"].as_str().unwrap());
            }
        }
    }
}

#[actix_web::test]
async fn logistic_regression_with_column_signature_answers_like_mlflow() {
    check_cases("iris_logreg").await;
}

#[actix_web::test]
async fn random_forest_with_zipmap_answers_like_mlflow() {
    check_cases("iris_rf_zipmap").await;
}

#[actix_web::test]
async fn random_forest_without_zipmap_answers_like_mlflow() {
    check_cases("iris_rf").await;
}

#[actix_web::test]
async fn mlp_without_signature_answers_like_mlflow() {
    check_cases("iris_mlp").await;
}

#[actix_web::test]
async fn string_labels_answer_like_mlflow() {
    check_cases("iris_string_labels").await;
}

#[actix_web::test]
async fn double_regression_answers_like_mlflow() {
    check_cases("regression").await;
}

#[actix_web::test]
async fn two_input_model_answers_like_mlflow() {
    check_cases("two_inputs").await;
}

#[actix_web::test]
async fn every_element_type_round_trips_like_mlflow() {
    check_cases("typed").await;
}

#[actix_web::test]
async fn params_are_checked_against_the_params_schema_like_mlflow() {
    check_cases("iris_params").await;
}

#[actix_web::test]
async fn predictions_match_pyfunc_predict() {
    for name in [
        "iris_logreg",
        "iris_rf_zipmap",
        "iris_rf",
        "iris_mlp",
        "iris_string_labels",
        "regression",
        "two_inputs",
        "typed",
    ] {
        let model = load(name, BatchOptions::default());
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(models().join(name).join("predict.json")).unwrap(),
        )
        .unwrap();
        let body = serde_json::to_vec(&expected["request"]).unwrap();
        let got = model
            .invocations(Some("application/json"), &body)
            .await
            .unwrap();
        assert_close(&got["predictions"], &expected["predictions"], name);
    }
}

#[actix_web::test]
async fn the_graph_is_read_from_the_onnx_file() {
    let model = load("iris_rf_zipmap", BatchOptions::default());
    let inputs: Vec<String> = model.inputs().iter().map(|i| i.type_string()).collect();
    assert_eq!(inputs, vec!["tensor(float)"]);
    let outputs: Vec<String> = model.outputs().iter().map(|o| o.type_string()).collect();
    assert_eq!(
        outputs,
        vec!["tensor(int64)", "seq(map(int64,tensor(float)))"]
    );
    let labels = load("iris_string_labels", BatchOptions::default());
    assert_eq!(
        labels.outputs()[1].type_string(),
        "seq(map(string,tensor(float)))"
    );
    assert_eq!(model.mlmodel().mlflow_version.as_deref(), Some("3.17.2"));
}

#[actix_web::test]
async fn concurrent_requests_are_batched_and_split_back_correctly() {
    let model = load(
        "iris_rf_zipmap",
        BatchOptions {
            max_batch_size: 32,
            max_delay_us: 2_000,
            workers: 2,
        },
    );
    let reference = load("iris_rf_zipmap", BatchOptions::default());
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            let f = i as f64;
            vec![
                4.5 + f * 0.08,
                2.2 + (f * 0.05) % 1.5,
                1.0 + f * 0.14,
                0.1 + f * 0.06,
            ]
        })
        .collect();
    let mut handles = Vec::new();
    for i in 0..40usize {
        let n = 1 + i % 4;
        let data: Vec<Vec<f64>> = (0..n).map(|k| rows[(i + k) % rows.len()].clone()).collect();
        let body = serde_json::to_vec(&json!({ "inputs": data })).unwrap();
        let model = model.clone();
        handles.push(actix_web::rt::spawn(async move {
            let got = model
                .invocations(Some("application/json"), &body)
                .await
                .unwrap();
            (body, got)
        }));
    }
    let mut total_rows = 0;
    for h in handles {
        let (body, got) = h.await.unwrap();
        let alone = reference
            .invocations(Some("application/json"), &body)
            .await
            .unwrap();
        assert_close(&got, &alone, "batched vs alone");
        total_rows += got["predictions"]["output_label"].as_array().unwrap().len();
    }
    let counters = model.batch_counters();
    // Warm-up runs bypass the batcher; every request row went through exactly one run.
    assert_eq!(counters.rows as usize, total_rows);
    assert!(counters.batches <= 40);
    assert_eq!(model.queue_depth(), 0);
}

#[actix_web::test]
async fn v2_infer_matches_the_mlflow_dict_output() {
    let model = load("two_inputs", batching());
    let request: InferRequest = serde_json::from_value(json!({
        "id": "r1",
        "inputs": [
            {"name": "a", "shape": [3, 2], "datatype": "FP32", "data": [1.5, 2.25, -3.0, 0.1, 7.0, 8.0]},
            {"name": "b", "shape": [3, 2], "datatype": "FP32", "data": [[0.5, 4.0], [2.0, 0.3], [-1.0, 0.001]]}
        ]
    }))
    .unwrap();
    let response = model.infer("two", Some("1"), request).await.unwrap();
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(models().join("two_inputs/cases.json")).unwrap(),
    )
    .unwrap();
    let expected =
        &cases.iter().find(|c| c["name"] == "inputs").unwrap()["response"]["predictions"];
    assert_eq!(response.id, "r1");
    assert_eq!(response.model_version.as_deref(), Some("1"));
    for out in &response.outputs {
        assert_eq!(out.shape, vec![3, 2]);
        assert_eq!(out.datatype, "FP32");
        let flat: Vec<Value> = expected[&out.name]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().clone())
            .collect();
        assert_close(
            &Value::Array(out.data.clone()),
            &Value::Array(flat),
            &out.name,
        );
    }
}

#[actix_web::test]
async fn scoring_routes_serve_mlflow_and_v2_endpoints() {
    let model = load("iris_rf_zipmap", BatchOptions::default());
    let app = test::init_service(
        App::new().configure(ferroflow_serving::routes::scoring_app_config(model, "iris")),
    )
    .await;

    let resp = test::call_service(&app, test::TestRequest::get().uri("/ping").to_request()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(test::read_body(resp).await, "\n");

    let req = test::TestRequest::post()
        .uri("/invocations")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"inputs": [[5.1, 3.5, 1.4, 0.2]]}"#)
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["predictions"]["output_label"], json!([0]));

    let req = test::TestRequest::post()
        .uri("/invocations")
        .insert_header(("content-type", "text/plain"))
        .set_payload("x")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/plain");

    let req = test::TestRequest::post()
        .uri("/invocations")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"inputs": [[5.1, 3.5, 1.4]]}"#)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), 400);
    let err: Value = test::read_body_json(resp).await;
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");

    let meta: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get().uri("/v2/models/iris").to_request(),
    )
    .await;
    assert_eq!(meta["platform"], "onnxruntime_onnx");
    assert_eq!(
        meta["inputs"],
        json!([{"name": "X", "datatype": "FP32", "shape": [-1, 4]}])
    );
    assert_eq!(meta["outputs"][1]["datatype"], "BYTES");

    let req = test::TestRequest::post()
        .uri("/v2/models/iris/versions/3/infer")
        .set_payload(r#"{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [6.3, 3.3, 6.0, 2.5]}]}"#)
        .to_request();
    let infer: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(infer["model_name"], "iris");
    assert_eq!(infer["model_version"], "3");
    assert_eq!(infer["outputs"][0]["data"], json!([2]));
    let probs: Value =
        serde_json::from_str(infer["outputs"][1]["data"][0].as_str().unwrap()).unwrap();
    assert!(probs["2"].as_f64().unwrap() > 0.5);

    let req = test::TestRequest::post()
        .uri("/v2/models/iris/infer")
        .set_payload(r#"{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}"#)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), 400);
    let err: Value = test::read_body_json(resp).await;
    assert!(err["message"].as_str().unwrap().contains("input 'X'"));

    for (uri, status) in [
        ("/v2/models/other", 404),
        ("/v2/models/iris/ready", 200),
        ("/v2/health/live", 200),
        ("/v2/health/ready", 200),
        ("/version", 200),
        ("/health", 200),
    ] {
        let resp = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(resp.status(), status, "{uri}");
    }
}

#[actix_web::test]
async fn a_directory_without_the_onnx_flavor_is_a_400_naming_its_flavors() {
    models();
    let dir =
        std::env::temp_dir().join(format!("ferroflow-serving-sklearn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("MLmodel"),
        "flavors:\n  sklearn: {}\n  python_function: {}\n",
    )
    .unwrap();
    let err = LoadedModel::load(&dir, BatchOptions::default()).unwrap_err();
    assert_eq!(err.code.as_str(), "INVALID_PARAMETER_VALUE");
    assert!(
        err.message.contains("python_function, sklearn"),
        "{}",
        err.message
    );
}
