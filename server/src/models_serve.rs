//! `ferroflow models serve`: one model on its own port, like `mlflow models serve`. The model
//! comes from a local directory or from a tracking server (`--tracking-uri`, else
//! `MLFLOW_TRACKING_URI`) by `models:/`, `runs:/` or `mlflow-artifacts:/` URI.

use std::path::{Path, PathBuf};

use actix_web::{App, HttpServer};
use anyhow::{anyhow, bail, Context};
use clap::Args;
use ferroflow_serving::{BatchOptions, LoadedModel, RuntimeStatus};
use serde_json::Value;

/// Options of `ferroflow models serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeModelArgs {
    /// The model: a directory, models:/name/<version|stage|latest>, models:/name@alias,
    /// models:/m-<id>, runs:/<run_id>/<path> or mlflow-artifacts:/<path>.
    #[arg(short = 'm', long)]
    pub model_uri: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(short = 'p', long, default_value_t = 5000)]
    pub port: u16,
    /// Tracking server that resolves models:/, runs:/ and mlflow-artifacts:/ URIs.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// ONNX Runtime shared library (else ORT_DYLIB_PATH).
    #[arg(long, env = "FERROFLOW_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Dynamic batching: most rows per run (1 = off).
    #[arg(long, default_value_t = 64)]
    pub max_batch_size: usize,
    /// Dynamic batching: wait for more requests, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub max_delay_us: u64,
    /// Inference threads (one ONNX Runtime session each).
    #[arg(long, default_value_t = 2)]
    pub inference_workers: usize,
    /// HTTP worker threads (default: one per core).
    #[arg(short = 'w', long)]
    pub workers: Option<usize>,
}

/// A tracking-server client for the few calls resolution needs.
struct Tracking {
    base: String,
    http: reqwest::Client,
}

impl Tracking {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .with_context(|| format!("GET {}{path}", self.base))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// The version number a `models:/name/…` spec names.
    async fn version_of(&self, name: &str, spec: &str) -> anyhow::Result<String> {
        if spec.chars().all(|c| c.is_ascii_digit()) {
            return Ok(spec.to_string());
        }
        let body = self
            .get("/api/2.0/mlflow/registered-models/get", &[("name", name)])
            .await?;
        let versions = body["registered_model"]["latest_versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        versions
            .iter()
            .filter(|v| {
                spec.eq_ignore_ascii_case("latest")
                    || v["current_stage"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(spec))
            })
            .filter_map(|v| v["version"].as_str()?.parse::<i64>().ok())
            .max()
            .map(|v| v.to_string())
            .ok_or_else(|| anyhow!("no version of model '{name}' in stage '{spec}'"))
    }

    /// The artifact URI behind a model URI.
    async fn artifact_uri(&self, uri: &str) -> anyhow::Result<String> {
        if let Some(rest) = uri.strip_prefix("models:/") {
            let rest = rest.trim_end_matches('/');
            if rest.starts_with("m-") && !rest.contains('/') {
                let body = self
                    .get(&format!("/api/2.0/mlflow/logged-models/{rest}"), &[])
                    .await?;
                return body["model"]["info"]["artifact_uri"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("logged model {rest} has no artifact_uri"));
            }
            let (name, version) = if let Some((name, alias)) = rest.split_once('@') {
                let body = self
                    .get(
                        "/api/2.0/mlflow/registered-models/alias",
                        &[("name", name), ("alias", alias)],
                    )
                    .await?;
                let v = body["model_version"]["version"]
                    .as_str()
                    .ok_or_else(|| anyhow!("alias {alias} of {name} has no version"))?
                    .to_string();
                (name.to_string(), v)
            } else {
                let (name, spec) = rest
                    .rsplit_once('/')
                    .ok_or_else(|| anyhow!("'{uri}' is not models:/<name>/<version|stage>"))?;
                (name.to_string(), self.version_of(name, spec).await?)
            };
            let body = self
                .get(
                    "/api/2.0/mlflow/model-versions/get-download-uri",
                    &[("name", &name), ("version", &version)],
                )
                .await?;
            let source = body["artifact_uri"]
                .as_str()
                .ok_or_else(|| anyhow!("{name} version {version} has no artifact_uri"))?;
            return Box::pin(self.artifact_uri(source)).await;
        }
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let body = self
                .get("/api/2.0/mlflow/runs/get", &[("run_id", run_id)])
                .await?;
            let root = body["run"]["info"]["artifact_uri"]
                .as_str()
                .ok_or_else(|| anyhow!("run {run_id} has no artifact_uri"))?;
            return Ok(format!("{}/{}", root.trim_end_matches('/'), path));
        }
        Ok(uri.to_string())
    }

    /// Copies everything under the proxied artifact path `rel` into `dest`.
    async fn download_tree(&self, rel: &str, dest: &Path) -> anyhow::Result<usize> {
        let listing = self
            .get("/api/2.0/mlflow-artifacts/artifacts", &[("path", rel)])
            .await?;
        let mut copied = 0;
        for f in listing["files"].as_array().cloned().unwrap_or_default() {
            let name = f["path"].as_str().unwrap_or_default();
            let base = name.rsplit('/').next().unwrap_or(name);
            if base.is_empty() || base == ".." || base == "." {
                continue;
            }
            let child = format!("{}/{base}", rel.trim_end_matches('/'));
            if f["is_dir"].as_bool().unwrap_or(false) {
                copied += Box::pin(self.download_tree(&child, &dest.join(base))).await?;
                continue;
            }
            let bytes = self
                .http
                .get(format!(
                    "{}/api/2.0/mlflow-artifacts/artifacts/{child}",
                    self.base
                ))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            tokio::fs::create_dir_all(dest).await?;
            tokio::fs::write(dest.join(base), &bytes).await?;
            copied += 1;
        }
        Ok(copied)
    }
}

/// A local directory holding the model's files (downloaded when the URI is remote).
async fn fetch_model(args: &ServeModelArgs) -> anyhow::Result<PathBuf> {
    let local = Path::new(&args.model_uri);
    if local.is_dir() {
        return Ok(local.to_path_buf());
    }
    let base = args
        .tracking_uri
        .clone()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| {
            anyhow!(
                "'{}' is not a directory; resolving it needs an http(s) tracking server \
                 (--tracking-uri or MLFLOW_TRACKING_URI)",
                args.model_uri
            )
        })?;
    let tracking = Tracking {
        base: base.trim_end_matches('/').to_string(),
        http: reqwest::Client::new(),
    };
    let artifact_uri = tracking.artifact_uri(&args.model_uri).await?;
    let rel = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .map(|r| match r.strip_prefix("//") {
            Some(r) => r.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => r,
        })
        .ok_or_else(|| anyhow!("'{artifact_uri}' is not a mlflow-artifacts: URI"))?
        .trim_matches('/')
        .to_string();
    let dest =
        std::env::temp_dir().join(format!("ferroflow-model-{}", uuid::Uuid::new_v4().simple()));
    let n = tracking.download_tree(&rel, &dest).await?;
    if n == 0 {
        bail!("no files under {artifact_uri}");
    }
    tracing::info!(
        "downloaded {n} files of {} to {}",
        args.model_uri,
        dest.display()
    );
    Ok(dest)
}

pub fn run(args: ServeModelArgs) -> anyhow::Result<()> {
    if let RuntimeStatus::Unavailable { reason } =
        ferroflow_serving::init_runtime(args.onnxruntime_lib.as_deref())
    {
        bail!("ONNX Runtime is not loaded ({reason}); run scripts/onnxruntime.sh and pass --onnxruntime-lib <path> or ORT_DYLIB_PATH=<path>");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let system = actix_web::rt::System::with_tokio_rt(|| runtime);
    system.block_on(async move {
        let dir = fetch_model(&args).await?;
        let options = BatchOptions {
            max_batch_size: args.max_batch_size.max(1),
            max_delay_us: args.max_delay_us,
            workers: args.inference_workers.max(1),
        };
        let model = tokio::task::spawn_blocking(move || LoadedModel::load(&dir, options))
            .await?
            .map_err(|e| anyhow!(e.message))?;
        let name = args
            .model_uri
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("model")
            .to_string();
        let routes = ferroflow_serving::routes::scoring_app_config(model, &name);
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .on_connect(crate::set_nodelay)
            .keep_alive(crate::KEEP_ALIVE)
            .workers(
                args.workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            )
            .bind((args.host.as_str(), args.port))
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        tracing::info!(
            "serving {} on http://{}:{}",
            args.model_uri,
            args.host,
            args.port
        );
        server.run().await?;
        Ok(())
    })
}
