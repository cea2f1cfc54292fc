//! Concurrent writes to one feature table, on a fresh SQLite file and a fresh PostgreSQL
//! database each: parallel merges of disjoint keys through one server give one version each
//! and lose no row; through two servers on one store (whose per-table locks know nothing of
//! each other, so Delta's optimistic commit decides) every acknowledged write's rows are there,
//! the versions are contiguous, and a refused write is a 4xx with MLflow's error body.

use ferroflow_e2e::feature_store::{fs, ok, FS};
use ferroflow_e2e::{backend_tests, TestApp};
use serde_json::{json, Value};

backend_tests!(
    parallel_merges_on_one_server_give_one_version_each_and_lose_no_row,
    parallel_merges_through_two_servers_on_one_store_lose_no_acknowledged_row,
);

/// Writers per server.
const N: i64 = 8;
/// Rows each writer merges (keys disjoint across writers).
const ROWS: i64 = 5;

async fn create_table(app: &TestApp, name: &str) {
    let created = ok(
        app,
        "POST",
        "/feature-tables/create",
        json!({"name": name, "primary_keys": ["id"], "schema": [
            {"name": "id", "type": "long"},
            {"name": "writer", "type": "long"},
            {"name": "score", "type": "double"}
        ]}),
    )
    .await;
    assert_eq!(created["feature_table"]["latest_version"], 0, "{created}");
}

/// Writer `w`'s rows: keys `w, w + 2N, w + 4N, …`: disjoint from every other writer's, but
/// interleaved, so each data file's key range overlaps the others' (what Delta's conflict
/// check compares, by file statistics).
fn records(w: i64) -> Vec<Value> {
    (0..ROWS)
        .map(|i| w + 2 * N * i)
        .map(|id| json!({"id": id, "writer": w, "score": id as f64 / 2.0}))
        .collect()
}

/// Merges each writer's rows at once, writer `w` through the server at `writers[w].1`;
/// answers (writer, server, status, body) by writer.
async fn merge_all(
    app: &TestApp,
    name: &str,
    writers: &[(i64, String)],
) -> Vec<(i64, String, u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (w, address) in writers.iter().cloned() {
        let client = app.client.clone();
        let name = name.to_string();
        tasks.spawn(async move {
            let (status, body) = merge(&client, &address, &name, w).await;
            (w, address, status, body)
        });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|a| a.0);
    answers
}

/// One merge of writer `w`'s rows through the server at `address`; (status, body).
async fn merge(client: &reqwest::Client, address: &str, name: &str, w: i64) -> (u16, Value) {
    let res = client
        .post(format!("{address}{FS}/feature-tables/write"))
        .json(&json!({"name": name, "mode": "merge", "records": records(w)}))
        .send()
        .await
        .expect("write request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("write body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// All rows of the table's latest version, sorted by id, and that version.
async fn all_rows(app: &TestApp, name: &str) -> (i64, Vec<Value>) {
    let v = ok(app, "POST", "/feature-tables/read", json!({"name": name})).await;
    let mut rows = v["records"].as_array().cloned().expect("records");
    rows.sort_by_key(|r| r["id"].as_i64());
    (v["version"].as_i64().expect("version"), rows)
}

/// The versions `history` lists, oldest first, with their operations.
async fn history(app: &TestApp, name: &str) -> Vec<(i64, String)> {
    let (status, h) = fs(
        app,
        "GET",
        &format!("/feature-tables/history?name={name}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "history: {h}");
    let mut out: Vec<(i64, String)> = h["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|c| {
            (
                c["version"].as_i64().expect("version"),
                c["operation"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Checks that the writes acknowledged (versions `acked`, writers `writers`) are exactly the
/// table's commits after version 0 and that all their rows, and no others, are there.
async fn check_table(app: &TestApp, name: &str, acked: &[(i64, i64)]) {
    let k = acked.len() as i64;
    let mut versions: Vec<i64> = acked.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=k).collect::<Vec<_>>(),
        "each acknowledged merge has its own version, 1..{k}: {acked:?}"
    );
    let h = history(app, name).await;
    assert_eq!(
        h.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (0..=k).collect::<Vec<_>>(),
        "history is versions 0..{k} with no gap and no extra commit: {h:?}"
    );
    assert!(
        h[1..].iter().all(|(_, op)| op == "MERGE"),
        "every commit after the create is a merge: {h:?}"
    );
    let (version, rows) = all_rows(app, name).await;
    assert_eq!(version, k);
    let mut writers: Vec<i64> = acked.iter().map(|(_, w)| *w).collect();
    writers.sort_unstable();
    let mut expected: Vec<Value> = writers.iter().flat_map(|w| records(*w)).collect();
    expected.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(
        rows.len(),
        expected.len(),
        "{} rows for {k} acknowledged merges of {ROWS}",
        rows.len()
    );
    assert_eq!(rows, expected, "every acknowledged row, as written");
    let got = ok(
        app,
        "GET",
        &format!("/feature-tables/get?name={name}"),
        json!({}),
    )
    .await;
    assert_eq!(got["feature_table"]["latest_version"], k, "{got}");
}

async fn parallel_merges_on_one_server_give_one_version_each_and_lose_no_row(app: &TestApp) {
    let name = "concurrent_one";
    create_table(app, name).await;
    let writers: Vec<(i64, String)> = (0..N).map(|w| (w, app.address.clone())).collect();
    let mut acked = Vec::new();
    for (w, _, status, body) in merge_all(app, name, &writers).await {
        assert_eq!(status, 200, "writer {w}: {body}");
        assert_eq!(body["num_rows"], ROWS, "writer {w}: {body}");
        acked.push((body["version"].as_i64().expect("version"), w));
    }
    check_table(app, name, &acked).await;
}

async fn parallel_merges_through_two_servers_on_one_store_lose_no_acknowledged_row(app: &TestApp) {
    let name = "concurrent_two";
    create_table(app, name).await;
    // A second server on the same database and artifacts directory: its own per-table
    // locks, so only the Delta log orders the two servers' commits.
    let replica = app.replica().await;
    let servers = [app.address.clone(), replica];
    let writers: Vec<(i64, String)> = (0..2 * N)
        .map(|w| (w, servers[(w % 2) as usize].clone()))
        .collect();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for (w, address, status, body) in merge_all(app, name, &writers).await {
        match status {
            200 => {
                assert_eq!(body["num_rows"], ROWS, "writer {w} via {address}: {body}");
                acked.push((body["version"].as_i64().expect("version"), w));
            }
            400..=499 => {
                // Refused: MLflow's error body, saying why.
                assert!(
                    body["error_code"].as_str().is_some_and(|c| !c.is_empty())
                        && body["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "writer {w} via {address}: a refused write needs MLflow's error body, \
                     got {status} {body}"
                );
                refused.push((w, status, body));
            }
            _ => panic!("writer {w} via {address}: {status} {body} (must be 200 or a 4xx)"),
        }
    }
    assert!(
        !acked.is_empty(),
        "no write was acknowledged; refused: {refused:?}"
    );
    check_table(app, name, &acked).await;
    // Both servers see the same table.
    let res = app
        .client
        .post(format!("{}{FS}/feature-tables/read", servers[1]))
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("read via the replica");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("read body");
    let mut rows = body["records"].as_array().cloned().expect("records");
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(
        (body["version"].as_i64().expect("version"), rows),
        all_rows(app, name).await
    );
}
