//! End-to-end model registry tests over HTTP, each on a fresh SQLite file and a fresh
//! PostgreSQL database.

use ferroflow_core::{Db, ErrorCode, StoreUri};
use ferroflow_e2e::{backend_tests, TestApp};
use ferroflow_registry::RegistryService;
use ferroflow_tracking::TrackingService;
use serde_json::{json, Value};

backend_tests!(
    registered_models_round_trip_with_mlflow_shapes,
    model_versions_round_trip_with_mlflow_shapes,
    stage_transitions_archive_existing_versions,
    aliases_move_between_versions_and_drop_with_their_version,
    version_numbers_are_never_reused_after_deletes,
    concurrent_version_creates_get_distinct_numbers,
    concurrent_transitions_to_production_leave_exactly_one,
    rename_carries_versions_and_aliases,
    delete_model_drops_everything,
    search_registered_models_filters_orders_and_pages,
    search_model_versions_filters_orders_and_pages,
    search_hides_prompts_but_not_models_without_the_tag,
    errors_have_mlflow_codes_and_statuses,
    models_uris_resolve_to_versions,
    registry_routes_answer_under_the_ajax_prefix_and_wrong_methods_are_405,
);

fn error_code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("<none>")
}

async fn ok(app: &TestApp, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = app.call(method, path, body).await;
    assert_eq!(status, 200, "{method} {path} failed: {v}");
    v
}

async fn create_model(app: &TestApp, name: &str) -> Value {
    ok(
        app,
        "POST",
        "registered-models/create",
        json!({ "name": name }),
    )
    .await
}

async fn create_version(app: &TestApp, name: &str, source: &str) -> String {
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        json!({ "name": name, "source": source }),
    )
    .await;
    v["model_version"]["version"]
        .as_str()
        .expect("version")
        .to_string()
}

async fn get_version(app: &TestApp, name: &str, version: &str) -> Value {
    let (status, v) = app
        .get(&format!("model-versions/get?name={name}&version={version}"))
        .await;
    assert_eq!(status, 200, "{v}");
    v["model_version"].clone()
}

async fn stage_of(app: &TestApp, name: &str, version: &str) -> String {
    get_version(app, name, version).await["current_stage"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn transition(app: &TestApp, name: &str, version: &str, stage: &str, archive: bool) -> Value {
    ok(
        app,
        "POST",
        "model-versions/transition-stage",
        json!({"name": name, "version": version, "stage": stage, "archive_existing_versions": archive}),
    )
    .await
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e[field].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn registered_models_round_trip_with_mlflow_shapes(app: &TestApp) {
    let v = create_model(app, "plain").await;
    let m = &v["registered_model"];
    assert_eq!(m["name"], "plain");
    assert!(m["creation_timestamp"].is_i64());
    assert_eq!(m["creation_timestamp"], m["last_updated_timestamp"]);
    // Unset description and empty lists are omitted, as MLflow renders them.
    for absent in ["description", "tags", "latest_versions", "aliases"] {
        assert!(m.get(absent).is_none(), "{absent} in {m}");
    }

    let v = ok(
        app,
        "POST",
        "registered-models/create",
        json!({"name": "tagged", "description": "d", "tags": [{"key": "team", "value": "ml"}]}),
    )
    .await;
    assert_eq!(v["registered_model"]["description"], "d");
    assert_eq!(
        v["registered_model"]["tags"],
        json!([{"key": "team", "value": "ml"}])
    );

    ok(
        app,
        "POST",
        "registered-models/set-tag",
        json!({"name": "tagged", "key": "env", "value": "prod"}),
    )
    .await;
    ok(
        app,
        "DELETE",
        "registered-models/delete-tag",
        json!({"name": "tagged", "key": "team"}),
    )
    .await;
    // Deleting an absent tag succeeds, as in MLflow.
    ok(
        app,
        "DELETE",
        "registered-models/delete-tag",
        json!({"name": "tagged", "key": "nope"}),
    )
    .await;
    let v = ok(
        app,
        "PATCH",
        "registered-models/update",
        json!({"name": "tagged", "description": "new"}),
    )
    .await;
    assert_eq!(v["registered_model"]["description"], "new");
    let (_, v) = app.get("registered-models/get?name=tagged").await;
    assert_eq!(
        v["registered_model"]["tags"],
        json!([{"key": "env", "value": "prod"}])
    );
    assert_eq!(v["registered_model"]["description"], "new");
}

async fn model_versions_round_trip_with_mlflow_shapes(app: &TestApp) {
    create_model(app, "m").await;
    let exp = app.create_experiment("e").await;
    let run = app.create_run(&exp, 1).await;
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        json!({"name": "m", "source": format!("runs:/{run}/model"), "run_id": run,
               "description": "first", "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    let mv = &v["model_version"];
    assert_eq!(mv["version"], "1");
    assert_eq!(mv["current_stage"], "None");
    assert_eq!(mv["status"], "READY");
    assert_eq!(mv["run_id"], run.as_str());
    assert_eq!(mv["run_link"], "");
    assert_eq!(mv["source"], format!("runs:/{run}/model"));
    assert_eq!(mv["tags"], json!([{"key": "k", "value": "v"}]));
    assert!(mv["creation_timestamp"].is_i64());

    // A plain URI needs no run; run_id and description come back as empty strings.
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        json!({"name": "m", "source": "s3://bucket/model"}),
    )
    .await;
    assert_eq!(v["model_version"]["run_id"], "");
    assert_eq!(v["model_version"]["description"], "");
    assert!(v["model_version"].get("tags").is_none());

    // mlflow-artifacts: sources must sit under the given run's artifact location.
    let (_, r) = app.get(&format!("runs/get?run_id={run}")).await;
    let artifact_uri = r["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        json!({"name": "m", "source": format!("{artifact_uri}/model"), "run_id": run}),
    )
    .await;
    assert_eq!(v["model_version"]["version"], "3");
    let (status, v) = app
        .post(
            "model-versions/create",
            json!({"name": "m", "source": "mlflow-artifacts:/elsewhere/model", "run_id": run}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    // models:/m-… (logged model) sources need the model_id they name, as MLflow.
    let (status, v) = app
        .post(
            "model-versions/create",
            json!({"name": "m", "source": "models:/m-0123abcd"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app
        .post(
            "model-versions/create",
            json!({"name": "m", "source": "models:/m-0123abcd", "model_id": "m-other"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let v = ok(
        app,
        "POST",
        "model-versions/create",
        json!({"name": "m", "source": "models:/m-0123abcd", "model_id": "m-0123abcd"}),
    )
    .await;
    assert_eq!(v["model_version"]["source"], "models:/m-0123abcd");

    let v = ok(
        app,
        "PATCH",
        "model-versions/update",
        json!({"name": "m", "version": "1", "description": "changed"}),
    )
    .await;
    assert_eq!(v["model_version"]["description"], "changed");
    ok(
        app,
        "POST",
        "model-versions/set-tag",
        json!({"name": "m", "version": "1", "key": "k2", "value": "v2"}),
    )
    .await;
    ok(
        app,
        "DELETE",
        "model-versions/delete-tag",
        json!({"name": "m", "version": "1", "key": "k"}),
    )
    .await;
    let mv = get_version(app, "m", "1").await;
    assert_eq!(mv["tags"], json!([{"key": "k2", "value": "v2"}]));

    let (status, v) = app
        .get("model-versions/get-download-uri?name=m&version=2")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"artifact_uri": "s3://bucket/model"}));

    // The model's latest_versions: the latest version of each stage.
    let (_, v) = app.get("registered-models/get?name=m").await;
    let latest = names(&v["registered_model"], "latest_versions", "version");
    assert_eq!(latest, vec!["4"]);
}

async fn stage_transitions_archive_existing_versions(app: &TestApp) {
    create_model(app, "st").await;
    for i in 0..3 {
        create_version(app, "st", &format!("s3://b/{i}")).await;
    }
    // Case-insensitive input, canonical output.
    let v = transition(app, "st", "1", "staging", false).await;
    assert_eq!(v["model_version"]["current_stage"], "Staging");
    transition(app, "st", "1", "PRODUCTION", false).await;
    transition(app, "st", "2", "Production", false).await;
    // Without archiving, two versions can be in Production.
    assert_eq!(stage_of(app, "st", "1").await, "Production");
    assert_eq!(stage_of(app, "st", "2").await, "Production");
    transition(app, "st", "3", "Staging", false).await;

    let v = transition(app, "st", "3", "Production", true).await;
    assert_eq!(v["model_version"]["current_stage"], "Production");
    assert_eq!(stage_of(app, "st", "1").await, "Archived");
    assert_eq!(stage_of(app, "st", "2").await, "Archived");

    // Archiving only touches the target stage.
    create_version(app, "st", "s3://b/4").await;
    transition(app, "st", "4", "Staging", true).await;
    assert_eq!(stage_of(app, "st", "3").await, "Production");

    let v = ok(
        app,
        "POST",
        "registered-models/get-latest-versions",
        json!({"name": "st", "stages": ["production", "staging"]}),
    )
    .await;
    let mut got = names(&v, "model_versions", "version");
    got.sort();
    assert_eq!(got, vec!["3", "4"]);
    let (status, v) = app
        .get("registered-models/get-latest-versions?name=st&stages=Archived")
        .await;
    assert_eq!(status, 200);
    assert_eq!(names(&v, "model_versions", "version"), vec!["2"]);

    let (status, v) = app
        .post(
            "model-versions/transition-stage",
            json!({"name": "st", "version": "1", "stage": "None", "archive_existing_versions": true}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
}

async fn aliases_move_between_versions_and_drop_with_their_version(app: &TestApp) {
    create_model(app, "al").await;
    create_version(app, "al", "s3://b/1").await;
    create_version(app, "al", "s3://b/2").await;
    let set = |alias: &'static str, version: &'static str| {
        ok(
            app,
            "POST",
            "registered-models/alias",
            json!({"name": "al", "alias": alias, "version": version}),
        )
    };
    set("champion", "1").await;
    let (_, v) = app
        .get("registered-models/alias?name=al&alias=champion")
        .await;
    assert_eq!(v["model_version"]["version"], "1");
    assert_eq!(v["model_version"]["aliases"], json!(["champion"]));

    // Setting it again moves it.
    set("champion", "2").await;
    set("challenger", "2").await;
    let (_, v) = app
        .get("registered-models/alias?name=al&alias=champion")
        .await;
    assert_eq!(v["model_version"]["version"], "2");
    assert!(get_version(app, "al", "1").await.get("aliases").is_none());
    assert_eq!(
        get_version(app, "al", "2").await["aliases"],
        json!(["challenger", "champion"])
    );
    let (_, v) = app.get("registered-models/get?name=al").await;
    assert_eq!(
        v["registered_model"]["aliases"],
        json!([{"alias": "challenger", "version": "2"}, {"alias": "champion", "version": "2"}])
    );

    ok(
        app,
        "DELETE",
        "registered-models/alias",
        json!({"name": "al", "alias": "challenger"}),
    )
    .await;
    // Deleting the version drops its aliases.
    ok(
        app,
        "DELETE",
        "model-versions/delete",
        json!({"name": "al", "version": "2"}),
    )
    .await;
    let (status, v) = app
        .get("registered-models/alias?name=al&alias=champion")
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (_, v) = app.get("registered-models/get?name=al").await;
    assert!(v["registered_model"].get("aliases").is_none(), "{v}");

    // Reserved and malformed aliases.
    for (alias, version) in [("latest", "1"), ("v7", "1"), ("bad alias", "1")] {
        let (status, v) = app
            .post(
                "registered-models/alias",
                json!({"name": "al", "alias": alias, "version": version}),
            )
            .await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "{alias}"
        );
    }
    let (status, v) = app
        .post(
            "registered-models/alias",
            json!({"name": "al", "alias": "x", "version": "9"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
}

async fn version_numbers_are_never_reused_after_deletes(app: &TestApp) {
    create_model(app, "nums").await;
    for _ in 0..3 {
        create_version(app, "nums", "s3://b/x").await;
    }
    for v in ["3", "2"] {
        ok(
            app,
            "DELETE",
            "model-versions/delete",
            json!({"name": "nums", "version": v}),
        )
        .await;
    }
    assert_eq!(create_version(app, "nums", "s3://b/y").await, "4");
    let (status, v) = app.get("model-versions/get?name=nums&version=3").await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    // Numbers are per model.
    create_model(app, "other").await;
    assert_eq!(create_version(app, "other", "s3://b/z").await, "1");
}

async fn concurrent_version_creates_get_distinct_numbers(app: &TestApp) {
    create_model(app, "busy").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = format!("{}/api/2.0/mlflow/model-versions/create", app.address);
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(&url)
                .json(&json!({"name": "busy", "source": format!("s3://b/{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 200);
            let v: Value = res.json().await.unwrap();
            v["model_version"]["version"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=20).collect::<Vec<i64>>());
}

/// Simultaneous moves of different versions to Production with `archive_existing_versions`
/// (MLflow's promote-and-archive): every request succeeds and exactly one version ends in
/// Production, every other one Archived. Half of the requests go through a replica (its own
/// connection pool, as a second server process on the same store has), several rounds.
async fn concurrent_transitions_to_production_leave_exactly_one(app: &TestApp) {
    const VERSIONS: usize = 8;
    const ROUNDS: usize = 6;
    create_model(app, "race").await;
    for i in 0..VERSIONS {
        create_version(app, "race", &format!("s3://b/{i}")).await;
    }
    let servers = [app.address.clone(), app.replica().await];
    for round in 0..ROUNDS {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(VERSIONS));
        let mut tasks = Vec::new();
        for i in 0..VERSIONS {
            let client = app.client.clone();
            let barrier = barrier.clone();
            let url = format!(
                "{}/api/2.0/mlflow/model-versions/transition-stage",
                servers[(i + round) % servers.len()]
            );
            let version = (i + 1).to_string();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let res = client
                    .post(&url)
                    .json(&json!({
                        "name": "race",
                        "version": version,
                        "stage": "Production",
                        "archive_existing_versions": true,
                    }))
                    .send()
                    .await
                    .expect("request");
                let status = res.status().as_u16();
                let v: Value = res.json().await.expect("json body");
                assert_eq!(status, 200, "round {round}, version {version}: {v}");
                assert_eq!(v["model_version"]["current_stage"], "Production", "{v}");
            }));
        }
        for t in tasks {
            t.await.expect("transition task");
        }

        let (status, v) = app
            .get("model-versions/search?filter=name%3D%27race%27&max_results=100")
            .await;
        assert_eq!(status, 200, "{v}");
        let versions = v["model_versions"].as_array().expect("model_versions");
        assert_eq!(versions.len(), VERSIONS, "{v}");
        let production: Vec<&str> = versions
            .iter()
            .filter(|mv| mv["current_stage"] == "Production")
            .map(|mv| mv["version"].as_str().expect("version"))
            .collect();
        assert_eq!(
            production.len(),
            1,
            "round {round}: versions in Production: {production:?}"
        );
        for mv in versions {
            if mv["version"] != production[0] {
                assert_eq!(mv["current_stage"], "Archived", "round {round}: {mv}");
            }
        }
        // The model's latest Production version is that one, on both servers.
        for server in &servers {
            let res = app
                .client
                .get(format!(
                    "{server}/api/2.0/mlflow/registered-models/get-latest-versions?name=race&stages=Production"
                ))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status().as_u16(), 200);
            let v: Value = res.json().await.expect("json body");
            assert_eq!(
                names(&v, "model_versions", "version"),
                vec![production[0].to_string()],
                "round {round}"
            );
        }
    }
}

async fn rename_carries_versions_and_aliases(app: &TestApp) {
    create_model(app, "old").await;
    create_version(app, "old", "s3://b/1").await;
    create_version(app, "old", "s3://b/2").await;
    ok(
        app,
        "POST",
        "model-versions/set-tag",
        json!({"name": "old", "version": "2", "key": "k", "value": "v"}),
    )
    .await;
    ok(
        app,
        "POST",
        "registered-models/alias",
        json!({"name": "old", "alias": "prod", "version": "2"}),
    )
    .await;
    ok(
        app,
        "POST",
        "registered-models/set-tag",
        json!({"name": "old", "key": "t", "value": "1"}),
    )
    .await;
    let v = ok(
        app,
        "POST",
        "registered-models/rename",
        json!({"name": "old", "new_name": "new"}),
    )
    .await;
    assert_eq!(v["registered_model"]["name"], "new");
    assert_eq!(
        v["registered_model"]["aliases"],
        json!([{"alias": "prod", "version": "2"}])
    );
    assert_eq!(
        v["registered_model"]["tags"],
        json!([{"key": "t", "value": "1"}])
    );
    let mv = get_version(app, "new", "2").await;
    assert_eq!(mv["name"], "new");
    assert_eq!(mv["aliases"], json!(["prod"]));
    assert_eq!(mv["tags"], json!([{"key": "k", "value": "v"}]));
    let (status, _) = app.get("registered-models/get?name=old").await;
    assert_eq!(status, 404);
    // The counter moves with the model.
    assert_eq!(create_version(app, "new", "s3://b/3").await, "3");
    // Renaming onto an existing name is refused.
    create_model(app, "taken").await;
    let (status, v) = app
        .post(
            "registered-models/rename",
            json!({"name": "new", "new_name": "taken"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "RESOURCE_ALREADY_EXISTS"));
}

async fn delete_model_drops_everything(app: &TestApp) {
    create_model(app, "gone").await;
    create_version(app, "gone", "s3://b/1").await;
    ok(
        app,
        "POST",
        "registered-models/alias",
        json!({"name": "gone", "alias": "a", "version": "1"}),
    )
    .await;
    ok(
        app,
        "DELETE",
        "registered-models/delete",
        json!({"name": "gone"}),
    )
    .await;
    let (status, _) = app.get("registered-models/get?name=gone").await;
    assert_eq!(status, 404);
    let (_, v) = app
        .get("model-versions/search?filter=name%3D%27gone%27")
        .await;
    assert_eq!(v, json!({}));
    // The name can be used again, from version 1.
    create_model(app, "gone").await;
    assert_eq!(create_version(app, "gone", "s3://b/1").await, "1");
    assert!(get_version(app, "gone", "1").await.get("aliases").is_none());
}

async fn search_registered_models_filters_orders_and_pages(app: &TestApp) {
    for name in ["alpha", "Beta", "beta-2", "gamma"] {
        create_model(app, name).await;
    }
    ok(
        app,
        "POST",
        "registered-models/set-tag",
        json!({"name": "gamma", "key": "team", "value": "vision"}),
    )
    .await;
    let search = |q: &'static str| async move {
        let (status, v) = app.get(&format!("registered-models/search?{q}")).await;
        assert_eq!(status, 200, "{q}: {v}");
        v
    };
    let v = search("").await;
    assert_eq!(
        names(&v, "registered_models", "name"),
        vec!["Beta", "alpha", "beta-2", "gamma"]
    );
    let v = search("filter=name%20LIKE%20%27beta%25%27").await;
    assert_eq!(names(&v, "registered_models", "name"), vec!["beta-2"]);
    let v = search("filter=name%20ILIKE%20%27beta%25%27").await;
    assert_eq!(
        names(&v, "registered_models", "name"),
        vec!["Beta", "beta-2"]
    );
    let v = search("filter=name%20!%3D%20%27alpha%27").await;
    assert_eq!(names(&v, "registered_models", "name").len(), 3);
    let v = search("filter=tags.team%20%3D%20%27vision%27").await;
    assert_eq!(names(&v, "registered_models", "name"), vec!["gamma"]);
    // A user's tag != needs the tag (MLflow's join semantics).
    let v = search("filter=tags.team%20!%3D%20%27nlp%27").await;
    assert_eq!(names(&v, "registered_models", "name"), vec!["gamma"]);
    let v = search("order_by=name%20DESC").await;
    assert_eq!(
        names(&v, "registered_models", "name"),
        vec!["gamma", "beta-2", "alpha", "Beta"]
    );

    // Paging visits every model once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let q = match &token {
            Some(t) => format!("registered-models/search?max_results=3&page_token={t}"),
            None => "registered-models/search?max_results=3".into(),
        };
        let (_, v) = app.get(&q).await;
        seen.extend(names(&v, "registered_models", "name"));
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec!["Beta", "alpha", "beta-2", "gamma"]);

    for bad in [
        "filter=bogus%20%3D%201",
        "filter=name%20%3D",
        "order_by=bogus",
        "max_results=1001",
        "max_results=0",
        "page_token=garbage!!",
    ] {
        let (status, v) = app.get(&format!("registered-models/search?{bad}")).await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "{bad}"
        );
    }
}

async fn search_model_versions_filters_orders_and_pages(app: &TestApp) {
    create_model(app, "a").await;
    create_model(app, "b").await;
    let exp = app.create_experiment("e").await;
    let run = app.create_run(&exp, 1).await;
    ok(
        app,
        "POST",
        "model-versions/create",
        json!({"name": "a", "source": format!("runs:/{run}/model"), "run_id": run}),
    )
    .await;
    create_version(app, "a", "s3://bucket/a2").await;
    create_version(app, "a", "s3://bucket/a3").await;
    create_version(app, "b", "s3://other/b1").await;
    ok(
        app,
        "POST",
        "model-versions/set-tag",
        json!({"name": "a", "version": "2", "key": "q", "value": "good"}),
    )
    .await;
    let keys = |v: &Value| -> Vec<String> {
        v["model_versions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        format!(
                            "{}/{}",
                            e["name"].as_str().unwrap(),
                            e["version"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let search = |q: String| async move {
        let (status, v) = app.get(&format!("model-versions/search?{q}")).await;
        assert_eq!(status, 200, "{q}: {v}");
        v
    };
    // Default order (MLflow's): last updated first, then name ASC, version DESC.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ok(
        app,
        "PATCH",
        "model-versions/update",
        json!({"name": "a", "version": "2", "description": "touched"}),
    )
    .await;
    let v = search(String::new()).await;
    let got = keys(&v);
    assert_eq!(got[0], "a/2", "{got:?}");
    let mut expected: Vec<(i64, String, i64)> = v["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                -e["last_updated_timestamp"].as_i64().unwrap(),
                e["name"].as_str().unwrap().to_string(),
                -e["version"].as_str().unwrap().parse::<i64>().unwrap(),
            )
        })
        .collect();
    expected.sort();
    let expected: Vec<String> = expected
        .into_iter()
        .map(|(_, n, v)| format!("{n}/{}", -v))
        .collect();
    assert_eq!(got, expected);
    // Search results carry no aliases (as MLflow).
    assert!(v["model_versions"][0].get("aliases").is_none());
    let v = search("filter=name%3D%27a%27%20AND%20version_number%3E%3D2".into()).await;
    assert_eq!(keys(&v), vec!["a/2", "a/3"]);
    let v = search(format!("filter=run_id%20IN%20(%27{run}%27,%27zzz%27)")).await;
    assert_eq!(keys(&v), vec!["a/1"]);
    let v = search(format!("filter=run_id%3D%27{run}%27")).await;
    assert_eq!(keys(&v), vec!["a/1"]);
    let v = search("filter=source_path%20LIKE%20%27s3://bucket/%25%27".into()).await;
    assert_eq!(keys(&v), vec!["a/2", "a/3"]);
    let v = search("filter=tags.q%3D%27good%27".into()).await;
    assert_eq!(keys(&v), vec!["a/2"]);
    let v = search("filter=name%20IN%20(%27b%27)".into()).await;
    assert_eq!(keys(&v), vec!["b/1"]);
    let v = search("order_by=version_number%20ASC&order_by=name%20DESC".into()).await;
    assert_eq!(keys(&v), vec!["b/1", "a/1", "a/2", "a/3"]);
    let v = search("filter=name%3D%27nope%27".into()).await;
    assert_eq!(v, json!({}));

    // Pages follow the default order.
    let v = search("max_results=2".into()).await;
    assert_eq!(keys(&v), expected[..2]);
    let token = v["next_page_token"].as_str().unwrap().to_string();
    let v = search(format!("max_results=2&page_token={token}")).await;
    assert_eq!(keys(&v), expected[2..]);
    assert!(v.get("next_page_token").is_none());

    for bad in [
        "filter=bogus%3D1",
        "filter=version_number%3D%27x%27",
        "filter=source_path%20IN%20(%27a%27)",
        "max_results=200001",
        "order_by=run_id",
    ] {
        let (status, v) = app.get(&format!("model-versions/search?{bad}")).await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "{bad}"
        );
    }
}

async fn search_hides_prompts_but_not_models_without_the_tag(app: &TestApp) {
    create_model(app, "model-no-tag").await;
    create_model(app, "model-false").await;
    create_model(app, "prompt").await;
    for (name, value) in [("model-false", "false"), ("prompt", "true")] {
        ok(
            app,
            "POST",
            "registered-models/set-tag",
            json!({"name": name, "key": "mlflow.prompt.is_prompt", "value": value}),
        )
        .await;
    }
    let (_, v) = app.get("registered-models/search").await;
    assert_eq!(
        names(&v, "registered_models", "name"),
        vec!["model-false", "model-no-tag"]
    );
    // The MLflow client appends `!= 'true'` to every search: it must keep untagged models.
    let (_, v) = app
        .get("registered-models/search?filter=tags.%60mlflow.prompt.is_prompt%60%20!%3D%20%27true%27")
        .await;
    assert_eq!(
        names(&v, "registered_models", "name"),
        vec!["model-false", "model-no-tag"]
    );
    // A user tag `!=` still needs the tag.
    ok(
        app,
        "POST",
        "registered-models/set-tag",
        json!({"name": "model-false", "key": "team", "value": "a"}),
    )
    .await;
    let (_, v) = app
        .get("registered-models/search?filter=tags.team%20!%3D%20%27b%27")
        .await;
    assert_eq!(names(&v, "registered_models", "name"), vec!["model-false"]);
    // Versions of prompts are left out of version search the same way.
    create_version(app, "model-no-tag", "s3://b/m").await;
    create_version(app, "prompt", "s3://b/p").await;
    ok(
        app,
        "POST",
        "model-versions/set-tag",
        json!({"name": "prompt", "version": "1", "key": "mlflow.prompt.is_prompt", "value": "true"}),
    )
    .await;
    let (_, v) = app.get("model-versions/search").await;
    assert_eq!(names(&v, "model_versions", "name"), vec!["model-no-tag"]);
    // Asking for prompts explicitly finds them.
    let (_, v) = app
        .get(
            "registered-models/search?filter=tags.%60mlflow.prompt.is_prompt%60%20%3D%20%27true%27",
        )
        .await;
    assert_eq!(names(&v, "registered_models", "name"), vec!["prompt"]);
    // get still finds a prompt by name.
    let (status, _) = app.get("registered-models/get?name=prompt").await;
    assert_eq!(status, 200);
}

async fn errors_have_mlflow_codes_and_statuses(app: &TestApp) {
    create_model(app, "dup").await;
    let (status, v) = app
        .post("registered-models/create", json!({"name": "dup"}))
        .await;
    assert_eq!((status, error_code(&v)), (400, "RESOURCE_ALREADY_EXISTS"));
    assert_eq!(v["message"], "Registered Model (name=dup) already exists.");

    let (status, v) = app.get("registered-models/get?name=missing").await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    assert_eq!(v["message"], "Registered Model with name=missing not found");
    let (status, v) = app
        .post(
            "model-versions/create",
            json!({"name": "missing", "source": "s3://b/x"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    let (status, v) = app.get("model-versions/get?name=dup&version=5").await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));
    assert_eq!(
        v["message"],
        "Model Version (name=dup, version=5) not found"
    );
    let (status, v) = app
        .call(
            "DELETE",
            "registered-models/delete",
            json!({"name": "missing"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "RESOURCE_DOES_NOT_EXIST"));

    create_version(app, "dup", "s3://b/x").await;
    let (status, v) = app
        .post(
            "model-versions/transition-stage",
            json!({"name": "dup", "version": "1", "stage": "bogus"}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    assert_eq!(
        v["message"],
        "Invalid Model Version stage: bogus. Value must be one of None, Staging, Production, Archived."
    );
    let (status, v) = app
        .post(
            "registered-models/get-latest-versions",
            json!({"name": "dup", "stages": ["bogus"]}),
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    let (status, v) = app.get("registered-models/alias?name=dup&alias=nope").await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    assert_eq!(v["message"], "Registered model alias nope not found.");

    for (path, body) in [
        ("registered-models/create", json!({})),
        ("registered-models/create", json!({"name": ""})),
        ("registered-models/create", json!({"name": "a/b"})),
        ("model-versions/create", json!({"name": "dup"})),
        (
            "model-versions/create",
            json!({"name": "dup", "source": "/local/path"}),
        ),
        (
            "model-versions/create",
            json!({"name": "dup", "source": "s3://b/../x"}),
        ),
        (
            "model-versions/create",
            json!({"name": "dup", "source": "runs:/abc/model"}),
        ),
        (
            "model-versions/create",
            json!({"name": "dup", "source": "runs:/abc/model", "run_id": "def"}),
        ),
        (
            "model-versions/transition-stage",
            json!({"name": "dup", "version": "1"}),
        ),
        (
            "model-versions/transition-stage",
            json!({"name": "dup", "version": "x", "stage": "None"}),
        ),
        ("registered-models/rename", json!({"name": "dup"})),
    ] {
        let (status, v) = app.post(path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (400, "INVALID_PARAMETER_VALUE"),
            "{path} {body}: {v}"
        );
    }
    let (status, v) = app.get("model-versions/get?name=dup&version=abc").await;
    assert_eq!((status, error_code(&v)), (400, "INVALID_PARAMETER_VALUE"));
    assert_eq!(
        v["message"],
        "Parameter 'version' must be an integer, got 'abc'."
    );
}

async fn models_uris_resolve_to_versions(app: &TestApp) {
    create_model(app, "svc").await;
    for i in 1..=3 {
        create_version(app, "svc", &format!("s3://b/{i}")).await;
    }
    transition(app, "svc", "1", "Staging", false).await;
    transition(app, "svc", "2", "Staging", false).await;
    transition(app, "svc", "3", "Production", false).await;
    ok(
        app,
        "POST",
        "registered-models/alias",
        json!({"name": "svc", "alias": "champion", "version": "1"}),
    )
    .await;

    let uri: StoreUri = app.store_uri.parse().expect("store uri");
    let db = Db::connect(&uri, 2).await.expect("connect");
    let registry = RegistryService::new(db.clone(), TrackingService::new(db, "mlflow-artifacts:/"));
    let resolve = |u: &'static str| {
        let registry = registry.clone();
        async move { registry.resolve_models_uri(u).await }
    };
    assert_eq!(resolve("models:/svc/2").await.unwrap().version, "2");
    assert_eq!(resolve("models:/svc/Staging").await.unwrap().version, "2");
    assert_eq!(resolve("models:/svc/staging").await.unwrap().version, "2");
    assert_eq!(
        resolve("models:/svc/Production").await.unwrap().version,
        "3"
    );
    assert_eq!(resolve("models:/svc/latest").await.unwrap().version, "3");
    let mv = resolve("models:/svc@champion").await.unwrap();
    assert_eq!((mv.version.as_str(), mv.source.as_str()), ("1", "s3://b/1"));
    assert_eq!(mv.aliases, vec!["champion"]);

    // The alias follows a move.
    ok(
        app,
        "POST",
        "registered-models/alias",
        json!({"name": "svc", "alias": "champion", "version": "3"}),
    )
    .await;
    assert_eq!(resolve("models:/svc@champion").await.unwrap().version, "3");

    for (u, code) in [
        ("models:/svc/9", ErrorCode::ResourceDoesNotExist),
        ("models:/svc/Archived", ErrorCode::ResourceDoesNotExist),
        ("models:/nope/1", ErrorCode::ResourceDoesNotExist),
        ("models:/nope/latest", ErrorCode::ResourceDoesNotExist),
        ("models:/svc@nope", ErrorCode::InvalidParameterValue),
        ("models:/svc/bogus", ErrorCode::InvalidParameterValue),
        ("runs:/abc/model", ErrorCode::InvalidParameterValue),
    ] {
        assert_eq!(resolve(u).await.unwrap_err().code, code, "{u}");
    }
}

async fn registry_routes_answer_under_the_ajax_prefix_and_wrong_methods_are_405(app: &TestApp) {
    create_model(app, "ajax").await;
    let (status, v) = app
        .raw(
            reqwest::Method::GET,
            "/ajax-api/2.0/mlflow/registered-models/get?name=ajax",
            "",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["registered_model"]["name"], "ajax");
    let (status, v) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/mlflow/registered-models/delete",
            "{\"name\": \"ajax\"}",
        )
        .await;
    assert_eq!((status, error_code(&v)), (405, "BAD_REQUEST"));
}
