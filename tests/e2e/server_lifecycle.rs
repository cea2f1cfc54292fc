//! What a server leaves behind: at shutdown its background tasks stop before the backend
//! store closes (no "closed pool" errors in the log), and serving leaves no directories in the
//! temp dir.
//!
//! The server runs in this process, so its log is captured by a subscriber installed here.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use ferroflow_e2e::{spawn_app, Store};
use ferroflow_server::{Application, ServerConfig};
use serde_json::json;

/// Everything logged at WARN and above in this test process.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        log
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text(log: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&log.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// 150 rows, three classes: trials finish in milliseconds.
fn automl_dataset() -> String {
    let mut csv = String::from("a,b,label\n");
    for i in 0..150u32 {
        let class = i % 3;
        let a = class as f64 * 2.0 + ((i * 7) % 10) as f64 / 10.0;
        csv += &format!(
            "{a},{},{}\n",
            (i * 13) % 17,
            ["x", "y", "z"][class as usize]
        );
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_background_tasks_before_the_store_closes() {
    let log = captured_log();
    let dir =
        std::env::temp_dir().join(format!("ferroflow-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("test dir");
    let mut config = ServerConfig::for_store(
        format!("sqlite:///{}", dir.join("test.db").display()),
        dir.join("artifacts"),
    );
    // The poller reads the store every 10 ms: it would hit the closed store at once.
    config.serving_poll_ms = 10;
    let app = Application::build(&config).await.expect("build");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let running = tokio::spawn(app.run_until_stopped());
    let health = reqwest::get(format!("{address}/health"))
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);

    // An AutoML sweep logging trials (each one a run) when the server stops.
    let client = reqwest::Client::new();
    let uploaded: serde_json::Value = client
        .post(format!("{address}/api/2.0/automl/datasets?name=train.csv"))
        .body(automl_dataset())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("upload answer");
    let started: serde_json::Value = client
        .post(format!("{address}/api/2.0/automl/runs"))
        .json(
            &json!({"dataset": uploaded["dataset"], "target_col": "label",
                      "problem_type": "classification", "timeout_minutes": 5}),
        )
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("start answer");
    let id = started["automl_run"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no AutoML run: {started}"))
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let run: serde_json::Value = client
            .get(format!("{address}/api/2.0/automl/runs/{id}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("get answer");
        let run = &run["automl_run"];
        assert_eq!(run["state"], "RUNNING", "{run}");
        if run["progress"]["trials_completed"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no trial finished: {run}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    handle.stop(true).await;
    running
        .await
        .expect("server task")
        .expect("server stopped cleanly");
    // Not synchronisation: a window of 150 poller intervals and many trials in which a task
    // still running after the close would log its failure.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let text = log_text(&log);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !text.contains("closed pool")
            && !text.contains("reading serving endpoints failed")
            && !text.contains("AutoML run"),
        "background tasks used the store after it closed:\n{text}"
    );
}

/// Serving downloads each model version into a directory of its own and removes it once
/// loaded (or failed): the process leaves no `ferroflow-serving-<pid>-…` directory behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_leaves_no_directory_in_the_temp_dir() {
    let app = spawn_app(Store::Sqlite).await.expect("app");
    let leftovers = || -> Vec<String> {
        let prefix = format!("ferroflow-serving-{}-", std::process::id());
        std::fs::read_dir(std::env::temp_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(leftovers(), Vec::<String>::new(), "before any deployment");

    // A model version with files (not a loadable model: the download is what matters).
    let experiment = app.create_experiment("lifecycle").await;
    let run = app.create_run(&experiment, 0).await;
    let (_, got) = app.get(&format!("runs/get?run_id={run}")).await;
    let artifact_uri = got["run"]["info"]["artifact_uri"]
        .as_str()
        .expect("artifact_uri")
        .to_string();
    let path = artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or_else(|| panic!("proxied artifact URI: {artifact_uri}"));
    let put = app
        .client
        .put(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{path}/model/MLmodel",
            app.address
        ))
        .body("flavors: {}\n")
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status().as_u16(), 200);
    app.ok("registered-models/create", json!({"name": "lifecycle"}))
        .await;
    app.ok(
        "model-versions/create",
        json!({"name": "lifecycle", "source": format!("{artifact_uri}/model"), "run_id": run}),
    )
    .await;
    let (status, body) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/serving-endpoints",
            &json!({"name": "lifecycle", "config": {"served_models": [
                {"model_name": "lifecycle", "model_version": "1"}
            ]}})
            .to_string(),
        )
        .await;
    // Without ONNX Runtime the endpoint is NOT_READY; with it, the files are no model: 400.
    assert!(status == 200 || status == 400, "{status}: {body}");
    assert_eq!(
        leftovers(),
        Vec::<String>::new(),
        "after deploying (answer {status}: {body})"
    );
}
