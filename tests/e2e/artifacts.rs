//! Proxied artifacts (`/api/2.0/mlflow-artifacts/...`, `artifacts/list`, `/get-artifact`)
//! against the real server on a local artifacts destination.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};

use ferroflow_e2e::{spawn_app, Store, TestApp};
use serde_json::{json, Value};

const BASE: &str = "/api/2.0/mlflow-artifacts/artifacts";

async fn put(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, Value) {
    let res = app
        .client
        .put(format!("{}{BASE}/{path}", app.address))
        .body(body)
        .send()
        .await
        .expect("PUT");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get_bytes(app: &TestApp, url_path: &str) -> (u16, String, Vec<u8>) {
    let res = app
        .client
        .get(format!("{}{url_path}", app.address))
        .send()
        .await
        .expect("GET");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, res.bytes().await.expect("body").to_vec())
}

async fn get_json(app: &TestApp, url_path: &str) -> (u16, Value) {
    let (status, _, body) = get_bytes(app, url_path).await;
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

/// Sends a request line as written (no client-side normalization of `..` or `%2e`).
fn raw_request(address: &str, method: &str, target: &str) -> u16 {
    let host = address.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_list_delete_round_trip() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    assert_eq!(put(&app, "a/b/c.txt", b"hello".to_vec()).await.0, 200);
    assert_eq!(put(&app, "a/model.pkl", vec![0u8, 1, 2]).await.0, 200);
    assert_eq!(put(&app, "a/MLmodel", b"flavors: {}".to_vec()).await.0, 200);

    let (status, ct, body) = get_bytes(&app, &format!("{BASE}/a/b/c.txt")).await;
    assert_eq!(
        (status, ct.as_str(), body.as_slice()),
        (200, "text/plain", &b"hello"[..])
    );
    let (_, ct, _) = get_bytes(&app, &format!("{BASE}/a/model.pkl")).await;
    assert_eq!(ct, "application/octet-stream");
    let (_, ct, _) = get_bytes(&app, &format!("{BASE}/a/MLmodel")).await;
    assert_eq!(ct, "text/plain");
    // The UI prefix serves the same store.
    let (status, _, body) =
        get_bytes(&app, "/ajax-api/2.0/mlflow-artifacts/artifacts/a/b/c.txt").await;
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));

    let (status, v) = get_json(&app, &format!("{BASE}?path=a")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"files": [
            {"path": "MLmodel", "is_dir": false, "file_size": 11},
            {"path": "b", "is_dir": true},
            {"path": "model.pkl", "is_dir": false, "file_size": 3},
        ]})
    );
    let (_, v) = get_json(&app, BASE).await;
    assert_eq!(v, json!({"files": [{"path": "a", "is_dir": true}]}));
    // A file or a missing directory lists as empty.
    assert_eq!(
        get_json(&app, &format!("{BASE}?path=a/b/c.txt")).await.1,
        json!({})
    );
    assert_eq!(
        get_json(&app, &format!("{BASE}?path=nope")).await.1,
        json!({})
    );

    let res = app
        .client
        .delete(format!("{}{BASE}/a/b", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, v) = get_json(&app, &format!("{BASE}/a/b/c.txt")).await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (_, v) = get_json(&app, &format!("{BASE}?path=a")).await;
    assert_eq!(v["files"].as_array().unwrap().len(), 2, "{v}");
    assert!(!app.artifacts_dir().join("a/b").exists());

    // Bytes are counted.
    let (_, _, metrics) = get_bytes(&app, "/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("ferroflow_artifact_bytes_total{direction=\"in\"} 19"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_artifact_is_404() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let (status, v) = get_json(&app, &format!("{BASE}/no/such/file.txt")).await;
    assert_eq!(status, 404);
    assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_attempts_are_refused() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let root = app.artifacts_dir();
    let outside = root.parent().unwrap().to_path_buf();
    let address = app.address.clone();
    let targets = [
        "../evil.txt",
        "a/../../evil.txt",
        "%2e%2e/evil.txt",
        "%2E%2E%2Fevil.txt",
        "a/%2e%2e/%2e%2e/evil.txt",
        "%252e%252e/evil.txt",
        "..%5cevil.txt",
        "a%5c..%5c..%5cevil.txt",
        "%2Fetc%2Fevil.txt",
        "/tmp/evil.txt",
        "evil%00.txt",
        "C:%5cevil.txt",
    ];
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for t in targets {
            for method in ["PUT", "GET", "DELETE"] {
                out.push((
                    t,
                    method,
                    raw_request(&address, method, &format!("{BASE}/{t}")),
                ));
            }
            out.push((
                t,
                "LIST",
                raw_request(&address, "GET", &format!("{BASE}?path={t}")),
            ));
        }
        out
    })
    .await
    .unwrap();
    for (target, method, status) in results {
        assert_eq!(status, 400, "{method} {target} answered {status}");
    }
    assert!(!outside.join("evil.txt").exists());
    assert!(!std::path::Path::new("/tmp/evil.txt").exists());
    let leaked: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("evil"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_artifacts_list_and_get_artifact() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let exp = app.create_experiment("artifacts").await;
    let run_id = app.create_run(&exp, 1).await;
    let (_, run) = app.get(&format!("runs/get?run_id={run_id}")).await;
    let root = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let storage = root
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/');
    assert_eq!(
        put(&app, &format!("{storage}/d/x.json"), b"{}".to_vec())
            .await
            .0,
        200
    );
    assert_eq!(
        put(&app, &format!("{storage}/top.txt"), b"top".to_vec())
            .await
            .0,
        200
    );

    let (status, v) = app.get(&format!("artifacts/list?run_id={run_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"root_uri": root, "files": [
            {"path": "d", "is_dir": true},
            {"path": "top.txt", "is_dir": false, "file_size": 3},
        ]})
    );
    let (_, v) = app
        .get(&format!("artifacts/list?run_id={run_id}&path=d"))
        .await;
    assert_eq!(
        v["files"],
        json!([{"path": "d/x.json", "is_dir": false, "file_size": 2}])
    );
    let (status, _) = app
        .get(&format!("artifacts/list?run_id={run_id}&path=../x"))
        .await;
    assert_eq!(status, 400);
    let (status, v) = app.get("artifacts/list?run_id=nope").await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );

    let (status, ct, body) = get_bytes(
        &app,
        &format!("/get-artifact?run_id={run_id}&path=d/x.json"),
    )
    .await;
    assert_eq!(
        (status, ct.as_str(), body.as_slice()),
        (200, "text/plain", &b"{}"[..])
    );
    let (status, _, _) = get_bytes(
        &app,
        &format!("/get-artifact?run_id={run_id}&path=missing.txt"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_is_not_offered() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let (_, _, info) = get_bytes(&app, "/api/3.0/mlflow/server-info").await;
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["multipart_uploads_enabled"], false);
    let (status, v) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/mlflow-artifacts/mpu/create/a/big.bin",
            r#"{"path": "big.bin", "num_parts": 2}"#,
        )
        .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (501, Some("NOT_IMPLEMENTED"))
    );
    let (status, _) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/mlflow-artifacts/mpu/create/a/big.bin",
            "{}",
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_round_trip() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let mut data = vec![0u8; 50 * 1024 * 1024];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let expected = hash(&data);
    assert_eq!(put(&app, "big/blob.bin", data).await.0, 200);
    let (status, ct, body) = get_bytes(&app, &format!("{BASE}/big/blob.bin")).await;
    assert_eq!((status, ct.as_str()), (200, "application/octet-stream"));
    assert_eq!(body.len(), 50 * 1024 * 1024);
    assert_eq!(hash(&body), expected);
    let (_, v) = get_json(&app, &format!("{BASE}?path=big")).await;
    assert_eq!(v["files"][0]["file_size"], 50 * 1024 * 1024);
}
