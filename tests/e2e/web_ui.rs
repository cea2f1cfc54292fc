//! The web UI's server side: the bundle at `/` and `/static-files/`, `--static-prefix`,
//! GraphQL in MLflow's shape, and the UI's side calls (history bulk, dataset summaries,
//! model-version files, uploads, the empty gateway/assistant/telemetry answers).

use ferroflow_e2e::{backend_tests, spawn_app_with, Store, TestApp};
use serde_json::{json, Value};

/// A fake bundle: what the server needs of MLflow's (an index and a hashed asset).
fn bundle() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroflow-ui-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("static/js")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        r#"<!doctype html><html><head><script defer src="static-files/static/js/main.abc123.js"></script></head><body><div id="root"></div></body></html>"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("static/js/main.abc123.js"),
        "console.log('mlflow');\n".repeat(2000),
    )
    .unwrap();
    dir
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn the_bundle_is_served_as_mlflow_serves_it() {
    let folder = bundle();
    let f = folder.clone();
    let app = spawn_app_with(Store::Sqlite, move |c| c.static_folder = Some(f.clone()))
        .await
        .unwrap();
    let index = get(&app, "/", &[]).await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(index
        .text()
        .await
        .unwrap()
        .contains("static-files/static/js/main.abc123.js"));

    let asset = get(&app, "/static-files/static/js/main.abc123.js", &[]).await;
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["cache-control"], "public, max-age=2419200");
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let etag = asset.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(asset.bytes().await.unwrap().len(), 23 * 2000);
    // The browser's copy is current: 304, no body.
    let again = get(
        &app,
        "/static-files/static/js/main.abc123.js",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(again.status(), 304);
    // Compressed when the client accepts it (reqwest here does not decode).
    for (encoding, name) in [("gzip", "gzip"), ("br", "br")] {
        let res = get(
            &app,
            "/static-files/static/js/main.abc123.js",
            &[("Accept-Encoding", encoding)],
        )
        .await;
        assert_eq!(res.headers()["content-encoding"], name);
        assert!(res.bytes().await.unwrap().len() < 23 * 2000 / 10);
    }
    // API answers are not compressed.
    let api = get(
        &app,
        "/api/2.0/mlflow/experiments/search?max_results=10",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert!(api.headers().get("content-encoding").is_none());
    // Nothing outside the folder.
    for path in [
        "/static-files/../Cargo.toml",
        "/static-files/%2e%2e/Cargo.toml",
        "/static-files/static/js/missing.js",
    ] {
        let res = get(&app, path, &[]).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn without_a_bundle_the_root_says_how_to_install_it() {
    let app = spawn_app_with(Store::Sqlite, |c| {
        c.static_folder = Some("no-such-ui-folder".into())
    })
    .await
    .unwrap();
    let res = get(&app, "/", &[]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("scripts/mlflow-ui.sh"), "{page}");
    assert_eq!(get(&app, "/health", &[]).await.status(), 200);
}

#[tokio::test]
async fn static_prefix_moves_every_path_under_it() {
    let folder = bundle();
    let f = folder.clone();
    let app = spawn_app_with(Store::Sqlite, move |c| {
        c.static_folder = Some(f.clone());
        c.static_prefix = Some("/mlflow".into());
    })
    .await
    .unwrap();
    assert_eq!(get(&app, "/mlflow/", &[]).await.status(), 200);
    assert_eq!(get(&app, "/mlflow", &[]).await.status(), 200);
    assert_eq!(get(&app, "/mlflow/health", &[]).await.status(), 200);
    assert_eq!(
        get(&app, "/mlflow/static-files/static/js/main.abc123.js", &[])
            .await
            .status(),
        200
    );
    let (status, body) = app
        .raw(
            reqwest::Method::POST,
            "/mlflow/api/2.0/mlflow/experiments/create",
            r#"{"name": "under-prefix"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Outside the prefix nothing is served, in MLflow's error shape.
    for path in [
        "/health",
        "/",
        "/mlflowx/health",
        "/api/2.0/mlflow/experiments/search",
    ] {
        let res = get(&app, path, &[]).await;
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND", "{path}");
    }
    let _ = std::fs::remove_dir_all(folder);
}

async fn graphql(app: &TestApp, query: &str, variables: Value) -> Value {
    let (status, body) = app
        .raw(
            reqwest::Method::POST,
            "/graphql",
            &json!({"query": query, "variables": variables}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A run with params, tags, a metric history (NaN included), an input dataset, artifacts,
/// and a model version made from it.
async fn populated(app: &TestApp) -> (String, String) {
    let exp = app.create_experiment("GraphqlTest").await;
    let run = app.create_run(&exp, 1_700_000_000_000).await;
    let mut metrics = vec![];
    for step in 0..10 {
        metrics.push(json!({"key": "loss", "value": 1.0 / (step as f64 + 1.0), "timestamp": 1000 + step, "step": step}));
    }
    metrics.push(json!({"key": "nan_metric", "value": "NaN", "timestamp": 2, "step": 2}));
    app.ok(
        "runs/log-batch",
        json!({"run_id": run, "metrics": metrics, "params": [{"key": "lr", "value": "0.1"}],
               "tags": [{"key": "team", "value": "vision"}]}),
    )
    .await;
    app.ok(
        "runs/log-inputs",
        json!({"run_id": run, "datasets": [
            {"dataset": {"name": "ds1", "digest": "12345", "source_type": "local", "source": "{}"}},
            {"dataset": {"name": "ds2", "digest": "12346", "source_type": "local", "source": "{}"},
             "tags": [{"key": "mlflow.data.context", "value": "training"}]}]}),
    )
    .await;
    let (s, _) = app
        .raw(
            reqwest::Method::PUT,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/model/MLmodel"),
            "artifact_path: model\nflavors: {}\n",
        )
        .await;
    assert_eq!(s, 200);
    app.ok("registered-models/create", json!({"name": "GraphqlTest"}))
        .await;
    app.ok(
        "model-versions/create",
        json!({"name": "GraphqlTest", "source": format!("runs:/{run}/model"), "run_id": run}),
    )
    .await;
    (exp, run)
}

async fn graphql_in_mlflows_shape(app: &TestApp) {
    let (exp, run) = populated(app).await;
    // MLflow's own tests (tests/tracking/test_rest_tracking.py), query for query.
    let body = graphql(
        app,
        r#"query testQuery {test(inputString: "abc") { output }}"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body,
        json!({"data": {"test": {"output": "abc"}}, "errors": null})
    );

    let q = format!(
        r#"query testQuery {{mlflowGetExperiment(input: {{experimentId: "{exp}"}}) {{ experiment {{ name creationTime }} apiError {{ code }} }}}}"#
    );
    let body = graphql(app, &q, json!({})).await;
    let got = &body["data"]["mlflowGetExperiment"];
    assert_eq!(got["experiment"]["name"], "GraphqlTest");
    assert!(got["experiment"]["creationTime"].is_string(), "{body}");
    assert_eq!(got["apiError"], Value::Null);

    let q = format!(
        r#"query testQuery @component(name: "Test") {{
            mlflowGetRun(input: {{runId: "{run}"}}) {{
                run {{ __typename info {{ status runName startTime }} experiment {{ name }} modelVersions {{ name version }}
                      data {{ metrics {{ key value timestamp step }} params {{ key value }} tags {{ key value }} }}
                      inputs {{ datasetInputs {{ dataset {{ name digest }} tags {{ key value }} }} modelInputs {{ modelId }} }}
                      outputs {{ modelOutputs {{ modelId }} }} }}
            }}
        }}"#
    );
    let body = graphql(app, &q, json!({})).await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    let r = &body["data"]["mlflowGetRun"]["run"];
    assert_eq!(r["__typename"], "MlflowRunExtension");
    assert_eq!(r["info"]["status"], "RUNNING");
    assert_eq!(r["info"]["startTime"], "1700000000000");
    assert_eq!(r["experiment"]["name"], "GraphqlTest");
    assert_eq!(
        r["modelVersions"],
        json!([{"name": "GraphqlTest", "version": "1"}])
    );
    let metrics = r["data"]["metrics"].as_array().unwrap();
    let nan = metrics.iter().find(|m| m["key"] == "nan_metric").unwrap();
    assert_eq!(nan["value"], Value::Null);
    assert_eq!(
        (nan["timestamp"].clone(), nan["step"].clone()),
        (json!("2"), json!("2"))
    );
    let loss = metrics.iter().find(|m| m["key"] == "loss").unwrap();
    assert_eq!(loss["value"], json!(0.1));
    assert_eq!(loss["step"], "9");
    assert_eq!(r["data"]["params"], json!([{"key": "lr", "value": "0.1"}]));
    assert_eq!(r["inputs"]["datasetInputs"].as_array().unwrap().len(), 2);
    // Proto defaults: empty lists, not null.
    assert_eq!(r["inputs"]["modelInputs"], json!([]));
    assert_eq!(r["outputs"]["modelOutputs"], json!([]));

    // The UI's own documents, with variables (static/js chunks of the 3.17.2 bundle).
    let q = "query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!) @component(name: \"MLflow.ExperimentRunTracking\") { mlflowGetMetricHistoryBulkInterval(input: $data) { __typename metrics { timestamp step runId key value __typename } apiError { code message __typename } } }";
    let body = graphql(
        app,
        q,
        json!({"data": {"runIds": [run], "metricKey": "loss"}}),
    )
    .await;
    let points = body["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
        .as_array()
        .unwrap();
    assert_eq!(points.len(), 10, "{body}");
    assert_eq!(points[0]["step"], "0");
    assert_eq!(points[0]["__typename"], "MlflowMetricWithRunId");

    let q = "mutation testMutation { mlflowSearchRuns(input: { experimentIds: [\"EXP\"] }) { runs { info { runId } } nextPageToken } }".replace("EXP", &exp);
    let body = graphql(app, &q, json!({})).await;
    assert_eq!(
        body["data"]["mlflowSearchRuns"],
        json!({"runs": [{"info": {"runId": run}}], "nextPageToken": ""})
    );

    let q = format!(
        r#"query {{ files: mlflowListArtifacts(input: {{ runId: "{run}", }}) {{ files {{ path isDir fileSize }} }} sub: mlflowListArtifacts(input: {{ runId: "{run}", path: "model" }}) {{ files {{ path isDir fileSize }} }} }}"#
    );
    let body = graphql(app, &q, json!({})).await;
    assert_eq!(
        body["data"]["files"]["files"],
        json!([{"path": "model", "isDir": true, "fileSize": "0"}])
    );
    assert_eq!(
        body["data"]["sub"]["files"],
        json!([{"path": "model/MLmodel", "isDir": false, "fileSize": "33"}])
    );

    let q = format!(
        r#"mutation {{ mlflowSearchDatasets(input:{{experimentIds: ["{exp}"]}}) {{ datasetSummaries {{ experimentId name digest context }} }} }}"#
    );
    let body = graphql(app, &q, json!({})).await;
    assert_eq!(
        body["data"]["mlflowSearchDatasets"]["datasetSummaries"],
        json!([
            {"experimentId": exp, "name": "ds1", "digest": "12345", "context": ""},
            {"experimentId": exp, "name": "ds2", "digest": "12346", "context": "training"},
        ])
    );

    let q = r#"{ mlflowSearchModelVersions(input: {filter: "name='GraphqlTest'", maxResults: 5}) { modelVersions { name version status currentStage aliases modelParams { name } } } }"#;
    let body = graphql(app, q, json!({})).await;
    assert_eq!(
        body["data"]["mlflowSearchModelVersions"]["modelVersions"],
        json!([{"name": "GraphqlTest", "version": "1", "status": "READY", "currentStage": "None",
                "aliases": [], "modelParams": []}])
    );

    // Errors: a 200 with the field null and the message, siblings resolved.
    let q = r#"{ a: mlflowGetRun(input: {runId: "nope"}) { run { info { runId } } } b: test(inputString: "x") { output } }"#;
    let body = graphql(app, q, json!({})).await;
    assert_eq!(body["data"]["a"], Value::Null);
    assert_eq!(body["data"]["b"], json!({"output": "x"}));
    assert_eq!(body["errors"], json!(["Run with id=nope not found"]));
}

async fn graphql_limits_and_bad_requests(app: &TestApp) {
    let roots: String = (0..12)
        .map(|i| format!(r#" key_{i}: test(inputString: "abc") {{ output }}"#))
        .collect();
    let body = graphql(app, &format!("query testQuery {{{roots}}}"), json!({})).await;
    assert_eq!(body["data"], Value::Null);
    assert!(body["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("GraphQL queries should have at most 10 root fields, got 12 root fields."));
    let mut inner = "name".to_string();
    for _ in 0..12 {
        inner = format!("name {{ {inner} }}");
    }
    let q = format!(
        r#"query testQuery {{ mlflowGetExperiment(input: {{experimentId: "123"}}) {{ experiment {{ {inner} }} }} }}"#
    );
    let body = graphql(app, &q, json!({})).await;
    assert_eq!(body["errors"], json!(["Query exceeds maximum depth of 10"]));
    // A validation error is a GraphQL error in a 200, not an HTTP error.
    let body = graphql(app, "{ test(inputString: \"a\") { nope } }", json!({})).await;
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    // Transport-level mistakes are 400s in MLflow's error shape.
    let res = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Content-Type", "text/plain")
        .body(r#"{"query": "{ test { output } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error_code": "INVALID_PARAMETER_VALUE",
               "message": "Bad Request. Content-Type must be one of ['application/json']."})
    );
    for bad in [
        r#"[{"query": "{ test { output } }"}]"#,
        "not json",
        r#"{"variables": {}}"#,
    ] {
        let (status, body) = app.raw(reqwest::Method::POST, "/graphql", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error_code"].is_string(), "{bad}: {body}");
    }
}

async fn the_uis_side_calls(app: &TestApp) {
    let (exp, run) = populated(app).await;
    // metrics/get-history-bulk (ajax-api, as the UI calls it).
    let (s, body) = app
        .raw(
            reqwest::Method::GET,
            &format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id={run}&run_id=unknown&metric_key=loss&max_results=3"),
            "",
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let metrics = body["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 3);
    assert_eq!(
        metrics[0],
        json!({"key": "loss", "value": 1.0, "timestamp": 1000, "step": 0, "run_id": run})
    );
    for (query, message) in [
        (
            "metric_key=loss",
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ),
        (
            &format!("run_id={run}") as &str,
            "GetMetricHistoryBulk request must specify a metric_key.",
        ),
    ] {
        let (s, body) = app
            .raw(
                reqwest::Method::GET,
                &format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk?{query}"),
                "",
            )
            .await;
        assert_eq!(
            (s, body["message"].as_str()),
            (400, Some(message)),
            "{body}"
        );
    }
    // experiments/search-datasets.
    let (s, body) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            &json!({"experiment_ids": [exp]}).to_string(),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body["dataset_summaries"],
        json!([{"experiment_id": exp, "name": "ds1", "digest": "12345"},
               {"experiment_id": exp, "name": "ds2", "digest": "12346", "context": "training"}])
    );
    let (s, body) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            "{}",
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "SearchDatasets request must specify at least one experiment_id."
    );
    // model-versions/get-artifact: the version's MLmodel (a runs:/ source).
    let res = app
        .client
        .get(format!(
            "{}/model-versions/get-artifact?name=GraphqlTest&version=1&path=MLmodel",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        "artifact_path: model\nflavors: {}\n"
    );
    for (query, code) in [
        (
            "name=GraphqlTest&version=9&path=MLmodel",
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "name=GraphqlTest&version=1&path=../../etc/passwd",
            "INVALID_PARAMETER_VALUE",
        ),
        ("name=GraphqlTest&version=1", "INVALID_PARAMETER_VALUE"),
    ] {
        let (s, body) = app
            .raw(
                reqwest::Method::GET,
                &format!("/model-versions/get-artifact?{query}"),
                "",
            )
            .await;
        assert!(s == 400 || s == 404, "{query}: {s}");
        assert_eq!(body["error_code"], code, "{query}: {body}");
    }
    // upload-artifact: the UI's small upload, then read back through the REST route.
    let res = app
        .client
        .post(format!(
            "{}/ajax-api/2.0/mlflow/upload-artifact?run_uuid={run}&path=notes/a.txt",
            app.address
        ))
        .body("uploaded from the UI")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let back = app
        .client
        .get(format!(
            "{}/get-artifact?run_id={run}&path=notes/a.txt",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(back.text().await.unwrap(), "uploaded from the UI");
    for (query, body, message) in [
        ("path=a.txt", "x", "Request must specify run_uuid."),
        (
            &format!("run_uuid={run}") as &str,
            "x",
            "Request must specify path.",
        ),
        (
            &format!("run_uuid={run}&path=a.txt"),
            "",
            "Request must specify data.",
        ),
    ] {
        let (s, got) = app
            .raw(
                reqwest::Method::POST,
                &format!("/ajax-api/2.0/mlflow/upload-artifact?{query}"),
                body,
            )
            .await;
        assert_eq!(
            (s, got["message"].as_str()),
            (400, Some(message)),
            "{query}"
        );
    }
    // traces/metrics over no traces: a plain count is one zero point, the rest no points.
    let (s, body) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/3.0/mlflow/traces/metrics",
            &json!({"experiment_ids": [exp], "view_type": "TRACES", "metric_name": "trace_count",
                    "aggregations": [{"aggregation_type": "COUNT"}]})
            .to_string(),
        )
        .await;
    assert_eq!(
        (s, body),
        (
            200,
            json!({"data_points": [{"metric_name": "trace_count", "values": {"COUNT": 0.0}}]})
        )
    );
    let (s, body) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/3.0/mlflow/traces/metrics",
            &json!({"experiment_ids": [exp], "view_type": "TRACES", "metric_name": "trace_count",
                    "aggregations": [{"aggregation_type": "COUNT"}], "time_interval_seconds": 3600})
            .to_string(),
        )
        .await;
    assert_eq!((s, body), (200, json!({})));
    let (s, body) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/3.0/mlflow/traces/metrics",
            "{}",
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "Missing value for required parameter 'experiment_ids'. See the API docs for more \
         information about request parameters."
    );
    // What a server with no gateway, assistant or telemetry answers.
    for (method, path, want) in [
        (
            "GET",
            "/ajax-api/2.0/mlflow/gateway-proxy",
            json!({"endpoints": []}),
        ),
        (
            "POST",
            "/ajax-api/2.0/mlflow/gateway-proxy",
            json!({"endpoints": []}),
        ),
        (
            "GET",
            "/ajax-api/3.0/mlflow/ui-telemetry",
            json!({"disable_ui_events": [], "disable_ui_telemetry": true, "ui_rollout_percentage": 0}),
        ),
        (
            "POST",
            "/ajax-api/3.0/mlflow/ui-telemetry",
            json!({"status": "disabled"}),
        ),
        (
            "GET",
            "/ajax-api/3.0/mlflow/assistant/config",
            json!({"providers": {}, "projects": {}, "remote_access_allowed": false}),
        ),
        (
            "GET",
            "/ajax-api/3.0/mlflow/assistant/providers",
            json!({"providers": [], "resolved": null, "gateway_vendor_options": {}}),
        ),
    ] {
        let (s, body) = app
            .raw(method.parse().unwrap(), path, r#"{"records": []}"#)
            .await;
        assert_eq!((s, body), (200, want), "{method} {path}");
    }
}

backend_tests!(
    graphql_in_mlflows_shape,
    graphql_limits_and_bad_requests,
    the_uis_side_calls
);
