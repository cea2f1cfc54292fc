//! End-to-end AutoML tests over HTTP, each on a fresh SQLite file and a fresh PostgreSQL
//! database: a sweep logs its runs, exports and registers its model; bad requests write nothing.

use std::time::{Duration, Instant};

use ferroflow_e2e::{backend_tests, TestApp};
use ferroflow_serving::mlmodel::Schema;
use serde_json::{json, Value};

backend_tests!(
    sweep_logs_trials_exports_and_registers_the_best_model,
    bad_requests_are_400_and_write_nothing,
    columns_named_like_outputs_and_yes_no_text_give_servable_models,
);

/// 150 rows: two numeric columns (one with gaps), a categorical one, a three-class target.
fn dataset() -> String {
    let mut csv = String::from("a,b,color,label\n");
    for i in 0..150u32 {
        let class = i % 3;
        let a = class as f64 * 2.0 + ((i * 7) % 10) as f64 / 10.0;
        let b = ((i * 13) % 17) as f64;
        let a = if i % 19 == 0 {
            String::new()
        } else {
            a.to_string()
        };
        let color = ["red", "green", "blue"][((i / 3) % 3) as usize];
        csv += &format!("{a},{b},{color},{}\n", ["x", "y", "z"][class as usize]);
    }
    csv
}

async fn upload(app: &TestApp, name: &str, body: &str) -> (u16, Value) {
    let res = app
        .client
        .post(format!(
            "{}/api/2.0/automl/datasets?name={name}",
            app.address
        ))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn dataset_uri(app: &TestApp, name: &str, body: &str) -> String {
    let (status, v) = upload(app, name, body).await;
    assert_eq!(status, 200, "{v}");
    v["dataset"].as_str().expect("dataset").to_string()
}

async fn start(app: &TestApp, body: Value) -> (u16, Value) {
    app.raw(
        reqwest::Method::POST,
        "/api/2.0/automl/runs",
        &body.to_string(),
    )
    .await
}

/// How far past its budget a finished sweep may run (export, ONNX Runtime check and logging in
/// a debug build on a loaded 2-core machine); the poll gives up a little later.
const OVERRUN_S: f64 = 20.0;

/// Polls until the job leaves RUNNING; the sweeps here have 6 s budgets.
async fn wait(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs_f64(6.0 + OVERRUN_S + 25.0);
    loop {
        let (status, v) = app
            .raw(
                reqwest::Method::GET,
                &format!("/api/2.0/automl/runs/{id}"),
                "",
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let run = v["automl_run"].clone();
        if run["state"] != "RUNNING" {
            return run;
        }
        assert!(Instant::now() < deadline, "still running: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sweep_logs_trials_exports_and_registers_the_best_model(app: &TestApp) {
    let uri = dataset_uri(app, "train.csv", &dataset()).await;
    let (status, v) = start(
        app,
        json!({
            "dataset": uri, "target_col": "label", "problem_type": "classification",
            "timeout_minutes": 0.1, "experiment_name": "automl-e2e",
            "register_model_name": "automl-e2e-model", "seed": 7,
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["automl_run"]["id"].as_str().unwrap().to_string();
    let parent = v["automl_run"]["parent_run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = wait(app, &id).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    let summary = &run["summary"];
    // How many trials fit the 6 s budget depends on the machine; a sweep means more than one.
    assert!(summary["trials"].as_u64().unwrap() >= 2, "{summary}");
    let (elapsed, budget) = (
        summary["elapsed_seconds"].as_f64().unwrap(),
        summary["budget_seconds"].as_f64().unwrap(),
    );
    assert!(
        budget == 6.0 && elapsed <= budget + OVERRUN_S,
        "the budget must hold: {summary}"
    );
    assert_eq!(summary["rows"]["test"], 30);
    let agreement = &summary["model"]["onnx_vs_native"];
    assert!(
        agreement["max_abs_probability_diff"].as_f64().unwrap() <= 1e-5,
        "{agreement}"
    );
    assert_eq!(agreement["labels_differ"], 0);

    // One child run per trial, under the summary run.
    let experiment_id = run["experiment_id"].as_str().unwrap();
    let children = app
        .ok(
            "runs/search",
            json!({
                "experiment_ids": [experiment_id],
                "filter": format!("tags.mlflow.parentRunId = '{parent}'"),
                "max_results": 1000,
            }),
        )
        .await;
    let children = children["runs"].as_array().cloned().unwrap_or_default();
    let logged_trials = run["progress"]["trials"].as_array().unwrap().len();
    assert_eq!(children.len(), logged_trials);
    let child = &children[0]["data"];
    let params: Vec<&str> = child["params"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert!(params.contains(&"estimator"), "{params:?}");
    let metrics: Vec<&str> = child["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["key"].as_str())
        .collect();
    assert!(
        metrics.contains(&"val_f1") && metrics.contains(&"train_f1"),
        "{metrics:?}"
    );

    // The summary run holds the test metrics and the report.
    let (_, parent_run) = app.get(&format!("runs/get?run_id={parent}")).await;
    let keys: Vec<&str> = parent_run["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["key"].as_str())
        .collect();
    for k in ["test_f1", "test_accuracy", "test_log_loss", "test_roc_auc"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert_eq!(parent_run["run"]["info"]["status"], "FINISHED");
    let (_, files) = app
        .get(&format!("artifacts/list?run_id={parent}&path=plots"))
        .await;
    let plots: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for p in [
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/feature_importance.png",
    ] {
        assert!(plots.contains(&p), "{p} missing from {plots:?}");
    }

    // The registered version points at the logged ONNX model.
    let model_id = summary["model"]["model_id"].as_str().unwrap();
    let (status, version) = app
        .get("model-versions/get?name=automl-e2e-model&version=1")
        .await;
    assert_eq!(status, 200, "{version}");
    assert_eq!(
        version["model_version"]["source"],
        format!("models:/{model_id}")
    );
    let (status, model) = app.get(&format!("logged-models/{model_id}")).await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["model"]["info"]["status"], "LOGGED_MODEL_READY");
}

async fn bad_requests_are_400_and_write_nothing(app: &TestApp) {
    let good = dataset_uri(app, "good.csv", &dataset()).await;
    let one_class = dataset_uri(
        app,
        "one.csv",
        &(0..20).fold(String::from("a,label\n"), |s, i| s + &format!("{i},x\n")),
    )
    .await;
    let header_only = dataset_uri(app, "header.csv", "a,b,label\n").await;
    let (status, v) = upload(app, "empty.csv", "").await;
    assert_eq!(status, 400, "{v}");
    let cases = [
        (
            json!({"dataset": good, "target_col": "nope", "problem_type": "classification"}),
            "not a column",
        ),
        (
            json!({"dataset": one_class, "target_col": "label", "problem_type": "classification"}),
            "only one class",
        ),
        (
            json!({"dataset": header_only, "target_col": "label", "problem_type": "classification"}),
            "no rows",
        ),
        (
            json!({"dataset": good, "target_col": "label", "problem_type": "regression"}),
            "must be numeric",
        ),
        (
            json!({"dataset": good, "target_col": "label", "problem_type": "classification", "timeout_minutes": 0}),
            "timeout_minutes",
        ),
        (
            json!({"dataset": good, "target_col": "label", "problem_type": "clustering"}),
            "problem_type",
        ),
        (
            json!({"dataset": good, "target_col": "label", "problem_type": "classification", "primary_metric": "r2"}),
            "primary_metric",
        ),
        (
            json!({"dataset": good, "target_col": "label", "problem_type": "classification", "exclude_algorithms": ["magic"]}),
            "exclude_algorithms",
        ),
        (
            json!({"target_col": "label", "problem_type": "classification"}),
            "dataset",
        ),
    ];
    for (i, (mut body, message)) in cases.into_iter().enumerate() {
        body["register_model_name"] = json!(format!("never-{i}"));
        let (status, v) = start(app, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert_eq!(v["error_code"], "INVALID_PARAMETER_VALUE", "{v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(message),
            "{body}: message {v} should mention {message}"
        );
        let (status, _) = app
            .get(&format!("registered-models/get?name=never-{i}"))
            .await;
        assert_eq!(status, 404);
    }
    let (status, v) = start(
        app,
        json!({"dataset": "mlflow-artifacts:/nope/x.csv", "target_col": "label", "problem_type": "classification"}),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let (_, runs) = app
        .raw(reqwest::Method::GET, "/api/2.0/automl/runs", "")
        .await;
    assert_eq!(runs["automl_runs"], json!([]), "{runs}");
    // Nothing was created in tracking either: only the Default experiment exists.
    let experiments = app
        .ok("experiments/search", json!({"max_results": 100}))
        .await;
    assert_eq!(
        experiments["experiments"].as_array().unwrap().len(),
        1,
        "{experiments}"
    );
}

/// 200 rows whose feature columns are named like the graph's outputs (`label`,
/// `probabilities`, `variable`), plus a yes/no column, a class target and a numeric target.
fn colliding_dataset() -> String {
    let mut csv = String::from("label,probabilities,variable,idp,outcome,amount\n");
    for i in 0..200u32 {
        let idp = i % 3 != 0;
        let label = ((i * 7) % 23) as f64 / 4.0;
        let probabilities = ((i * 11) % 13) as f64;
        let variable = if i % 17 == 0 {
            String::new()
        } else {
            format!("{}", ((i * 5) % 19) as f64 / 2.0)
        };
        let good = idp && label > 1.5 || label > 4.5;
        let amount = label * 3.0 + if idp { 10.0 } else { 0.0 } + probabilities / 10.0;
        csv += &format!(
            "{label},{probabilities},{variable},{},{},{amount}\n",
            if idp { "yes" } else { "no" },
            if good { "good" } else { "bad" }
        );
    }
    csv
}

/// GETs an artifact through the proxied artifacts API: JSON files parsed, others as text.
async fn artifact(app: &TestApp, artifact_uri: &str, path: &str) -> Value {
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or_else(|| panic!("not a proxied artifact URI: {artifact_uri}"));
    let (status, v) = app
        .raw(
            reqwest::Method::GET,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{rest}/{path}"),
            "",
        )
        .await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// Runs a sweep to SUCCEEDED and returns the job.
async fn sweep(app: &TestApp, uri: &str, target: &str, problem: &str, model: &str) -> Value {
    let exclude = if target == "outcome" {
        "amount"
    } else {
        "outcome"
    };
    let (status, v) = start(
        app,
        json!({
            "dataset": uri, "target_col": target, "problem_type": problem,
            "timeout_minutes": 0.1, "exclude_cols": [exclude],
            "register_model_name": model, "seed": 3,
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["automl_run"]["id"].as_str().unwrap().to_string();
    let run = wait(app, &id).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    run
}

async fn columns_named_like_outputs_and_yes_no_text_give_servable_models(app: &TestApp) {
    let uri = dataset_uri(app, "colliding.csv", &colliding_dataset()).await;
    let ort = std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| !p.is_empty());
    if !ort {
        eprintln!("ORT_DYLIB_PATH is not set: the exports are checked without ONNX Runtime and not served");
    }
    for (target, problem, outputs) in [
        (
            "outcome",
            "classification",
            vec!["predicted_label", "predicted_probabilities"],
        ),
        ("amount", "regression", vec!["predicted_variable"]),
    ] {
        let model = format!("colliding-{problem}");
        let run = sweep(app, &uri, target, problem, &model).await;
        let summary = &run["summary"];
        let checked = &summary["model"]["onnx_vs_native"];
        if ort {
            // Checked by loading the exported graph in ONNX Runtime, not by our own evaluation.
            assert!(
                checked["checked_with"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("onnxruntime ")),
                "{checked}"
            );
        }
        assert_eq!(summary["export_rejected"], json!([]), "{summary}");

        // The model takes the columns as the client has them: idp as text, in the signature
        // and in the input example.
        let artifact_uri = summary["model"]["artifact_uri"].as_str().unwrap();
        let example = artifact(app, artifact_uri, "input_example.json").await;
        assert_eq!(
            example["columns"],
            json!(["label", "probabilities", "variable", "idp"]),
            "{example}"
        );
        for row in example["data"].as_array().unwrap() {
            assert!(row[3] == "yes" || row[3] == "no", "{example}");
        }
        let Value::String(text) = artifact(app, artifact_uri, "MLmodel").await else {
            panic!("MLmodel is YAML text")
        };
        let mlmodel = ferroflow_serving::MlModel::parse(&text).expect("MLmodel parses");
        let signature = mlmodel.signature.expect("a signature");
        let tensors = |schema: Option<Schema>| match schema {
            Some(Schema::Tensors(t)) => t
                .into_iter()
                .map(|t| (t.name.unwrap_or_default(), t.dtype_name))
                .collect::<Vec<_>>(),
            other => panic!("not a tensor schema: {other:?}"),
        };
        let inputs = tensors(signature.inputs);
        assert_eq!(
            inputs,
            [
                ("label".to_string(), "float32".to_string()),
                ("probabilities".to_string(), "float32".to_string()),
                ("variable".to_string(), "float32".to_string()),
                ("idp".to_string(), "object".to_string()),
            ]
        );
        let names: Vec<String> = tensors(signature.outputs)
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(names, outputs);
        if !ort {
            continue;
        }

        // Served: the raw held-out rows (yes/no as text) answer what the native model answers.
        let (_, parent) = app
            .get(&format!(
                "runs/get?run_id={}",
                run["parent_run_id"].as_str().unwrap()
            ))
            .await;
        let native = artifact(
            app,
            parent["run"]["info"]["artifact_uri"].as_str().unwrap(),
            "native_predictions.json",
        )
        .await;
        let (status, endpoint) = app
            .raw(
                reqwest::Method::POST,
                "/api/2.0/serving-endpoints",
                &json!({"name": model, "config": {"served_models": [
                    {"model_name": model, "model_version": "1"}
                ]}})
                .to_string(),
            )
            .await;
        assert_eq!(status, 200, "{endpoint}");
        let (status, served) = app
            .raw(
                reqwest::Method::POST,
                &format!("/serving-endpoints/{model}/invocations"),
                &json!({"dataframe_split": {"columns": native["columns"], "data": native["data"]}})
                    .to_string(),
            )
            .await;
        assert_eq!(status, 200, "{served}");
        let predictions = &served["predictions"];
        let want = &native["predictions"];
        for output in &outputs {
            assert!(
                predictions.get(output).is_some(),
                "{output} not in {served}"
            );
        }
        match problem {
            "classification" => {
                assert_eq!(predictions["predicted_label"], want["predicted_label"]);
                let got = predictions["predicted_probabilities"].as_array().unwrap();
                let want = want["predicted_probabilities"].as_array().unwrap();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    for (a, b) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
                        let d = (a.as_f64().unwrap() - b.as_f64().unwrap()).abs();
                        assert!(d <= 1e-5, "{a} vs {b}");
                    }
                }
            }
            _ => {
                let got = predictions["predicted_variable"].as_array().unwrap();
                let want = want["predicted_variable"].as_array().unwrap();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    let g = g
                        .as_array()
                        .map_or_else(|| g.as_f64(), |a| a[0].as_f64())
                        .unwrap();
                    let w = w.as_f64().unwrap();
                    assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
                }
            }
        }
    }
}
