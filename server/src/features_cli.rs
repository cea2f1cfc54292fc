//! `ferroflow features …`: feature tables from the command line, through the REST API of a
//! server (`--tracking-uri` / `MLFLOW_TRACKING_URI`) or of an embedded one over the local
//! defaults.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli_client::{call, with_server};

const API: &str = "/api/2.0/feature-store";

#[derive(Debug, Clone, Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub command: FeaturesCommand,
    /// A running ferroflow (or the embedded server when unset).
    #[arg(long, global = true, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// Embedded mode only: the backend store.
    #[arg(
        long,
        global = true,
        env = "FERROFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlruns.db"
    )]
    pub backend_store_uri: String,
    /// Embedded mode only: where artifacts (and feature tables) go.
    #[arg(
        long,
        global = true,
        env = "FERROFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    pub artifacts_destination: String,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FeaturesCommand {
    /// Create a feature table from a schema (`--schema id:long,x:double`) or a data file.
    Create {
        name: String,
        /// Primary key columns (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        primary_keys: Vec<String>,
        #[arg(long)]
        timestamp_key: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// `col:type,…` with Delta types (string, long, integer, double, float, boolean,
        /// date, timestamp, binary).
        #[arg(long)]
        schema: Option<String>,
        /// Parquet, Arrow IPC (.arrow) or JSON records (.json) to create the table from.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Delta location instead of `<artifacts>/features/<name>`.
        #[arg(long)]
        location: Option<String>,
    },
    /// List feature tables (optionally filtered: `name LIKE 'user%'`).
    List {
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show a table: schema, keys, location, Delta version, online state, lineage.
    Describe { name: String },
    /// Delete a table (its files too, unless it has its own location).
    Delete { name: String },
    /// Write rows from a file: merge (upsert by key) or overwrite.
    Write {
        name: String,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "merge")]
        mode: String,
    },
    /// Read rows (latest, or as of a version or time) to stdout (JSON) or a file.
    Read {
        name: String,
        #[arg(long)]
        version: Option<i64>,
        /// RFC 3339 time or epoch milliseconds.
        #[arg(long)]
        timestamp: Option<String>,
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Write here instead (format from the extension: .parquet, .arrow, .json).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Delta versions with their operations.
    History {
        name: String,
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Compact small files.
    Optimize { name: String },
    /// Delete files no longer referenced within the retention period.
    Vacuum {
        name: String,
        #[arg(long)]
        retention_hours: Option<i64>,
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention below the table's (168 hours by default).
        #[arg(long)]
        no_enforce_retention: bool,
    },
    /// Copy the latest rows per key into the online store.
    Publish {
        name: String,
        #[arg(long)]
        incremental: bool,
    },
    /// Build a point-in-time training set from a JSON spec (the REST request body).
    TrainingSet { spec: PathBuf },
}

fn file_format(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "arrow" | "ipc" | "feather" => "application/vnd.apache.arrow.stream",
        "json" => "application/json",
        _ => "application/vnd.apache.parquet",
    }
}

fn parse_schema(spec: &str) -> anyhow::Result<Value> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|col| {
            let (name, t) = col
                .split_once(':')
                .ok_or_else(|| anyhow!("--schema entry '{col}' is not name:type"))?;
            Ok(json!({"name": name.trim(), "type": t.trim()}))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Value::Array)
}

pub fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    let (uri, store, dest) = (
        args.tracking_uri.clone(),
        args.backend_store_uri.clone(),
        args.artifacts_destination.clone(),
    );
    with_server(uri.as_deref(), &store, &dest, |base| async move {
        drive(&base, args.command).await
    })
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn drive(base: &str, command: FeaturesCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{base}{API}{path}");
    match command {
        FeaturesCommand::Create {
            name,
            primary_keys,
            timestamp_key,
            description,
            schema,
            data,
            location,
        } => {
            let mut body = json!({"name": name, "primary_keys": primary_keys});
            if let Some(t) = timestamp_key {
                body["timestamp_key"] = json!(t);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(l) = location {
                body["location"] = json!(l);
            }
            if let Some(s) = schema {
                body["schema"] = parse_schema(&s)?;
            }
            let answer = match data {
                None => call(client.post(url("/feature-tables/create")).json(&body)).await?,
                Some(path) => {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let ct = file_format(&path);
                    if ct == "application/json" {
                        body["records"] = serde_json::from_slice(&bytes)
                            .context("--data .json must hold a list of records")?;
                        call(client.post(url("/feature-tables/create")).json(&body)).await?
                    } else {
                        let mut query = vec![
                            (
                                "name".to_string(),
                                body["name"].as_str().unwrap_or("").to_string(),
                            ),
                            ("primary_keys".to_string(), primary_keys_text(&body)),
                        ];
                        for k in ["timestamp_key", "description", "location"] {
                            if let Some(v) = body[k].as_str() {
                                query.push((k.to_string(), v.to_string()));
                            }
                        }
                        call(
                            client
                                .post(url("/feature-tables/create"))
                                .query(&query)
                                .header("content-type", ct)
                                .body(bytes),
                        )
                        .await?
                    }
                }
            };
            print(&answer);
        }
        FeaturesCommand::List { filter } => {
            let mut token: Option<String> = None;
            loop {
                let mut q = vec![("max_results", "1000".to_string())];
                if let Some(f) = &filter {
                    q.push(("filter_string", f.clone()));
                }
                if let Some(t) = &token {
                    q.push(("page_token", t.clone()));
                }
                let page = call(client.get(url("/feature-tables/search")).query(&q)).await?;
                for t in page["feature_tables"].as_array().into_iter().flatten() {
                    println!(
                        "{}\tkeys={}\t{}",
                        t["name"].as_str().unwrap_or(""),
                        t["primary_keys"],
                        t["location"].as_str().unwrap_or("")
                    );
                }
                match page["next_page_token"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
        }
        FeaturesCommand::Describe { name } => print(
            &call(
                client
                    .get(url("/feature-tables/get"))
                    .query(&[("name", name)]),
            )
            .await?,
        ),
        FeaturesCommand::Delete { name } => {
            call(
                client
                    .delete(url("/feature-tables/delete"))
                    .json(&json!({"name": name})),
            )
            .await?;
            eprintln!("deleted {name}");
        }
        FeaturesCommand::Write { name, data, mode } => {
            let bytes =
                std::fs::read(&data).with_context(|| format!("cannot read {}", data.display()))?;
            let ct = file_format(&data);
            let answer = if ct == "application/json" {
                let records: Value = serde_json::from_slice(&bytes)
                    .context("--data .json must hold a list of records")?;
                call(
                    client
                        .post(url("/feature-tables/write"))
                        .json(&json!({"name": name, "mode": mode, "records": records})),
                )
                .await?
            } else {
                call(
                    client
                        .post(url("/feature-tables/write"))
                        .query(&[("name", name), ("mode", mode)])
                        .header("content-type", ct)
                        .body(bytes),
                )
                .await?
            };
            print(&answer);
        }
        FeaturesCommand::Read {
            name,
            version,
            timestamp,
            columns,
            output,
        } => {
            let format = match output.as_deref().map(file_format) {
                Some("application/vnd.apache.arrow.stream") => "arrow",
                Some("application/vnd.apache.parquet") => "parquet",
                _ => "json",
            };
            let mut body = json!({"name": name, "format": format});
            if let Some(v) = version {
                body["as_of_version"] = json!(v);
            }
            if let Some(t) = timestamp {
                body["as_of_timestamp"] = json!(t);
            }
            if !columns.is_empty() {
                body["columns"] = json!(columns);
            }
            let res = client
                .post(url("/feature-tables/read"))
                .json(&body)
                .send()
                .await
                .context("cannot reach the ferroflow server")?;
            let status = res.status();
            let bytes = res.bytes().await?;
            if !status.is_success() {
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                bail!(
                    "{} {}: {}",
                    status.as_u16(),
                    v["error_code"].as_str().unwrap_or(""),
                    v["message"].as_str().unwrap_or("")
                );
            }
            match output {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
                }
                None => println!("{}", String::from_utf8_lossy(&bytes)),
            }
        }
        FeaturesCommand::History { name, limit } => {
            let mut q = vec![("name", name)];
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            let h = call(client.get(url("/feature-tables/history")).query(&q)).await?;
            for c in h["history"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}",
                    c["version"],
                    c["timestamp"]
                        .as_i64()
                        .and_then(chrono_ms)
                        .unwrap_or_default(),
                    c["operation"].as_str().unwrap_or("")
                );
            }
        }
        FeaturesCommand::Optimize { name } => print(
            &call(
                client
                    .post(url("/feature-tables/optimize"))
                    .json(&json!({"name": name})),
            )
            .await?,
        ),
        FeaturesCommand::Vacuum {
            name,
            retention_hours,
            dry_run,
            no_enforce_retention,
        } => {
            let mut body = json!({"name": name, "dry_run": dry_run,
                                  "enforce_retention_duration": !no_enforce_retention});
            if let Some(h) = retention_hours {
                body["retention_hours"] = json!(h);
            }
            print(&call(client.post(url("/feature-tables/vacuum")).json(&body)).await?);
        }
        FeaturesCommand::Publish { name, incremental } => {
            let mode = if incremental { "incremental" } else { "full" };
            print(
                &call(
                    client
                        .post(url("/online/publish"))
                        .json(&json!({"name": name, "mode": mode})),
                )
                .await?,
            );
        }
        FeaturesCommand::TrainingSet { spec } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("cannot read {}", spec.display()))?;
            let body: Value = serde_json::from_str(&text).context("the spec is not JSON")?;
            print(&call(client.post(url("/training-sets/create")).json(&body)).await?);
        }
    }
    Ok(())
}

fn primary_keys_text(body: &Value) -> String {
    body["primary_keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Epoch milliseconds as RFC 3339 (UTC).
fn chrono_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
