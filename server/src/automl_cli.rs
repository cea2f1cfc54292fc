//! `ferroflow automl classify|regress --data FILE --target COL --timeout 2m [--register NAME]`:
//! uploads the file, starts the sweep and follows it with a progress bar, then prints the
//! leaderboard. Against a server (`--tracking-uri` or `MLFLOW_TRACKING_URI`), or embedded: the
//! same server is started in-process on a loopback port over the local defaults, so both modes
//! take one path through the REST API.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::{json, Value};

use crate::cli_client::{call, with_server};

#[derive(Debug, Clone, Args)]
pub struct AutomlArgs {
    /// CSV or Parquet file with the training data.
    #[arg(long)]
    pub data: PathBuf,
    /// The column to predict.
    #[arg(long)]
    pub target: String,
    /// Time budget: `90s`, `2m`, `1h` or plain minutes.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// Register the best model under this name.
    #[arg(long)]
    pub register: Option<String>,
    /// Metric to optimize (classification: f1, accuracy, precision, recall, log_loss,
    /// roc_auc; regression: r2, rmse, mae, mse).
    #[arg(long)]
    pub primary_metric: Option<String>,
    #[arg(long)]
    pub max_trials: Option<u64>,
    /// Columns to leave out (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub exclude_cols: Vec<String>,
    /// Estimators to leave out (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub exclude_algorithms: Vec<String>,
    #[arg(long)]
    pub experiment_name: Option<String>,
    /// A column assigning rows to train / validate / test.
    #[arg(long)]
    pub split_col: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// A running ferroflow (or the embedded server when unset).
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// Embedded mode only: the backend store.
    #[arg(
        long,
        env = "FERROFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlruns.db"
    )]
    pub backend_store_uri: String,
    /// Embedded mode only: where artifacts go.
    #[arg(
        long,
        env = "FERROFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    pub artifacts_destination: String,
}

/// `90s`, `2m`, `1.5h`, `3` (minutes) → minutes.
pub fn parse_timeout(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "m"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("--timeout '{s}' is not a duration such as 90s, 2m or 1h"))?;
    let minutes = match unit {
        "s" | "sec" | "secs" => v / 60.0,
        "m" | "min" | "mins" => v,
        "h" | "hr" | "hours" => v * 60.0,
        other => bail!("--timeout unit '{other}' is not one of s, m, h"),
    };
    Ok(minutes)
}

pub fn run(problem: &str, args: AutomlArgs) -> anyhow::Result<()> {
    let (uri, store, dest) = (
        args.tracking_uri.clone(),
        args.backend_store_uri.clone(),
        args.artifacts_destination.clone(),
    );
    with_server(uri.as_deref(), &store, &dest, |base| async move {
        drive(&base, problem, &args).await
    })
}

async fn drive(base: &str, problem: &str, args: &AutomlArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let timeout_minutes = parse_timeout(&args.timeout)?;
    let bytes = std::fs::read(&args.data)
        .with_context(|| format!("cannot read --data {}", args.data.display()))?;
    let name = args
        .data
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset.csv")
        .to_string();
    let uploaded = call(
        client
            .post(format!("{base}/api/2.0/automl/datasets"))
            .query(&[("name", name.as_str())])
            .body(bytes),
    )
    .await?;
    let dataset = uploaded["dataset"].as_str().unwrap_or_default().to_string();
    let started = call(
        client
            .post(format!("{base}/api/2.0/automl/runs"))
            .json(&json!({
                "dataset": dataset,
                "target_col": args.target,
                "problem_type": problem,
                "primary_metric": args.primary_metric,
                "timeout_minutes": timeout_minutes,
                "max_trials": args.max_trials,
                "exclude_cols": args.exclude_cols,
                "exclude_algorithms": args.exclude_algorithms,
                "experiment_name": args.experiment_name,
                "register_model_name": args.register,
                "split_col": args.split_col,
                "seed": args.seed,
            })),
    )
    .await?;
    let id = started["automl_run"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "AutoML run {id}: experiment {}, summary run {}",
        started["automl_run"]["experiment_id"]
            .as_str()
            .unwrap_or_default(),
        started["automl_run"]["parent_run_id"]
            .as_str()
            .unwrap_or_default()
    );
    let t0 = Instant::now();
    let job = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = call(client.get(format!("{base}/api/2.0/automl/runs/{id}"))).await?;
        let run = job["automl_run"].clone();
        progress_bar(&run, t0.elapsed().as_secs_f64());
        if run["state"] != "RUNNING" {
            eprintln!();
            break run;
        }
    };
    print_summary(&job);
    match job["state"].as_str() {
        Some("SUCCEEDED") | Some("CANCELLED") => Ok(()),
        _ => bail!(
            "AutoML run {id} failed: {}",
            job["error"].as_str().unwrap_or("unknown error")
        ),
    }
}

fn progress_bar(run: &Value, elapsed: f64) {
    let p = &run["progress"];
    let budget = p["budget_seconds"].as_f64().unwrap_or(1.0).max(1.0);
    let fraction = (elapsed / budget).clamp(0.0, 1.0);
    let width = 30;
    let filled = (fraction * width as f64).round() as usize;
    let best = &p["best_trial"];
    let best = if best.is_null() {
        String::new()
    } else {
        format!(
            "  best {:.4} ({})",
            best["primary_metric"].as_f64().unwrap_or(f64::NAN),
            best["estimator"].as_str().unwrap_or("")
        )
    };
    eprint!(
        "\r[{}{}] {:>3.0}% {:>5.0}/{:.0}s  trials {:>4} ({} failed)  {}{}   ",
        "#".repeat(filled),
        "-".repeat(width - filled),
        fraction * 100.0,
        elapsed,
        budget,
        p["trials_completed"].as_u64().unwrap_or(0),
        p["trials_failed"].as_u64().unwrap_or(0),
        p["stage"].as_str().unwrap_or(""),
        best
    );
    let _ = std::io::stderr().flush();
}

fn print_summary(run: &Value) {
    let s = &run["summary"];
    if s.is_null() {
        return;
    }
    println!();
    for line in leaderboard_lines(s) {
        println!("{line}");
    }
    println!(
        "\ntrials: {} ({} failed); stopped: {}",
        s["trials"],
        s["trials_failed"],
        s["stop_reason"].as_str().unwrap_or("")
    );
    let best = &s["best_trial"];
    println!(
        "best exportable: {} [{}] ({})",
        best["estimator"].as_str().unwrap_or(""),
        best["library"].as_str().unwrap_or(""),
        best["params"].as_str().unwrap_or("")
    );
    if let Some(n) = s["best_overall_not_exportable"].as_object() {
        println!("note: {}", n["note"].as_str().unwrap_or(""));
    }
    if let Some(test) = s["test_metrics"].as_object() {
        let parts: Vec<String> = test
            .iter()
            .map(|(k, v)| format!("{k} {:.4}", v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        println!("test: {}", parts.join(", "));
    }
    println!("model: {}", s["model"]["model_uri"].as_str().unwrap_or(""));
    if let Some(r) = s["registered_model"].as_object() {
        println!(
            "registered: models:/{}/{}",
            r["name"].as_str().unwrap_or(""),
            r["version"].as_str().unwrap_or("")
        );
    }
}

/// The leaderboard as a table: a header, then one line per trial. Values are formatted as
/// plain numbers and strings first (JSON values ignore width and alignment).
fn leaderboard_lines(s: &Value) -> Vec<String> {
    let metric = s["primary_metric"].as_str().unwrap_or("score");
    let mut lines = vec![format!(
        "{:>4}  {:<20} {:>12}  {:<10} params",
        "rank",
        "estimator",
        format!("val_{metric}"),
        "exportable"
    )];
    for row in s["leaderboard_top"].as_array().into_iter().flatten() {
        let rank = row["rank"]
            .as_u64()
            .map_or(String::new(), |r| r.to_string());
        let exportable = row["exportable"]
            .as_bool()
            .map_or(String::new(), |e| e.to_string());
        lines.push(format!(
            "{:>4}  {:<20} {:>12.5}  {:<10} {}",
            rank,
            row["estimator"].as_str().unwrap_or(""),
            row["validation"][metric].as_f64().unwrap_or(f64::NAN),
            exportable,
            row["params"].as_str().unwrap_or("")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaderboard_columns_line_up_with_the_header() {
        let summary = serde_json::json!({
            "primary_metric": "f1",
            "leaderboard_top": [
                {"rank": 1, "estimator": "random_forest", "validation": {"f1": 0.97},
                 "exportable": true, "params": "n_trees=50"},
                {"rank": 12, "estimator": "knn", "validation": {"f1": 0.9},
                 "exportable": false, "params": "k=5"},
            ],
        });
        let lines = leaderboard_lines(&summary);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        // Right-aligned rank: every line's rank column ends where "rank" ends.
        let rank_end = lines[0].find("rank").unwrap() + "rank".len();
        assert_eq!(&lines[1][..rank_end], "   1", "{lines:#?}");
        assert_eq!(&lines[2][..rank_end], "  12", "{lines:#?}");
        // Left-aligned exportable and params: they start where their headers start.
        let exportable_at = lines[0].find("exportable").unwrap();
        let params_at = lines[0].find("params").unwrap();
        assert_eq!(
            &lines[1][exportable_at..params_at],
            "true       ",
            "{lines:#?}"
        );
        assert_eq!(
            &lines[2][exportable_at..params_at],
            "false      ",
            "{lines:#?}"
        );
        assert_eq!(&lines[1][params_at..], "n_trees=50");
        let metric_end = lines[0].find("val_f1").unwrap() + "val_f1".len();
        assert!(lines[1][..metric_end].ends_with("0.97000"), "{lines:#?}");
    }

    #[test]
    fn timeouts_parse_to_minutes() {
        assert_eq!(parse_timeout("90s").unwrap(), 1.5);
        assert_eq!(parse_timeout("2m").unwrap(), 2.0);
        assert_eq!(parse_timeout("1h").unwrap(), 60.0);
        assert_eq!(parse_timeout("3").unwrap(), 3.0);
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("5d").is_err());
    }
}
