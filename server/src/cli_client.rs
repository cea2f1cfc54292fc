//! What the client commands (`automl`, `features`) share: a server to talk to — the one at
//! `--tracking-uri`, or the same server started in-process over the local defaults — and
//! calls that turn MLflow error bodies into messages.

use std::future::Future;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::{Application, ServerConfig};

/// Runs `drive(base_url)` against the server at `tracking_uri`, or an embedded one on a
/// loopback port over `store` and `artifacts`.
pub fn with_server<F, Fut>(
    tracking_uri: Option<&str>,
    store: &str,
    artifacts: &str,
    drive: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let system = actix_web::rt::System::with_tokio_rt(|| runtime);
    system.block_on(async move {
        let (base, _server) = match tracking_uri {
            Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => {
                (uri.trim_end_matches('/').to_string(), None)
            }
            _ => {
                let mut config = ServerConfig::for_store(store, artifacts);
                config.serving_poll_ms = 1000;
                let app = Application::build(&config).await?;
                let base = format!("http://127.0.0.1:{}", app.port());
                eprintln!("embedded ferroflow (store {store}, artifacts {artifacts})");
                let handle = actix_web::rt::spawn(app.run_until_stopped());
                (base, Some(handle))
            }
        };
        drive(base).await
    })
}

/// Sends a request; a non-2xx answer becomes an error with MLflow's code and message.
pub async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let res = req
        .send()
        .await
        .context("cannot reach the ferroflow server")?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{} {}: {}",
            status.as_u16(),
            body["error_code"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}
