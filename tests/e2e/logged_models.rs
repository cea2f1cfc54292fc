//! End-to-end tests of MLflow 3 logged models over HTTP, each on a fresh SQLite file and a
//! fresh PostgreSQL database.

use ferroflow_core::{Db, StoreUri};
use ferroflow_e2e::{backend_tests, TestApp};
use ferroflow_registry::RegistryService;
use ferroflow_tracking::TrackingService;
use serde_json::{json, Value};

backend_tests!(
    logged_models_round_trip_with_mlflow_shapes,
    logged_model_tags_and_params,
    search_logged_models_filters_orders_and_pages,
    logged_model_errors_have_mlflow_codes,
    models_uri_of_a_logged_model_resolves_to_its_artifacts,
);

fn error_code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("<none>")
}

async fn ok(app: &TestApp, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = app.call(method, path, body).await;
    assert_eq!(status, 200, "{method} {path} failed: {v}");
    v
}

async fn create(app: &TestApp, exp: &str, name: &str, extra: Value) -> Value {
    let mut body = json!({"experiment_id": exp, "name": name});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ok(app, "POST", "logged-models", body).await["model"].clone()
}

async fn logged_models_round_trip_with_mlflow_shapes(app: &TestApp) {
    let exp = app.create_experiment("lm").await;
    let run = app.create_run(&exp, 1000).await;
    let m = create(
        app,
        &exp,
        "model",
        json!({"model_type": "sklearn", "source_run_id": run,
               "tags": [{"key": "t", "value": "1"}], "params": [{"key": "alpha", "value": "0.5"}]}),
    )
    .await;
    let id = m["info"]["model_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("m-") && id.len() == 34, "{id}");
    assert_eq!(m["info"]["experiment_id"], exp);
    assert_eq!(m["info"]["name"], "model");
    assert_eq!(m["info"]["status"], "LOGGED_MODEL_PENDING");
    assert_eq!(m["info"]["model_type"], "sklearn");
    assert_eq!(m["info"]["source_run_id"], run);
    assert_eq!(
        m["info"]["artifact_uri"],
        format!("mlflow-artifacts:/{exp}/models/{id}/artifacts")
    );
    assert_eq!(m["info"]["tags"], json!([{"key": "t", "value": "1"}]));
    assert_eq!(
        m["data"]["params"],
        json!([{"key": "alpha", "value": "0.5"}])
    );
    assert!(m["info"]["creation_timestamp_ms"].is_i64());

    let got = ok(app, "GET", &format!("logged-models/{id}"), json!({})).await;
    assert_eq!(got["model"], m);

    let fin = ok(
        app,
        "PATCH",
        &format!("logged-models/{id}"),
        json!({"model_id": id, "status": "LOGGED_MODEL_READY"}),
    )
    .await;
    assert_eq!(fin["model"]["info"]["status"], "LOGGED_MODEL_READY");

    ok(app, "DELETE", &format!("logged-models/{id}"), json!({})).await;
    let (status, v) = app
        .call("GET", &format!("logged-models/{id}"), json!({}))
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
}

async fn logged_model_tags_and_params(app: &TestApp) {
    let exp = app.create_experiment("lm").await;
    let m = create(app, &exp, "model", json!({})).await;
    let id = m["info"]["model_id"].as_str().unwrap().to_string();
    ok(
        app,
        "PATCH",
        &format!("logged-models/{id}/tags"),
        json!({"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}),
    )
    .await;
    ok(
        app,
        "PATCH",
        &format!("logged-models/{id}/tags"),
        json!({"tags": [{"key": "a", "value": "3"}]}),
    )
    .await;
    ok(
        app,
        "DELETE",
        &format!("logged-models/{id}/tags/b"),
        json!({}),
    )
    .await;
    ok(
        app,
        "POST",
        &format!("logged-models/{id}/params"),
        json!({"params": [{"key": "p", "value": "x"}]}),
    )
    .await;
    let got = ok(app, "GET", &format!("logged-models/{id}"), json!({})).await;
    assert_eq!(
        got["model"]["info"]["tags"],
        json!([{"key": "a", "value": "3"}])
    );
    assert_eq!(
        got["model"]["data"]["params"],
        json!([{"key": "p", "value": "x"}])
    );
    let (status, v) = app
        .call(
            "DELETE",
            &format!("logged-models/{id}/tags/nope"),
            json!({}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
}

async fn search_logged_models_filters_orders_and_pages(app: &TestApp) {
    let exp = app.create_experiment("lm").await;
    let other = app.create_experiment("other").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = create(
            app,
            &exp,
            &format!("model-{i}"),
            json!({"params": [{"key": "i", "value": i.to_string()}],
                   "tags": [{"key": "even", "value": (i % 2 == 0).to_string()}]}),
        )
        .await;
        ids.push(m["info"]["model_id"].as_str().unwrap().to_string());
    }
    create(app, &other, "elsewhere", json!({})).await;
    ok(
        app,
        "PATCH",
        &format!("logged-models/{}", ids[1]),
        json!({"status": "LOGGED_MODEL_READY"}),
    )
    .await;
    let search = |body: Value| async move { ok(app, "POST", "logged-models/search", body).await };
    let names = |v: &Value| -> Vec<String> {
        v["models"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["info"]["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = search(
        json!({"experiment_ids": [exp], "order_by": [{"field_name": "name", "ascending": true}]}),
    )
    .await;
    assert_eq!(
        names(&all),
        ["model-0", "model-1", "model-2", "model-3", "model-4"]
    );
    let both = search(json!({"experiment_ids": [exp, other]})).await;
    assert_eq!(names(&both).len(), 6);
    let r = search(json!({"experiment_ids": [exp], "filter": "params.i = '3'"})).await;
    assert_eq!(names(&r), ["model-3"]);
    let r = search(
        json!({"experiment_ids": [exp], "filter": "tags.even = 'true' AND name != 'model-0'",
                          "order_by": [{"field_name": "name", "ascending": false}]}),
    )
    .await;
    assert_eq!(names(&r), ["model-4", "model-2"]);
    let r =
        search(json!({"experiment_ids": [exp], "filter": "status = 'LOGGED_MODEL_READY'"})).await;
    assert_eq!(names(&r), ["model-1"]);
    let r = search(json!({"experiment_ids": [exp], "filter": format!("model_id = '{}'", ids[2])}))
        .await;
    assert_eq!(names(&r), ["model-2"]);
    let r = search(json!({"experiment_ids": [exp], "filter": "name LIKE 'model-%' AND creation_timestamp > 0"})).await;
    assert_eq!(names(&r).len(), 5);
    let r = search(json!({"experiment_ids": [exp], "filter": "name ILIKE 'MODEL-4'"})).await;
    assert_eq!(names(&r), ["model-4"]);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"experiment_ids": [exp], "max_results": 2,
                              "order_by": [{"field_name": "name", "ascending": true}]});
        if let Some(t) = &token {
            body["page_token"] = json!(t);
        }
        let page = search(body).await;
        seen.extend(names(&page));
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["model-0", "model-1", "model-2", "model-3", "model-4"]
    );

    ok(
        app,
        "DELETE",
        &format!("logged-models/{}", ids[0]),
        json!({}),
    )
    .await;
    let r = search(json!({"experiment_ids": [exp]})).await;
    assert_eq!(names(&r).len(), 4);
}

async fn logged_model_errors_have_mlflow_codes(app: &TestApp) {
    let exp = app.create_experiment("lm").await;
    let cases = [
        ("POST", "logged-models".to_string(), json!({"name": "x"})),
        (
            "POST",
            "logged-models".to_string(),
            json!({"experiment_id": "abc"}),
        ),
        ("POST", "logged-models/search".to_string(), json!({})),
        (
            "POST",
            "logged-models/search".to_string(),
            json!({"experiment_ids": [exp], "filter": "bogus = 'x'"}),
        ),
        (
            "POST",
            "logged-models/search".to_string(),
            json!({"experiment_ids": [exp], "max_results": 0}),
        ),
    ];
    for (method, path, body) in cases {
        let (status, v) = app.call(method, &path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "{method} {path} {body}: {v}"
        );
    }
    let (status, v) = app
        .call("POST", "logged-models", json!({"experiment_id": "987654"}))
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    let missing = "m-00000000000000000000000000000000";
    for (method, path, body) in [
        ("GET", format!("logged-models/{missing}"), json!({})),
        (
            "PATCH",
            format!("logged-models/{missing}"),
            json!({"status": "LOGGED_MODEL_READY"}),
        ),
        ("DELETE", format!("logged-models/{missing}"), json!({})),
        (
            "PATCH",
            format!("logged-models/{missing}/tags"),
            json!({"tags": []}),
        ),
        (
            "POST",
            format!("logged-models/{missing}/params"),
            json!({"params": []}),
        ),
    ] {
        let (status, v) = app.call(method, &path, body).await;
        assert_eq!(
            (status, error_code(&v)),
            (404, "RESOURCE_DOES_NOT_EXIST"),
            "{method} {path}"
        );
    }
    let m = create(app, &exp, "m", json!({})).await;
    let id = m["info"]["model_id"].as_str().unwrap();
    let (status, v) = app
        .call(
            "PATCH",
            &format!("logged-models/{id}"),
            json!({"status": "BOGUS"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
}

async fn models_uri_of_a_logged_model_resolves_to_its_artifacts(app: &TestApp) {
    let exp = app.create_experiment("lm").await;
    let m = create(app, &exp, "m", json!({})).await;
    let id = m["info"]["model_id"].as_str().unwrap();
    let uri: StoreUri = app.store_uri.parse().expect("store uri");
    let db = Db::connect(&uri, 2).await.expect("connect");
    let registry = RegistryService::new(db.clone(), TrackingService::new(db, "mlflow-artifacts:/"));
    let loc = registry
        .resolve_models_uri_location(&format!("models:/{id}"))
        .await
        .expect("resolve");
    assert_eq!(loc, m["info"]["artifact_uri"].as_str().unwrap());
    assert!(registry
        .resolve_models_uri_location("models:/m-00000000000000000000000000000000")
        .await
        .is_err());
}
