//! End-to-end tracking tests over HTTP, each on a fresh SQLite file and a fresh PostgreSQL
//! database.

use ferroflow_e2e::{backend_tests, TestApp};
use serde_json::{json, Value};

backend_tests!(
    default_experiment_exists_and_experiments_round_trip,
    duplicate_experiment_name_is_resource_already_exists,
    search_experiments_filters_orders_and_pages,
    delete_experiment_deletes_its_runs_and_restore_brings_them_back,
    log_batch_rejects_more_than_1000_metrics,
    params_are_immutable_and_a_failed_batch_writes_nothing,
    latest_metric_is_max_step_then_timestamp_then_value,
    nan_and_infinite_metrics_are_stored_as_mlflow_stores_them,
    metric_values_round_trip_exactly_through_history,
    search_runs_filters_on_metrics_params_tags_and_attributes,
    search_runs_orders_by_metric_with_missing_values_last,
    search_runs_pages_through_every_run_exactly_once,
    bad_filters_and_bad_input_are_4xx_with_mlflow_error_bodies,
    metric_history_pages_and_bulk_interval_samples,
    run_lifecycle_update_delete_restore_and_view_types,
    log_inputs_records_datasets_searchable_by_name,
    concurrent_writers_never_see_database_locked,
    prometheus_metrics_count_requests_per_route_and_show_the_pool,
);

/// One field of every entry of `v[list]` (e.g. each metric's value).
fn column<T>(v: &Value, list: &str, field: impl Fn(&Value) -> Option<T>) -> Vec<T> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| field(e).expect("field of expected type"))
                .collect()
        })
        .unwrap_or_default()
}

fn error_code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("<none>")
}

async fn default_experiment_exists_and_experiments_round_trip(app: &TestApp) {
    let (status, v) = app.get("experiments/get?experiment_id=0").await;
    assert_eq!(status, 200);
    assert_eq!(v["experiment"]["name"], "Default");
    assert_eq!(v["experiment"]["artifact_location"], "mlflow-artifacts:/0");

    let v = app
        .ok(
            "experiments/create",
            json!({"name": "exp a", "tags": [{"key": "team", "value": "ml"}]}),
        )
        .await;
    let id = v["experiment_id"].as_str().unwrap().to_string();
    let (_, v) = app
        .get("experiments/get-by-name?experiment_name=exp%20a")
        .await;
    assert_eq!(v["experiment"]["experiment_id"], id.as_str());
    assert_eq!(
        v["experiment"]["artifact_location"],
        format!("mlflow-artifacts:/{id}")
    );
    assert_eq!(
        v["experiment"]["tags"],
        json!([{"key": "team", "value": "ml"}])
    );

    app.ok(
        "experiments/update",
        json!({"experiment_id": id, "new_name": "exp b"}),
    )
    .await;
    app.ok(
        "experiments/set-experiment-tag",
        json!({"experiment_id": id, "key": "k", "value": "v"}),
    )
    .await;
    app.ok(
        "experiments/delete-experiment-tag",
        json!({"experiment_id": id, "key": "team"}),
    )
    .await;
    let (_, v) = app
        .get(&format!("experiments/get?experiment_id={id}"))
        .await;
    assert_eq!(v["experiment"]["name"], "exp b");
    assert_eq!(v["experiment"]["tags"], json!([{"key": "k", "value": "v"}]));

    let (status, v) = app.get("experiments/get?experiment_id=424242").await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    let (status, v) = app
        .get("experiments/get-by-name?experiment_name=nope")
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
}

async fn duplicate_experiment_name_is_resource_already_exists(app: &TestApp) {
    app.create_experiment("dup").await;
    let (status, v) = app.post("experiments/create", json!({"name": "dup"})).await;
    assert_eq!((status, error_code(&v)), (400, "RESOURCE_ALREADY_EXISTS"));
    let (status, v) = app.post("experiments/create", json!({})).await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    assert!(v["message"].as_str().unwrap().contains("'name'"));
}

async fn search_experiments_filters_orders_and_pages(app: &TestApp) {
    for name in ["alpha-1", "alpha-2", "beta-1"] {
        let id = app.create_experiment(name).await;
        app.ok(
            "experiments/set-experiment-tag",
            json!({"experiment_id": id, "key": "kind", "value": &name[..4]}),
        )
        .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["experiments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let v = app
        .ok(
            "experiments/search",
            json!({"filter": "name LIKE 'alpha%'", "order_by": ["name DESC"]}),
        )
        .await;
    assert_eq!(names(&v), vec!["alpha-2", "alpha-1"]);
    let v = app
        .ok(
            "experiments/search",
            json!({"filter": "tags.kind = 'beta'"}),
        )
        .await;
    assert_eq!(names(&v), vec!["beta-1"]);
    let v = app
        .ok(
            "experiments/search",
            json!({"max_results": 2, "order_by": ["name ASC"]}),
        )
        .await;
    assert_eq!(names(&v), vec!["Default", "alpha-1"]);
    let token = v["next_page_token"].as_str().expect("token").to_string();
    let v = app
        .ok(
            "experiments/search",
            json!({"max_results": 2, "order_by": ["name ASC"], "page_token": token}),
        )
        .await;
    assert_eq!(names(&v), vec!["alpha-2", "beta-1"]);
    assert!(v.get("next_page_token").is_none());
    let (status, v) = app
        .get("experiments/search?filter=name%20LIKE%20%27beta%25%27")
        .await;
    assert_eq!(status, 200);
    assert_eq!(names(&v), vec!["beta-1"]);
}

async fn delete_experiment_deletes_its_runs_and_restore_brings_them_back(app: &TestApp) {
    let exp = app.create_experiment("to-delete").await;
    let run = app.create_run(&exp, 1).await;
    app.ok("experiments/delete", json!({"experiment_id": exp}))
        .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    assert_eq!(v["run"]["info"]["lifecycle_stage"], "deleted");
    let v = app
        .ok("experiments/search", json!({"view_type": "DELETED_ONLY"}))
        .await;
    assert_eq!(v["experiments"][0]["name"], "to-delete");
    let (status, v) = app.post("runs/create", json!({"experiment_id": exp})).await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    app.ok("experiments/restore", json!({"experiment_id": exp}))
        .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    assert_eq!(v["run"]["info"]["lifecycle_stage"], "active");
}

async fn log_batch_rejects_more_than_1000_metrics(app: &TestApp) {
    let exp = app.create_experiment("batch").await;
    let run = app.create_run(&exp, 1).await;
    let metrics = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"key": "loss", "value": i as f64, "timestamp": 1, "step": i}))
            .collect()
    };
    app.ok(
        "runs/log-batch",
        json!({"run_id": run, "metrics": metrics(1000)}),
    )
    .await;
    let (_, v) = app
        .get(&format!("metrics/get-history?run_id={run}&metric_key=loss"))
        .await;
    assert_eq!(v["metrics"].as_array().unwrap().len(), 1000);
    let (status, v) = app
        .post(
            "runs/log-batch",
            json!({"run_id": run, "metrics": metrics(1001)}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("at most 1000 metrics"));
    let params: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("p{i}"), "value": "x"}))
        .collect();
    let (status, _) = app
        .post("runs/log-batch", json!({"run_id": run, "params": params}))
        .await;
    assert_eq!(status, 400);
}

async fn params_are_immutable_and_a_failed_batch_writes_nothing(app: &TestApp) {
    let exp = app.create_experiment("params").await;
    let run = app.create_run(&exp, 1).await;
    app.ok(
        "runs/log-parameter",
        json!({"run_id": run, "key": "lr", "value": "0.1"}),
    )
    .await;
    app.ok(
        "runs/log-parameter",
        json!({"run_id": run, "key": "lr", "value": "0.1"}),
    )
    .await;
    let (status, v) = app
        .post(
            "runs/log-parameter",
            json!({"run_id": run, "key": "lr", "value": "0.2"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    // The conflicting param fails the whole batch: its metric and tag must not be written.
    let (status, _) = app
        .post(
            "runs/log-batch",
            json!({"run_id": run, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1}],
                   "params": [{"key": "lr", "value": "0.3"}], "tags": [{"key": "t", "value": "x"}]}),
        )
        .await;
    assert_eq!(status, 400);
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    assert!(
        v["run"]["data"].get("metrics").is_none(),
        "metric written by failed batch: {v}"
    );
    assert!(!v["run"]["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "t"));
    assert_eq!(
        v["run"]["data"]["params"],
        json!([{"key": "lr", "value": "0.1"}])
    );
}

async fn latest_metric_is_max_step_then_timestamp_then_value(app: &TestApp) {
    let exp = app.create_experiment("latest").await;
    let run = app.create_run(&exp, 1).await;
    let m = |value: f64, timestamp: i64, step: i64| json!({"key": "acc", "value": value, "timestamp": timestamp, "step": step});
    app.ok(
        "runs/log-batch",
        json!({"run_id": run, "metrics": [m(0.9, 100, 1), m(0.5, 50, 2), m(0.4, 60, 2)]}),
    )
    .await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": run, "key": "acc", "value": 0.3, "timestamp": 60, "step": 2}),
    )
    .await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": run, "key": "acc", "value": 0.1, "timestamp": 10, "step": 1}),
    )
    .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    let latest = &v["run"]["data"]["metrics"][0];
    assert_eq!(
        (
            latest["value"].as_f64(),
            latest["timestamp"].as_i64(),
            latest["step"].as_i64()
        ),
        (Some(0.4), Some(60), Some(2))
    );
}

async fn metric_values_round_trip_exactly_through_history(app: &TestApp) {
    let exp = app.create_experiment("exact").await;
    let run = app.create_run(&exp, 1).await;
    let values = [
        0.1 + 0.2,
        1e-300,
        -2.5e-8,
        123_456_789.123_456_79,
        5e-324,
        f64::MAX,
        3.0,
    ];
    let metrics: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"key": "x", "value": v, "timestamp": 10, "step": i}))
        .collect();
    app.ok("runs/log-batch", json!({"run_id": run, "metrics": metrics}))
        .await;
    let (_, v) = app
        .get(&format!("metrics/get-history?run_id={run}&metric_key=x"))
        .await;
    let got: Vec<f64> = column(&v, "metrics", |m| m["value"].as_f64());
    assert_eq!(got, values.to_vec());
    let (_, v) = app
        .get(&format!(
            "metrics/get-history-bulk-interval?run_ids={run}&metric_key=x"
        ))
        .await;
    let got: Vec<f64> = column(&v, "metrics", |m| m["value"].as_f64());
    assert_eq!(got, values.to_vec());
}

async fn nan_and_infinite_metrics_are_stored_as_mlflow_stores_them(app: &TestApp) {
    let exp = app.create_experiment("nan").await;
    let run = app.create_run(&exp, 1).await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": run, "key": "n", "value": "NaN", "timestamp": 1}),
    )
    .await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": run, "key": "p", "value": "Infinity", "timestamp": 1}),
    )
    .await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": run, "key": "q", "value": "-Infinity", "timestamp": 1}),
    )
    .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    let metrics = v["run"]["data"]["metrics"].as_array().unwrap();
    let value = |k: &str| metrics.iter().find(|m| m["key"] == k).unwrap()["value"].clone();
    assert_eq!(value("n"), json!("NaN"));
    assert_eq!(value("p").as_f64(), Some(f64::MAX));
    assert_eq!(value("q").as_f64(), Some(f64::MIN));
}

async fn search_runs_filters_on_metrics_params_tags_and_attributes(app: &TestApp) {
    let exp = app.create_experiment("search").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let run = app.create_run(&exp, 1000 + i).await;
        app.ok(
            "runs/log-batch",
            json!({"run_id": run,
                   "metrics": [{"key": "acc", "value": i as f64 * 0.25, "timestamp": 1}],
                   "params": [{"key": "model", "value": if i % 2 == 0 { "LogReg" } else { "Forest" }}],
                   "tags": [{"key": "my tag", "value": format!("v{i}")}]}),
        )
        .await;
        ids.push(run);
    }
    let search = |filter: &str| {
        let body = json!({"experiment_ids": [exp], "filter": filter});
        async move {
            let v = app.ok("runs/search", body).await;
            let mut got: Vec<String> = v["runs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| r["info"]["run_id"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            got.sort();
            got
        }
    };
    let sorted = |v: Vec<&String>| {
        let mut v: Vec<String> = v.into_iter().cloned().collect();
        v.sort();
        v
    };
    assert_eq!(
        search("metrics.acc > 0.3").await,
        sorted(vec![&ids[2], &ids[3]])
    );
    assert_eq!(
        search("metrics.acc >= 0.25 and params.model = 'LogReg'").await,
        sorted(vec![&ids[2]])
    );
    assert_eq!(
        search("params.model LIKE 'Log%'").await,
        sorted(vec![&ids[0], &ids[2]])
    );
    assert_eq!(
        search("params.model LIKE 'log%'").await,
        Vec::<String>::new()
    );
    assert_eq!(
        search("params.model ILIKE 'log%'").await,
        sorted(vec![&ids[0], &ids[2]])
    );
    assert_eq!(search("tags.`my tag` = 'v3'").await, sorted(vec![&ids[3]]));
    assert_eq!(search("tags.`my tag` != 'v3'").await.len(), 3);
    assert_eq!(
        search(&format!(
            "attributes.run_id IN ('{}', '{}')",
            ids[0], ids[1]
        ))
        .await,
        sorted(vec![&ids[0], &ids[1]])
    );
    assert_eq!(
        search("attributes.start_time >= 1002").await,
        sorted(vec![&ids[2], &ids[3]])
    );
    assert_eq!(search("params.missing IS NULL").await.len(), 4);
    assert_eq!(search("tags.`my tag` IS NOT NULL").await.len(), 4);
    assert_eq!(search("attributes.status = 'RUNNING'").await.len(), 4);
}

async fn search_runs_orders_by_metric_with_missing_values_last(app: &TestApp) {
    let exp = app.create_experiment("order").await;
    let with = |v: f64| json!([{"key": "acc", "value": v, "timestamp": 1}]);
    let low = app.create_run(&exp, 1).await;
    app.ok(
        "runs/log-batch",
        json!({"run_id": low, "metrics": with(0.1)}),
    )
    .await;
    let high = app.create_run(&exp, 2).await;
    app.ok(
        "runs/log-batch",
        json!({"run_id": high, "metrics": with(0.9)}),
    )
    .await;
    let nan = app.create_run(&exp, 3).await;
    app.ok(
        "runs/log-metric",
        json!({"run_id": nan, "key": "acc", "value": "NaN", "timestamp": 1}),
    )
    .await;
    let missing = app.create_run(&exp, 4).await;
    for (dir, expected) in [
        ("DESC", [&high, &low, &nan, &missing]),
        ("ASC", [&low, &high, &nan, &missing]),
    ] {
        let v = app
            .ok(
                "runs/search",
                json!({"experiment_ids": [exp], "order_by": [format!("metrics.acc {dir}")]}),
            )
            .await;
        let got: Vec<&str> = v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["info"]["run_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            expected.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "order {dir}"
        );
    }
    // A filter on the ordered metric drops NaN and missing runs; ties fall back to
    // start_time DESC.
    let tie = app.create_run(&exp, 5).await;
    app.ok(
        "runs/log-batch",
        json!({"run_id": tie, "metrics": with(0.1)}),
    )
    .await;
    let v = app
        .ok("runs/search", json!({"experiment_ids": [exp], "filter": "metrics.acc >= 0.1", "order_by": ["metrics.acc DESC"]}))
        .await;
    let got: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![high.as_str(), tie.as_str(), low.as_str()]);
    app.ok("runs/delete", json!({"run_id": tie})).await;
    // Without order_by: start_time DESC.
    let v = app
        .ok("runs/search", json!({"experiment_ids": [exp]}))
        .await;
    assert_eq!(v["runs"][0]["info"]["run_id"], missing.as_str());
}

async fn search_runs_pages_through_every_run_exactly_once(app: &TestApp) {
    let exp = app.create_experiment("paging").await;
    let mut created = std::collections::BTreeSet::new();
    for i in 0..60 {
        created.insert(app.create_run(&exp, i % 7).await);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"experiment_ids": [exp], "max_results": 25});
        if let Some(t) = &token {
            body["page_token"] = json!(t);
        }
        let v = app.ok("runs/search", body).await;
        for r in v["runs"].as_array().unwrap() {
            assert!(
                seen.insert(r["info"]["run_id"].as_str().unwrap().to_string()),
                "run seen twice"
            );
        }
        pages += 1;
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
}

async fn bad_filters_and_bad_input_are_4xx_with_mlflow_error_bodies(app: &TestApp) {
    let exp = app.create_experiment("bad").await;
    for filter in [
        "metrics.acc >",
        "metrics.acc > 'x'",
        "params.a = 1",
        "a = 1 OR b = 2",
        "attributes.nope = 'x'",
    ] {
        let (status, v) = app
            .post(
                "runs/search",
                json!({"experiment_ids": [exp], "filter": filter}),
            )
            .await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "filter {filter}: {v}"
        );
    }
    let (status, v) = app
        .post(
            "runs/search",
            json!({"experiment_ids": [exp], "max_results": 50001}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app
        .post(
            "runs/search",
            json!({"experiment_ids": [exp], "page_token": "garbage!"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/mlflow/runs/log-parameter",
            "{bad",
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error_code"].is_string() && v["message"].is_string());
    let (status, v) = app
        .post(
            "runs/log-parameter",
            json!({"run_id": 5, "key": "k", "value": "v"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app
        .post("experiments/create", json!({"name": {"nested": 1}}))
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app.get("runs/get?run_id=0123456789abcdef").await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    let (status, v) = app
        .post(
            "runs/log-metric",
            json!({"run_id": "abc", "key": "m", "value": 1, "timestamp": 1}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    let (status, v) = app.post("runs/create", json!({"experiment_id": "x"})).await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app
        .raw(
            reqwest::Method::POST,
            "/ajax-api/2.0/mlflow/experiments/create",
            r#"{"name": "via-ajax"}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = app
        .raw(reqwest::Method::GET, "/api/2.0/mlflow/no/such", "")
        .await;
    assert_eq!((status, error_code(&v)), (404, "ENDPOINT_NOT_FOUND"));
    let (status, v) = app
        .raw(reqwest::Method::GET, "/api/3.0/mlflow/server-info", "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["store_type"], "SqlStore");
}

async fn metric_history_pages_and_bulk_interval_samples(app: &TestApp) {
    let exp = app.create_experiment("history").await;
    let run = app.create_run(&exp, 1).await;
    let metrics: Vec<Value> = (0..10)
        .map(|i| json!({"key": "loss", "value": 10 - i, "timestamp": 100 + i, "step": i}))
        .collect();
    app.ok("runs/log-batch", json!({"run_id": run, "metrics": metrics}))
        .await;
    let (_, v) = app
        .get(&format!(
            "metrics/get-history?run_id={run}&metric_key=loss&max_results=4"
        ))
        .await;
    assert_eq!(v["metrics"].as_array().unwrap().len(), 4);
    let token = v["next_page_token"].as_str().expect("token");
    let (_, v) = app
        .get(&format!(
            "metrics/get-history?run_id={run}&metric_key=loss&max_results=4&page_token={token}"
        ))
        .await;
    assert_eq!(v["metrics"][0]["step"], 4);
    let (_, v) = app
        .get(&format!(
            "metrics/get-history-bulk-interval?run_ids={run}&metric_key=loss&max_results=3"
        ))
        .await;
    let steps: Vec<i64> = column(&v, "metrics", |m| m["step"].as_i64());
    assert_eq!(steps, vec![0, 4, 9]);
    assert_eq!(v["metrics"][0]["run_id"], run.as_str());
    let (_, v) = app.get(&format!("metrics/get-history-bulk-interval?run_ids={run}&metric_key=loss&start_step=2&end_step=3")).await;
    assert_eq!(v["metrics"].as_array().unwrap().len(), 2);
    let (status, _) = app
        .get(&format!(
            "metrics/get-history-bulk-interval?run_ids={run}&metric_key=loss&start_step=2"
        ))
        .await;
    assert_eq!(status, 400);
}

async fn run_lifecycle_update_delete_restore_and_view_types(app: &TestApp) {
    let exp = app.create_experiment("lifecycle").await;
    let run = app.create_run(&exp, 1).await;
    let v = app
        .ok(
            "runs/update",
            json!({"run_id": run, "status": "FINISHED", "end_time": 99, "run_name": "renamed"}),
        )
        .await;
    assert_eq!(v["run_info"]["status"], "FINISHED");
    assert_eq!(v["run_info"]["end_time"], 99);
    assert_eq!(v["run_info"]["run_name"], "renamed");
    app.ok(
        "runs/set-tag",
        json!({"run_id": run, "key": "mlflow.runName", "value": "by-tag"}),
    )
    .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    assert_eq!(v["run"]["info"]["run_name"], "by-tag");
    app.ok("runs/delete", json!({"run_id": run})).await;
    let count = |view: &'static str| {
        let body = json!({"experiment_ids": [exp], "run_view_type": view});
        async move {
            app.ok("runs/search", body).await["runs"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0)
        }
    };
    assert_eq!(
        (
            count("ACTIVE_ONLY").await,
            count("DELETED_ONLY").await,
            count("ALL").await
        ),
        (0, 1, 1)
    );
    let (status, v) = app
        .post(
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": 1, "timestamp": 1}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    app.ok("runs/restore", json!({"run_id": run})).await;
    assert_eq!(count("ACTIVE_ONLY").await, 1);
    let (status, v) = app
        .post("runs/delete-tag", json!({"run_id": run, "key": "nope"}))
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
}

async fn log_inputs_records_datasets_searchable_by_name(app: &TestApp) {
    let exp = app.create_experiment("inputs").await;
    let run = app.create_run(&exp, 1).await;
    let other = app.create_run(&exp, 2).await;
    let dataset = json!({"name": "iris", "digest": "abc123", "source_type": "local", "source": "{\"uri\": \"/d\"}", "schema": "{}"});
    app.ok(
        "runs/log-inputs",
        json!({"run_id": run, "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}]}),
    )
    .await;
    let (_, v) = app.get(&format!("runs/get?run_id={run}")).await;
    let input = &v["run"]["inputs"]["dataset_inputs"][0];
    assert_eq!(input["dataset"]["name"], "iris");
    assert_eq!(input["tags"][0]["value"], "training");
    let v = app.ok("runs/search", json!({"experiment_ids": [exp], "filter": "datasets.name = 'iris' AND datasets.context = 'training'"})).await;
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["info"]["run_id"], run.as_str());
    app.ok(
        "runs/outputs",
        json!({"run_id": other, "models": [{"model_id": "m-123", "step": 3}]}),
    )
    .await;
    let (_, v) = app.get(&format!("runs/get?run_id={other}")).await;
    assert_eq!(v["run"]["outputs"]["model_outputs"][0]["model_id"], "m-123");
}

async fn concurrent_writers_never_see_database_locked(app: &TestApp) {
    let exp = app.create_experiment("concurrent").await;
    let run = app.create_run(&exp, 1).await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let client = app.client.clone();
        let url = format!("{}/api/2.0/mlflow/runs/log-batch", app.address);
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let metrics: Vec<Value> = (0..50)
                    .map(|k| json!({"key": format!("m{k}"), "value": 1.0, "timestamp": 1, "step": w * 100 + i}))
                    .collect();
                let res = client.post(&url).json(&json!({"run_id": run, "metrics": metrics})).send().await.unwrap();
                assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
            }
        }));
    }
    // Rejected batches mixed into the same load fail alone: a changed param (and the
    // metric sent with it) is refused without affecting the batches committed around it.
    app.ok(
        "runs/log-parameter",
        json!({"run_id": run, "key": "lr", "value": "0.1"}),
    )
    .await;
    for _ in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/api/2.0/mlflow/runs/log-batch", app.address);
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"run_id": run, "params": [{"key": "lr", "value": "0.2"}],
                              "metrics": [{"key": "rejected", "value": 1.0, "timestamp": 1}]});
            let res = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 400);
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let (_, v) = app
        .get(&format!("metrics/get-history?run_id={run}&metric_key=m7"))
        .await;
    assert_eq!(v["metrics"].as_array().unwrap().len(), 160);
    let (_, v) = app
        .get(&format!(
            "metrics/get-history?run_id={run}&metric_key=rejected"
        ))
        .await;
    assert!(
        v.get("metrics").is_none(),
        "a rejected batch wrote metrics: {v}"
    );
}

async fn prometheus_metrics_count_requests_per_route_and_show_the_pool(app: &TestApp) {
    app.create_experiment("metrics-a").await;
    app.create_experiment("metrics-b").await;
    let _ = app.get("experiments/get?experiment_id=999999").await;
    let (status, text) = app.raw(reqwest::Method::GET, "/metrics", "").await;
    assert_eq!(status, 200);
    let text = text.as_str().expect("Prometheus text").to_string();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix} in:\n{text}"))
            .to_string()
    };
    let created = line(
        r#"ferroflow_http_requests_total{method="POST",route="/api/2.0/mlflow/experiments/create",status="200"}"#,
    );
    assert!(created.ends_with(" 2"), "{created}");
    line(
        r#"ferroflow_http_requests_total{method="GET",route="/api/2.0/mlflow/experiments/get",status="404"}"#,
    );
    line(
        r#"ferroflow_http_request_duration_seconds_count{method="POST",route="/api/2.0/mlflow/experiments/create"}"#,
    );
    line(r#"ferroflow_db_pool_connections{state="open"}"#);
    assert!(
        !text.contains(r#"route="/metrics""#),
        "/metrics must not count itself"
    );
}
