//! Test support: spawn the real server on a random port with a fresh database (a new SQLite
//! file, or a new PostgreSQL database), and talk HTTP to it.

use std::path::PathBuf;

use ferroflow_server::{Application, ServerConfig};
use serde_json::Value;

/// Which backend store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// PostgreSQL server used for tests (`FERROFLOW_TEST_POSTGRES_URL` overrides it).
pub fn postgres_admin_url() -> String {
    std::env::var("FERROFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A running server with its own store, removed when dropped.
pub struct TestApp {
    pub address: String,
    /// The backend store URI the server runs on (for tests that open the store directly).
    pub store_uri: String,
    pub client: reqwest::Client,
    dir: PathBuf,
    postgres_db: Option<String>,
    adjust: std::sync::Arc<dyn Fn(&mut ServerConfig) + Send + Sync>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.postgres_db.take() {
            // Best effort on a separate thread: the test's runtime is shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                        .await
                        .ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// Spawns the server on port 0 with a fresh store. For PostgreSQL, returns None (after
/// [`skip_unless_required`]) when no server is reachable; where PostgreSQL is required (`CI`,
/// or `scripts/test` found it) that is a failure.
pub async fn spawn_app(store: Store) -> Option<TestApp> {
    spawn_app_with(store, |_| {}).await
}

/// As [`spawn_app`], with the server configuration adjusted by `adjust` (replicas get the
/// same adjustment).
pub async fn spawn_app_with(
    store: Store,
    adjust: impl Fn(&mut ServerConfig) + Send + Sync + 'static,
) -> Option<TestApp> {
    let dir =
        std::env::temp_dir().join(format!("ferroflow-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create test dir");
    let (uri, postgres_db) = match store {
        Store::Sqlite => (format!("sqlite:///{}", dir.join("test.db").display()), None),
        Store::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = match sqlx::PgConnection::connect(&admin).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    skip_unless_required("postgres", &format!("no PostgreSQL at {admin}: {e}"));
                    return None;
                }
            };
            let name = format!("ferroflow_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin.clone());
            (format!("{base}/{name}"), Some(name))
        }
    };
    Some(serve(uri, dir, postgres_db, adjust).await)
}

/// Starts the server on an existing store, as an upgrade does (the migrations it lacks run at
/// start-up); the PostgreSQL database `postgres_db`, when given, is dropped with the app.
pub async fn spawn_app_on(uri: String, postgres_db: Option<String>) -> TestApp {
    let dir =
        std::env::temp_dir().join(format!("ferroflow-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create test dir");
    serve(uri, dir, postgres_db, |_| {}).await
}

async fn serve(
    uri: String,
    dir: PathBuf,
    postgres_db: Option<String>,
    adjust: impl Fn(&mut ServerConfig) + Send + Sync + 'static,
) -> TestApp {
    let mut config = ServerConfig::for_store(uri.clone(), dir.join("artifacts"));
    adjust(&mut config);
    let app = Application::build(&config)
        .await
        .expect("build application");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        store_uri: uri,
        client: reqwest::Client::new(),
        dir,
        postgres_db,
        adjust: std::sync::Arc::new(adjust),
    }
}

impl TestApp {
    /// A second server on the same backend store and artifacts destination (a replica);
    /// returns its address.
    pub async fn replica(&self) -> String {
        let mut config = ServerConfig::for_store(self.store_uri.clone(), self.artifacts_dir());
        (self.adjust)(&mut config);
        let app = Application::build(&config).await.expect("build replica");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// The directory the server's `--artifacts-destination` points at.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    /// POSTs JSON to `/api/2.0/mlflow/<path>`; returns (status, body).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}/api/2.0/mlflow/{path}", self.address))
            .json(&body)
            .send()
            .await
            .expect("request");
        Self::read(res).await
    }

    /// GETs `/api/2.0/mlflow/<path>?<query>`; returns (status, body).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}/api/2.0/mlflow/{path_and_query}", self.address))
            .send()
            .await
            .expect("request");
        Self::read(res).await
    }

    /// Sends JSON with any method to `/api/2.0/mlflow/<path>` (PATCH and DELETE carry JSON
    /// bodies in the registry API); returns (status, body).
    pub async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method: reqwest::Method = method.parse().expect("HTTP method");
        self.raw(
            method,
            &format!("/api/2.0/mlflow/{path}"),
            &body.to_string(),
        )
        .await
    }

    pub async fn raw(&self, method: reqwest::Method, url_path: &str, body: &str) -> (u16, Value) {
        let res = self
            .client
            .request(method, format!("{}{url_path}", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        Self::read(res).await
    }

    async fn read(res: reqwest::Response) -> (u16, Value) {
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POSTs and asserts 200.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert_eq!(status, 200, "POST {path} failed: {value}");
        value
    }

    pub async fn create_experiment(&self, name: &str) -> String {
        let v = self
            .ok("experiments/create", serde_json::json!({ "name": name }))
            .await;
        v["experiment_id"]
            .as_str()
            .expect("experiment_id")
            .to_string()
    }

    pub async fn create_run(&self, experiment_id: &str, start_time: i64) -> String {
        let v = self
            .ok(
                "runs/create",
                serde_json::json!({ "experiment_id": experiment_id, "start_time": start_time }),
            )
            .await;
        v["run"]["info"]["run_id"]
            .as_str()
            .expect("run_id")
            .to_string()
    }
}

/// Runs each listed test body on SQLite and on PostgreSQL: `backend_tests!(name, …)` expects
/// `async fn name(app: &TestApp)` in scope and makes `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::spawn_app($crate::Store::Sqlite).await.expect("sqlite app");
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::spawn_app($crate::Store::Postgres).await {
                        super::$name(&app).await;
                    }
                }
            )*
        }
    };
}

/// Calls of the feature-store API (`/api/2.0/feature-store`).
pub mod feature_store {
    use super::TestApp;
    use serde_json::Value;

    pub const FS: &str = "/api/2.0/feature-store";

    /// `method` `FS/path` with a JSON body; returns (status, body).
    pub async fn fs(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method: reqwest::Method = method.parse().expect("method");
        app.raw(method, &format!("{FS}{path}"), &body.to_string())
            .await
    }

    /// As `fs`, asserting a 200.
    pub async fn ok(app: &TestApp, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = fs(app, method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }
}

/// Whether a test service (`postgres`, `redis`) must be there: always under `CI`, and when
/// `FERROFLOW_TEST_REQUIRE` (comma-separated) names it — `scripts/test` sets that for every
/// service it found or started, so a test that cannot reach one fails instead of passing.
pub fn required(service: &str) -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("FERROFLOW_TEST_REQUIRE")
            .map(|v| v.split(',').any(|s| s.trim() == service))
            .unwrap_or(false)
}

/// Fails when `service` is required; otherwise says why the test is skipped, on stderr and in
/// the file `FERROFLOW_TEST_SKIP_LOG` names (`scripts/test` prints it in its summary: the test
/// harness hides a passing test's output).
pub fn skip_unless_required(service: &str, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    assert!(
        !required(service),
        "{test}: {service} is required here: {why}"
    );
    eprintln!("SKIPPED: {test}: {why}");
    if let Some(path) = std::env::var_os("FERROFLOW_TEST_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// The Redis test server's URL (`FERROFLOW_TEST_REDIS_URL`, else redis://127.0.0.1:6379), or
/// `None` (after [`skip_unless_required`]) when nothing answers there.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("FERROFLOW_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    match std::net::TcpStream::connect(&address) {
        Ok(_) => Some(url),
        Err(e) => {
            skip_unless_required("redis", &format!("no Redis at {url}: {e}"));
            None
        }
    }
}
