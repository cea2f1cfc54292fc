//! End-to-end feature store tests over HTTP, on a fresh SQLite file and a fresh PostgreSQL
//! database each: Delta round trips and time travel, schema enforcement that writes nothing,
//! point-in-time joins on hand-checked cases, the online store across replicas, lineage.

use ferroflow_e2e::feature_store::{fs, ok, FS};
use ferroflow_e2e::{backend_tests, spawn_app_with, Store, TestApp};
use serde_json::{json, Value};

backend_tests!(
    tables_round_trip_with_merge_overwrite_and_time_travel,
    schema_violations_are_400_and_write_nothing,
    point_in_time_join_hand_checked,
    online_lookup_after_incremental_publish_agrees_across_replicas,
    training_set_on_a_run_records_lineage,
);

/// Rows of a JSON read, sorted by `id`.
async fn rows(app: &TestApp, body: Value) -> (i64, Vec<Value>) {
    let v = ok(app, "POST", "/feature-tables/read", body).await;
    let mut records = v["records"].as_array().cloned().unwrap_or_default();
    records.sort_by_key(|r| r["id"].as_i64());
    (v["version"].as_i64().expect("version"), records)
}

fn users_schema() -> Value {
    json!([
        {"name": "id", "type": "long"},
        {"name": "score", "type": "double"},
        {"name": "segment", "type": "string"}
    ])
}

async fn tables_round_trip_with_merge_overwrite_and_time_travel(app: &TestApp) {
    let created = ok(
        app,
        "POST",
        "/feature-tables/create",
        json!({"name": "users", "primary_keys": ["id"], "schema": users_schema(),
               "description": "user features", "tags": {"team": "growth"}}),
    )
    .await;
    let t = &created["feature_table"];
    assert_eq!(t["latest_version"], 0);
    assert!(
        t["location"].as_str().unwrap().ends_with("/features/users"),
        "{t}"
    );
    assert_eq!(t["tags"]["team"], "growth");
    let (status, dup) = fs(
        app,
        "POST",
        "/feature-tables/create",
        json!({"name": "users", "primary_keys": ["id"], "schema": users_schema()}),
    )
    .await;
    assert_eq!(
        (status, dup["error_code"].as_str()),
        (400, Some("RESOURCE_ALREADY_EXISTS"))
    );

    let w1 = ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "users", "mode": "merge", "records": [
            {"id": 1, "score": 1.0, "segment": "a"},
            {"id": 2, "score": 2.0, "segment": "b"},
            {"id": 3, "score": 3.0}
        ]}),
    )
    .await;
    assert_eq!(w1["version"], 1);
    let w2 = ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "users", "mode": "merge", "records": [
            {"id": 2, "score": 20.0, "segment": "bb"},
            {"id": 4, "score": 4.0, "segment": "d"}
        ]}),
    )
    .await;
    assert_eq!(w2["version"], 2);
    let (v, latest) = rows(app, json!({"name": "users"})).await;
    assert_eq!(v, 2);
    assert_eq!(
        latest,
        vec![
            json!({"id": 1, "score": 1.0, "segment": "a"}),
            json!({"id": 2, "score": 20.0, "segment": "bb"}),
            json!({"id": 3, "score": 3.0, "segment": null}),
            json!({"id": 4, "score": 4.0, "segment": "d"}),
        ]
    );
    let (_, before) = rows(app, json!({"name": "users", "as_of_version": 1})).await;
    assert_eq!(before[1], json!({"id": 2, "score": 2.0, "segment": "b"}));
    assert_eq!(before.len(), 3);

    // Keys and columns.
    let (_, some) = rows(
        app,
        json!({"name": "users", "keys": [{"id": 4}, {"id": 1}], "columns": ["id", "score"]}),
    )
    .await;
    assert_eq!(
        some,
        vec![
            json!({"id": 1, "score": 1.0}),
            json!({"id": 4, "score": 4.0})
        ]
    );

    // The same read as a GET with a query string (keys as JSON text).
    let got = ok(
        app,
        "GET",
        "/feature-tables/read?name=users&columns=id,score&keys=%5B%7B%22id%22%3A4%7D%5D&as_of_version=2",
        json!({}),
    )
    .await;
    assert_eq!(got["records"], json!([{"id": 4, "score": 4.0}]));

    // Overwrite replaces everything.
    let w3 = ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "users", "mode": "overwrite", "records": [
            {"id": 9, "score": 9.0, "segment": "z"}
        ]}),
    )
    .await;
    assert_eq!(w3["version"], 3);
    let (_, now) = rows(app, json!({"name": "users"})).await;
    assert_eq!(now, vec![json!({"id": 9, "score": 9.0, "segment": "z"})]);
    let (_, v2) = rows(app, json!({"name": "users", "as_of_version": 2})).await;
    assert_eq!(v2.len(), 4);
    let (status, e) = fs(
        app,
        "POST",
        "/feature-tables/read",
        json!({"name": "users", "as_of_version": 99}),
    )
    .await;
    assert_eq!(status, 400, "{e}");

    // History, newest first, with Delta's operation names.
    let h = ok(app, "GET", "/feature-tables/history?name=users", json!({})).await;
    let ops: Vec<(i64, String)> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["version"].as_i64().unwrap(),
                c["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        ops.iter().map(|o| o.0).collect::<Vec<_>>(),
        vec![3, 2, 1, 0]
    );
    assert_eq!(ops[1].1, "MERGE");
    assert_eq!(ops[0].1, "WRITE");

    // Optimize and vacuum keep the content.
    ok(
        app,
        "POST",
        "/feature-tables/optimize",
        json!({"name": "users"}),
    )
    .await;
    let vac = ok(
        app,
        "POST",
        "/feature-tables/vacuum",
        json!({"name": "users", "retention_hours": 0, "enforce_retention_duration": false}),
    )
    .await;
    // The overwrite and the merge left files no current version reads.
    assert!(
        !vac["files_deleted"]
            .as_array()
            .expect("files_deleted")
            .is_empty(),
        "{vac}"
    );
    let (_, after) = rows(app, json!({"name": "users"})).await;
    assert_eq!(after, now);

    // Search, tags, delete.
    let found = ok(
        app,
        "GET",
        "/feature-tables/search?filter_string=tags.team%20%3D%20%27growth%27",
        json!({}),
    )
    .await;
    assert_eq!(found["feature_tables"].as_array().map(|a| a.len()), Some(1));
    ok(
        app,
        "DELETE",
        "/feature-tables/delete",
        json!({"name": "users"}),
    )
    .await;
    let (status, _) = fs(app, "GET", "/feature-tables/get?name=users", json!({})).await;
    assert_eq!(status, 404);
    assert!(!app.artifacts_dir().join("features/users").exists());
}

async fn schema_violations_are_400_and_write_nothing(app: &TestApp) {
    ok(
        app,
        "POST",
        "/feature-tables/create",
        json!({"name": "strict", "primary_keys": ["id"], "schema": users_schema()}),
    )
    .await;
    ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "strict", "records": [{"id": 1, "score": 1.0, "segment": "a"}]}),
    )
    .await;
    for (records, expect) in [
        (
            json!([{"id": 2, "score": 1.0, "color": "red"}]),
            "Unknown column 'color'",
        ),
        (
            json!([{"id": 2, "score": "high"}]),
            "records[0]: column 'score' (double): the string \"high\" is not a number",
        ),
        // A fraction into the integer key must not land on (and overwrite) key 1.
        (
            json!([{"id": 2, "score": 1.0}, {"id": 1.25, "score": 9.0}]),
            "records[1]: column 'id' (long): 1.25 is not an integer",
        ),
        (
            json!([{"id": 2, "score": 1.0, "segment": 7}]),
            "records[0]: column 'segment' (string): 7 is not a string",
        ),
        (json!([{"score": 1.0}]), "key"),
        (
            json!([{"id": 5, "score": 1.0}, {"id": 5, "score": 2.0}]),
            "Duplicate key",
        ),
    ] {
        let (status, e) = fs(
            app,
            "POST",
            "/feature-tables/write",
            json!({"name": "strict", "records": records}),
        )
        .await;
        assert_eq!(status, 400, "{records}: {e}");
        assert_eq!(e["error_code"], "INVALID_PARAMETER_VALUE");
        assert!(e["message"].as_str().unwrap().contains(expect), "{e}");
    }
    let (v, rows) = rows(app, json!({"name": "strict"})).await;
    assert_eq!((v, rows.len()), (1, 1), "nothing written");
    assert_eq!(rows[0], json!({"id": 1, "score": 1.0, "segment": "a"}));
    for bad in [
        json!({"name": "t1", "primary_keys": ["nope"], "schema": users_schema()}),
        json!({"name": "t2", "primary_keys": ["score"], "schema": users_schema()}),
        json!({"name": "t3", "primary_keys": ["id"], "timestamp_key": "segment", "schema": users_schema()}),
        json!({"name": "../x", "primary_keys": ["id"], "schema": users_schema()}),
        json!({"name": "t4", "primary_keys": ["id"]}),
        json!({"name": "t5", "primary_keys": ["id"], "schema": [{"name": "id", "type": "uuid"}]}),
    ] {
        let (status, e) = fs(app, "POST", "/feature-tables/create", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {e}");
    }
    let listed = ok(app, "GET", "/feature-tables/search", json!({})).await;
    assert_eq!(
        listed["feature_tables"].as_array().map(|a| a.len()),
        Some(1),
        "{listed}"
    );
}

/// Feature rows for user 1 at 10:00 and 12:00 (the 12:00 one arrives later, in a second
/// write), user 2 at 09:00; a non-time-series table of segments.
async fn pit_fixture(app: &TestApp) {
    ok(
        app,
        "POST",
        "/feature-tables/create",
        json!({
            "name": "activity", "primary_keys": ["user_id"], "timestamp_key": "ts",
            "schema": [{"name": "user_id", "type": "long"}, {"name": "ts", "type": "timestamp"},
                       {"name": "clicks", "type": "long"}, {"name": "spend", "type": "double"}]
        }),
    )
    .await;
    ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "activity", "records": [
            {"user_id": 1, "ts": "2024-01-01T10:00:00Z", "clicks": 10, "spend": 1.0},
            {"user_id": 2, "ts": "2024-01-01T09:00:00Z", "clicks": 20, "spend": 2.0}
        ]}),
    )
    .await;
    // Late-arriving row for user 1.
    ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "activity", "records": [
            {"user_id": 1, "ts": "2024-01-01T12:00:00Z", "clicks": 12, "spend": 1.2}
        ]}),
    )
    .await;
    ok(
        app,
        "POST",
        "/feature-tables/create",
        json!({
            "name": "segments", "primary_keys": ["user_id"],
            "records": [{"user_id": 1, "segment": "gold"}, {"user_id": 2, "segment": "silver"}]
        }),
    )
    .await;
}

async fn point_in_time_join_hand_checked(app: &TestApp) {
    pit_fixture(app).await;
    let spine = json!([
        {"row": 0, "user_id": 1, "at": "2024-01-01T09:59:59Z", "label": 0},
        {"row": 1, "user_id": 1, "at": "2024-01-01T10:00:00Z", "label": 1},
        {"row": 2, "user_id": 1, "at": "2024-01-01T11:59:00Z", "label": 0},
        {"row": 3, "user_id": 1, "at": "2024-01-01T12:30:00Z", "label": 1},
        {"row": 4, "user_id": 2, "at": "2024-01-01T12:00:00Z", "label": 0},
        {"row": 5, "user_id": 3, "at": "2024-01-01T12:00:00Z", "label": 1}
    ]);
    let v = ok(
        app,
        "POST",
        "/training-sets/create",
        json!({
            "spine": {"records": spine},
            "feature_lookups": [
                {"table_name": "activity", "lookup_key": "user_id", "timestamp_lookup_key": "at",
                 "feature_names": ["clicks", "spend"], "rename_outputs": {"clicks": "n_clicks"},
                 "lookback_window_seconds": 7200, "default_values": {"spend": -1.0}},
                {"table_name": "segments", "lookup_key": ["user_id"]}
            ],
            "label": "label",
            "exclude_columns": ["at"],
            "output": {"format": "json"}
        }),
    )
    .await;
    let mut records = v["records"].as_array().cloned().unwrap();
    records.sort_by_key(|r| r["row"].as_i64());
    let got: Vec<(Value, Value, Value)> = records
        .iter()
        .map(|r| {
            (
                r["n_clicks"].clone(),
                r["spend"].clone(),
                r["segment"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Value::Null, json!(-1.0), json!("gold")), // before any feature row: default
            (json!(10), json!(1.0), json!("gold")),    // equal timestamps match
            (json!(10), json!(1.0), json!("gold")),    // the 12:00 row is in the future
            (json!(12), json!(1.2), json!("gold")),    // the late-arriving row, now visible
            (Value::Null, json!(-1.0), json!("silver")), // 09:00 is outside the 2 h lookback
            (Value::Null, json!(-1.0), Value::Null),   // unknown key
        ]
    );
    // Column order: spine (minus excluded and label), features, label last.
    let names: Vec<&str> = v["training_set"]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["row", "user_id", "label", "n_clicks", "spend", "segment"]
    );
    assert_eq!(
        v["training_set"]["feature_tables"][0],
        json!({"name": "activity", "version": 2})
    );
    let invalid = (400, "INVALID_PARAMETER_VALUE");
    for (bad, expect, says) in [
        (
            json!({"spine": {"records": spine}, "feature_lookups": [{"table_name": "activity", "lookup_key": "user_id"}]}),
            invalid,
            "timestamp_lookup_key",
        ),
        (
            json!({"spine": {"records": spine}, "feature_lookups": [{"table_name": "nope", "lookup_key": "user_id"}]}),
            (404, "RESOURCE_DOES_NOT_EXIST"),
            "'nope'",
        ),
        (
            json!({"spine": {"records": spine}, "feature_lookups": [{"table_name": "segments", "lookup_key": "missing"}]}),
            invalid,
            "'missing' is not a spine column",
        ),
        (
            json!({"spine": {"records": spine}, "feature_lookups": [{"table_name": "segments", "lookup_key": "user_id", "feature_names": ["user_id"]}]}),
            invalid,
            "'user_id' is not a feature",
        ),
        (
            json!({"spine": {"records": spine}, "feature_lookups": [{"table_name": "segments", "lookup_key": "user_id"}], "output": {"format": "parquet", "path": "../escape"}}),
            invalid,
            "output.path '../escape' is not a path under the artifacts destination",
        ),
    ] {
        let (status, e) = fs(app, "POST", "/training-sets/create", bad.clone()).await;
        assert_eq!(
            (status, e["error_code"].as_str().unwrap_or_default()),
            expect,
            "{bad}: {e}"
        );
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{bad}: {message}");
    }
}

/// The same online-store behaviour with rows kept in Redis (127.0.0.1:6379, or
/// FERROFLOW_TEST_REDIS_URL); skipped (and listed in scripts/test's summary) when no Redis
/// answers, unless Redis is required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_store_on_redis() {
    let Some(url) = ferroflow_e2e::redis_url() else {
        return;
    };
    let app = spawn_app_with(Store::Sqlite, move |c| c.online_store = Some(url.clone()))
        .await
        .expect("app");
    online_lookup_after_incremental_publish_agrees_across_replicas(&app).await;
    // Deleting the table drops its online rows.
    ok(
        &app,
        "DELETE",
        "/feature-tables/delete",
        json!({"name": "activity"}),
    )
    .await;
    let (status, _) = fs(
        &app,
        "POST",
        "/online/lookup",
        json!({"lookups": [{"table_name": "activity", "keys": [{"user_id": 1}]}]}),
    )
    .await;
    assert_eq!(status, 404);
}

async fn online_lookup_after_incremental_publish_agrees_across_replicas(app: &TestApp) {
    pit_fixture(app).await;
    let (status, e) = fs(
        app,
        "POST",
        "/online/lookup",
        json!({"lookups": [{"table_name": "activity", "keys": [{"user_id": 1}]}]}),
    )
    .await;
    assert_eq!(status, 400, "not published yet: {e}");
    let p = ok(
        app,
        "POST",
        "/online/publish",
        json!({"name": "activity", "mode": "full"}),
    )
    .await;
    assert_eq!(p["version"].as_i64(), Some(2), "{p}");
    // One row per key: user 1's older row (in another file) is not written.
    assert_eq!(p["rows_published"], 2, "{p}");
    ok(app, "POST", "/online/publish", json!({"name": "segments"})).await;
    let replica = app.replica().await;
    let lookup = json!({"lookups": [
        {"table_name": "activity", "keys": [{"user_id": 2}, {"user_id": 3}, {"user_id": 1}]},
        {"table_name": "segments", "keys": [{"user_id": 1}], "feature_names": ["segment"]}
    ]});
    let v = ok(app, "POST", "/online/lookup", lookup.clone()).await;
    assert_eq!(
        v["results"][0]["rows"],
        json!([
            {"clicks": 20, "spend": 2.0}, null, {"clicks": 12, "spend": 1.2}
        ])
    );
    assert_eq!(v["results"][1]["rows"], json!([{"segment": "gold"}]));

    // An older row does not replace a newer one; a newer one does; user 3 appears.
    ok(
        app,
        "POST",
        "/feature-tables/write",
        json!({"name": "activity", "records": [
            {"user_id": 1, "ts": "2024-01-01T11:00:00Z", "clicks": 11, "spend": 1.1},
            {"user_id": 2, "ts": "2024-01-02T09:00:00Z", "clicks": 21, "spend": 2.1},
            {"user_id": 3, "ts": "2024-01-02T09:00:00Z", "clicks": 30, "spend": 3.0}
        ]}),
    )
    .await;
    let p = ok(
        app,
        "POST",
        "/online/publish",
        json!({"name": "activity", "mode": "incremental"}),
    )
    .await;
    assert_eq!(p["mode"], "incremental");
    assert_eq!(p["version"], 3);
    // The new file's rows only; the store keeps user 1's newer published row.
    assert_eq!(p["rows_published"], 3, "{p}");
    let expected = json!([{"clicks": 21, "spend": 2.1}, {"clicks": 30, "spend": 3.0}, {"clicks": 12, "spend": 1.2}]);
    let v = ok(app, "POST", "/online/lookup", lookup.clone()).await;
    assert_eq!(v["results"][0]["rows"], expected);
    // The replica shares the store: same answer at once.
    let res = app
        .client
        .post(format!("{replica}{FS}/online/lookup"))
        .json(&lookup)
        .send()
        .await
        .expect("replica");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["results"][0]["rows"], expected);

    let (status, e) = fs(
        app,
        "POST",
        "/online/lookup",
        json!({"lookups": [{"table_name": "activity", "keys": [{"user_id": "x"}]}]}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = fs(
        app,
        "POST",
        "/online/lookup",
        json!({"lookups": [{"table_name": "nope", "keys": [{"user_id": 1}]}]}),
    )
    .await;
    assert_eq!(status, 404);
}

async fn training_set_on_a_run_records_lineage(app: &TestApp) {
    pit_fixture(app).await;
    let exp = app.create_experiment("fs-lineage").await;
    let run = app.create_run(&exp, 1).await;
    let v = ok(app, "POST", "/training-sets/create", json!({
        "spine": {"records": [{"user_id": 1, "at": "2024-01-01T12:30:00Z", "y": 1}]},
        "feature_lookups": [{"table_name": "activity", "lookup_key": "user_id", "timestamp_lookup_key": "at"}],
        "label": "y", "run_id": run, "output": {"format": "parquet"}
    })).await;
    let location = v["training_set"]["location"].as_str().unwrap();
    assert!(
        location.starts_with("mlflow-artifacts:/training-sets/"),
        "{v}"
    );
    let rel = location.trim_start_matches("mlflow-artifacts:/");
    assert!(app.artifacts_dir().join(rel).exists(), "{rel}");

    let (_, got) = app.get(&format!("runs/get?run_id={run}")).await;
    let inputs = got["run"]["inputs"]["dataset_inputs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = inputs
        .iter()
        .filter_map(|d| d["dataset"]["name"].as_str())
        .collect();
    assert!(names.contains(&"activity"), "{got}");
    let source: Value = serde_json::from_str(
        inputs
            .iter()
            .find(|d| d["dataset"]["name"] == "activity")
            .unwrap()["dataset"]["source"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(source["delta_table_version"], 2);

    app.post("registered-models/create", json!({"name": "churn"}))
        .await;
    let (status, mv) = app
        .post(
            "model-versions/create",
            json!({"name": "churn", "source": "s3://x/model", "run_id": run}),
        )
        .await;
    assert_eq!(status, 200, "{mv}");
    let t = ok(app, "GET", "/feature-tables/get?name=activity", json!({})).await;
    assert_eq!(
        t["feature_table"]["lineage"]["runs"][0]["run_id"],
        json!(run)
    );
    assert_eq!(
        t["feature_table"]["lineage"]["model_versions"][0],
        json!({"name": "churn", "version": "1", "table_version": 2})
    );
    let l = ok(
        app,
        "GET",
        "/lineage/model-version?name=churn&version=1",
        json!({}),
    )
    .await;
    assert_eq!(l["feature_tables"][0]["name"], "activity");
    assert_eq!(l["feature_tables"][0]["version"], 2);
    let (status, _) = fs(
        app,
        "GET",
        "/lineage/model-version?name=churn&version=7",
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
}
