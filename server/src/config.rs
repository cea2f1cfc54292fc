//! Server configuration: `mlflow server`'s flag names, each also an environment variable.

use std::path::PathBuf;

use clap::Args;
use ferroflow_core::StoreUri;

/// Options of `ferroflow server`.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "FERROFLOW_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', env = "FERROFLOW_PORT", default_value_t = 5000)]
    pub port: u16,

    /// Backend store: sqlite:///rel.db, sqlite:////abs/path.db or postgresql://user:pass@host:port/db.
    #[arg(
        long,
        env = "FERROFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlruns.db"
    )]
    pub backend_store_uri: String,

    /// Directory or object-store URI where proxied artifacts are stored.
    #[arg(
        long,
        env = "FERROFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    pub artifacts_destination: String,

    /// Artifact root of new experiments (default: `mlflow-artifacts:/`, served by this server).
    #[arg(long, env = "FERROFLOW_DEFAULT_ARTIFACT_ROOT")]
    pub default_artifact_root: Option<String>,

    /// HTTP worker threads (default: one per core).
    #[arg(long, short = 'w', env = "FERROFLOW_WORKERS")]
    pub workers: Option<usize>,

    /// ONNX Runtime shared library for serving endpoints (scripts/onnxruntime.sh fetches it;
    /// ORT_DYLIB_PATH is read when this is unset). Without it the server runs and serving
    /// endpoints answer 503.
    #[arg(long, env = "FERROFLOW_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,

    /// How often serving endpoints that follow a stage or alias re-check the registry (ms).
    #[arg(long, env = "FERROFLOW_SERVING_POLL_MS", default_value_t = 1000)]
    pub serving_poll_ms: u64,

    /// The feature store's online store: `sql` (the backend store, the default) or
    /// `redis://host:port[/db]`.
    #[arg(long, env = "FERROFLOW_ONLINE_STORE")]
    pub online_store: Option<String>,

    /// MLflow's web UI bundle (`scripts/mlflow-ui.sh` fetches it). Default: `./.mlflow-ui`,
    /// else `.mlflow-ui` in a parent folder of the binary.
    #[arg(long, env = "FERROFLOW_STATIC_FOLDER")]
    pub static_folder: Option<PathBuf>,

    /// A prefix for every path the server answers, UI and API alike (as `mlflow server
    /// --static-prefix`): begins with '/', does not end with one.
    #[arg(long, env = "FERROFLOW_STATIC_PREFIX", value_parser = parse_static_prefix)]
    pub static_prefix: Option<String>,

    /// `basic-auth` turns on authentication and permissions, as `mlflow server --app-name
    /// basic-auth` (configured by MLFLOW_AUTH_CONFIG_PATH and MLFLOW_AUTH_ADMIN_PASSWORD).
    #[arg(long = "app-name", env = "FERROFLOW_APP_NAME", value_parser = ["basic-auth"])]
    pub app_name: Option<String>,

    /// Local directories (comma-separated) where feature tables may be created with an explicit
    /// `location`, besides the artifact root. With auth on, only admins may give a location.
    #[arg(long, env = "FERROFLOW_FEATURE_TABLE_LOCATIONS", value_delimiter = ',')]
    pub feature_table_locations: Vec<PathBuf>,

    /// The same as `--app-name basic-auth`.
    #[arg(long, env = "FERROFLOW_AUTH")]
    pub auth: bool,

    /// With auth on, `/metrics` answers without credentials (for scrapers); otherwise only
    /// admins read it.
    #[arg(long, env = "FERROFLOW_PUBLIC_METRICS")]
    pub public_metrics: bool,
}

/// `mlflow server`'s rules for `--static-prefix`, in its words.
fn parse_static_prefix(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err("--static-prefix must begin with a '/'.".into());
    }
    if value.ends_with('/') {
        return Err("--static-prefix should not end with a '/'.".into());
    }
    if value.contains('{') || value.contains('}') {
        return Err("--static-prefix must not contain '{' or '}'.".into());
    }
    Ok(value.to_string())
}

impl ServerConfig {
    /// A configuration for tests and embedding: port 0, the given store.
    pub fn for_store(
        backend_store_uri: impl Into<String>,
        artifacts_destination: impl Into<PathBuf>,
    ) -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            backend_store_uri: backend_store_uri.into(),
            artifacts_destination: artifacts_destination.into().display().to_string(),
            default_artifact_root: None,
            workers: Some(2),
            onnxruntime_lib: None,
            serving_poll_ms: 200,
            online_store: None,
            static_folder: None,
            static_prefix: None,
            app_name: None,
            feature_table_locations: Vec::new(),
            auth: false,
            public_metrics: false,
        }
    }

    /// Whether authentication and permissions are on.
    pub fn auth_enabled(&self) -> bool {
        self.auth || self.app_name.as_deref() == Some("basic-auth")
    }

    pub fn store_uri(&self) -> ferroflow_core::Result<StoreUri> {
        self.backend_store_uri.parse()
    }

    /// `--default-artifact-root`, a relative local path taken against the working directory
    /// as `mlflow server` takes it.
    pub fn artifact_root(&self) -> String {
        match (&self.default_artifact_root, std::env::current_dir()) {
            (Some(root), Ok(cwd)) => ferroflow_core::uri::resolve_if_local(root, &cwd),
            (Some(root), Err(_)) => root.clone(),
            (None, _) => "mlflow-artifacts:/".to_string(),
        }
    }

    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            })
            .max(1)
    }
}
