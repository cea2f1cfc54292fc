//! AutoML runs as jobs: `start` checks the request and the dataset before anything is written
//! (bad input is a 400 and leaves nothing behind), creates the experiment and the parent run,
//! and hands the sweep to its own thread; the job logs one child run per trial, exports and
//! logs the best exportable pipeline, registers it, and keeps its record in `automl_runs` up to
//! date so `get` shows progress while it runs and the result after.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferroflow_core::{now_millis, Db, Error, ErrorCode, Result};
use ferroflow_registry::service::{validate_model_name, CreateModelVersion};
use ferroflow_registry::RegistryService;
use ferroflow_tracking::artifacts::ArtifactService;
use ferroflow_tracking::logged_models::CreateLoggedModel;
use ferroflow_tracking::model::{KeyValue, NewMetric};
use ferroflow_tracking::service::CreateRun;
use ferroflow_tracking::TrackingService;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::data::{self, Format};
use crate::estimators::{Algorithm, Problem, SVM_MAX_ROWS};
use crate::metrics::Metric;
use crate::prep::{self, Prepared, Settings};
use crate::report;
use crate::search::{self, Observer, StopReason, SweepConfig, TrialResult};
use crate::store::{self, StoredJob};

/// A running job rewrites its record at least this often.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A RUNNING record not rewritten for this long belongs to a server that stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How long shutdown waits for running jobs to end (one exporting its model finishes its
/// writes); past it the store closes anyway and their writes fail.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// Datasets larger than this are refused (they are read into memory).
pub const MAX_DATASET_BYTES: u64 = ferroflow_core::http::MAX_DATA_BODY as u64;

/// `POST /api/2.0/automl/runs`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct StartRequest {
    /// `mlflow-artifacts:/…`, `runs:/<run_id>/<path>` or a path under the artifacts
    /// destination (as returned by the dataset upload).
    pub dataset: String,
    pub target_col: String,
    pub problem_type: String,
    pub primary_metric: Option<String>,
    pub timeout_minutes: Option<f64>,
    pub max_trials: Option<u64>,
    pub exclude_cols: Vec<String>,
    pub exclude_algorithms: Vec<String>,
    pub experiment_name: Option<String>,
    pub register_model_name: Option<String>,
    pub seed: Option<u64>,
    /// A column with `train` / `validate` / `test` per row (as Databricks AutoML's `split_col`).
    pub split_col: Option<String>,
}

/// The job's progress and result, as `GET /api/2.0/automl/runs/{id}` shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub trials_completed: usize,
    pub trials_failed: usize,
    pub elapsed_seconds: f64,
    pub budget_seconds: f64,
    pub best_trial: Option<Value>,
    pub trials: Vec<Value>,
    pub stage: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub state: String,
    pub experiment_id: String,
    pub parent_run_id: String,
    pub request: Value,
    pub progress: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

impl From<StoredJob> for JobView {
    fn from(mut j: StoredJob) -> JobView {
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        // A RUNNING record without a heartbeat belongs to a server that stopped.
        if j.state == "RUNNING"
            && now_millis() - j.last_updated_timestamp > STALE_AFTER.as_millis() as i64
        {
            j.state = "FAILED".into();
            j.error = Some("The server running this AutoML run stopped (no heartbeat)".into());
        }
        JobView {
            id: j.id,
            state: j.state,
            experiment_id: j.experiment_id,
            parent_run_id: j.parent_run_id,
            request: parse(&j.request),
            progress: parse(&j.progress),
            summary: j.summary.as_deref().map(parse),
            error: j.error,
            creation_timestamp: j.creation_timestamp,
            last_updated_timestamp: j.last_updated_timestamp,
        }
    }
}

/// A checked request.
struct Plan {
    problem: Problem,
    metric: Metric,
    budget: Duration,
    max_trials: usize,
    algorithms: Vec<Algorithm>,
    seed: u64,
}

#[derive(Clone)]
pub struct AutomlService {
    db: Db,
    tracking: TrackingService,
    registry: RegistryService,
    artifacts: ArtifactService,
    cancels: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
    workers: usize,
    /// Set by [`AutomlService::shutdown`]: jobs write nothing more to the store.
    stopping: Arc<std::sync::RwLock<bool>>,
}

impl AutomlService {
    pub fn new(
        db: Db,
        tracking: TrackingService,
        registry: RegistryService,
        artifacts: ArtifactService,
    ) -> AutomlService {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        AutomlService {
            db,
            tracking,
            registry,
            artifacts,
            cancels: Arc::default(),
            workers,
            stopping: Arc::default(),
        }
    }

    /// Marks jobs whose server stopped (no heartbeat for `STALE_AFTER`) as failed; jobs of
    /// other live replicas sharing the store keep running.
    pub async fn init(&self) -> Result<()> {
        let now = now_millis();
        let n =
            store::fail_interrupted(&self.db, now, now - STALE_AFTER.as_millis() as i64).await?;
        if n > 0 {
            tracing::warn!("{n} AutoML run(s) were interrupted by a restart and marked FAILED");
        }
        Ok(())
    }

    /// Stores an uploaded dataset under `automl/datasets/<uuid>/<name>`; returns its URI.
    pub async fn upload_dataset(&self, name: &str, bytes: Bytes) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(Error::invalid(
                "name must be a plain file name such as train.csv or train.parquet",
            ));
        }
        if bytes.is_empty() {
            return Err(Error::invalid("The dataset is empty"));
        }
        let dir = format!(
            "mlflow-artifacts:/automl/datasets/{}",
            uuid::Uuid::new_v4().simple()
        );
        self.artifacts.write_under(&dir, name, bytes).await?;
        Ok(format!("{dir}/{name}"))
    }

    fn check(req: &StartRequest) -> Result<Plan> {
        if req.dataset.trim().is_empty() {
            return Err(ferroflow_core::http::missing_value("dataset"));
        }
        if req.target_col.trim().is_empty() {
            return Err(ferroflow_core::http::missing_value("target_col"));
        }
        let problem = match req.problem_type.trim().to_ascii_lowercase().as_str() {
            "classification" | "classify" => Problem::Classification,
            "regression" | "regress" => Problem::Regression,
            "" => return Err(ferroflow_core::http::missing_value("problem_type")),
            other => {
                return Err(Error::invalid(format!(
                    "problem_type must be 'classification' or 'regression', got '{other}'"
                )))
            }
        };
        let metric = match &req.primary_metric {
            None => Metric::default_for(problem),
            Some(m) => Metric::parse(problem, m).ok_or_else(|| {
                let names: Vec<&str> = Metric::for_problem(problem)
                    .iter()
                    .map(|m| m.name())
                    .collect();
                Error::invalid(format!(
                    "primary_metric '{m}' is not one of {} for {:?}",
                    names.join(", "),
                    problem
                ))
            })?,
        };
        let minutes = req.timeout_minutes.unwrap_or(5.0);
        if !minutes.is_finite() || minutes <= 0.0 {
            return Err(Error::invalid(format!(
                "timeout_minutes must be a positive number of minutes, got {minutes}"
            )));
        }
        if minutes > 24.0 * 60.0 {
            return Err(Error::invalid(
                "timeout_minutes must be at most 1440 (one day)",
            ));
        }
        let max_trials = match req.max_trials {
            Some(0) => return Err(Error::invalid("max_trials must be at least 1")),
            Some(n) => n as usize,
            None => 100_000,
        };
        let mut excluded = Vec::new();
        for name in &req.exclude_algorithms {
            let a = Algorithm::parse(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = Algorithm::all(problem).iter().map(|a| a.name()).collect();
                Error::invalid(format!(
                    "exclude_algorithms names '{name}', which is not one of {}",
                    names.join(", ")
                ))
            })?;
            excluded.push(a);
        }
        let algorithms: Vec<Algorithm> = Algorithm::all(problem)
            .iter()
            .copied()
            .filter(|a| !excluded.contains(a))
            .collect();
        if !algorithms.iter().any(|a| a.exportable()) {
            return Err(Error::invalid(
                "exclude_algorithms leaves no estimator that can be exported to ONNX",
            ));
        }
        if let Some(name) = &req.register_model_name {
            validate_model_name(name, "register_model_name")?;
        }
        Ok(Plan {
            problem,
            metric,
            budget: Duration::from_secs_f64(minutes * 60.0),
            max_trials,
            algorithms,
            seed: req.seed.unwrap_or(42),
        })
    }

    async fn read_dataset(&self, uri: &str) -> Result<Bytes> {
        let uri = uri.trim();
        let resolved = self.artifacts.resolve_runs_uri(uri).await?;
        self.artifacts
            .read_all(&resolved, MAX_DATASET_BYTES)
            .await
            .map_err(|e| match e.code {
                ErrorCode::ResourceDoesNotExist => Error::not_found(format!(
                    "dataset '{uri}' does not exist in the artifact store"
                )),
                _ => e,
            })
    }

    /// Stops the running jobs' store writes (waiting for one in progress) and their trials,
    /// before the server closes the store, then waits (at most `SHUTDOWN_WAIT`) for the jobs to
    /// end: a job already exporting its best model finishes those writes while the store is
    /// open. Their records stay RUNNING without a heartbeat, so they read as FAILED after
    /// `STALE_AFTER`, as after a crash.
    pub async fn shutdown(&self) {
        let stopping = self.stopping.clone();
        let _ = tokio::task::spawn_blocking(move || {
            *stopping.write().unwrap_or_else(|e| e.into_inner()) = true;
        })
        .await;
        for flag in self
            .cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            flag.store(true, Ordering::Relaxed);
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while Instant::now() < deadline
            && !self
                .cancels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks the request and the data, creates the runs and starts the job.
    pub async fn start(&self, req: StartRequest) -> Result<JobView> {
        let plan = Self::check(&req)?;
        let bytes = self.read_dataset(&req.dataset).await?;
        let format = Format::from_path(&req.dataset);
        let target = req.target_col.clone();
        let exclude = req.exclude_cols.clone();
        let split_col = req.split_col.clone();
        let (problem, seed) = (plan.problem, plan.seed);
        let prepared = tokio::task::spawn_blocking(move || {
            let frame = data::read(&bytes, format)?;
            prep::prepare(
                &frame,
                &Settings {
                    target: &target,
                    problem,
                    exclude_cols: &exclude,
                    split_col: split_col.as_deref(),
                    seed,
                },
            )
        })
        .await
        .map_err(|e| Error::internal(format!("data preparation failed: {e}")))??;
        // SVM (linfa-svm) is binary and quadratic in rows: searched only where it fits.
        let mut plan = plan;
        if prepared.n_classes() != 2 || prepared.splits.train.len() > SVM_MAX_ROWS {
            plan.algorithms.retain(|a| *a != Algorithm::Svm);
        }

        let experiment_name = req
            .experiment_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("automl-{}", req.target_col));
        let experiment_id = match self.tracking.get_experiment_by_name(&experiment_name).await {
            Ok(e) => e.experiment_id,
            Err(e) if e.code == ErrorCode::ResourceDoesNotExist => {
                self.tracking
                    .create_experiment(&experiment_name, None, &[])
                    .await?
            }
            Err(e) => return Err(e),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let parent = self
            .tracking
            .create_run(CreateRun {
                experiment_id: Some(experiment_id.clone()),
                user_id: Some("ferroflow-automl".into()),
                start_time: Some(now_millis()),
                run_name: Some(format!("automl-{}", &id[..8])),
                tags: vec![
                    kv("ferroflow.automl.run_id", &id),
                    kv("ferroflow.automl.role", "summary"),
                    kv("mlflow.source.name", "ferroflow automl"),
                ],
            })
            .await?;
        let parent_run_id = parent.info.run_id.clone();
        let now = now_millis();
        let progress = Progress {
            budget_seconds: plan.budget.as_secs_f64(),
            stage: "starting".into(),
            ..Default::default()
        };
        let job = StoredJob {
            id: id.clone(),
            state: "RUNNING".into(),
            request: serde_json::to_string(&req).unwrap_or_default(),
            experiment_id: experiment_id.clone(),
            parent_run_id: parent_run_id.clone(),
            progress: serde_json::to_string(&progress).unwrap_or_default(),
            summary: None,
            error: None,
            creation_timestamp: now,
            last_updated_timestamp: now,
        };
        store::insert(&self.db, &job).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), cancel.clone());
        let runner = JobRunner {
            service: self.clone(),
            id: id.clone(),
            experiment_id,
            parent_run_id,
            request: req,
            plan,
            prepared: Arc::new(prepared),
            cancel,
            handle: tokio::runtime::Handle::current(),
            progress: Mutex::new(progress),
            last_write: Mutex::new(Instant::now()),
        };
        std::thread::Builder::new()
            .name(format!("automl-{}", &id[..8]))
            .spawn(move || runner.run())
            .map_err(|e| Error::internal(format!("cannot start the AutoML job: {e}")))?;
        Ok(job.into())
    }

    pub async fn get(&self, id: &str) -> Result<JobView> {
        store::get(&self.db, id)
            .await?
            .map(JobView::from)
            .ok_or_else(|| Error::not_found(format!("AutoML run '{id}' does not exist")))
    }

    pub async fn list(&self, limit: i64) -> Result<Vec<JobView>> {
        Ok(store::list(&self.db, limit.clamp(1, 1000))
            .await?
            .into_iter()
            .map(JobView::from)
            .collect())
    }

    /// Asks a running job to stop; it finishes its current trials and still exports and
    /// registers the best model found so far.
    pub async fn cancel(&self, id: &str) -> Result<JobView> {
        let job = self.get(id).await?;
        if job.state != "RUNNING" {
            // BAD_REQUEST (400): MLflow answers INVALID_STATE with a 500, which would read
            // as a server fault here.
            return Err(Error::new(
                ErrorCode::BadRequest,
                format!(
                    "AutoML run '{id}' is {}; only a RUNNING run can be cancelled",
                    job.state
                ),
            ));
        }
        match self
            .cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            Some(flag) => flag.store(true, Ordering::Relaxed),
            None => {
                return Err(Error::new(
                    ErrorCode::BadRequest,
                    format!("AutoML run '{id}' is running in another server process"),
                ))
            }
        }
        self.get(id).await
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// One job on its own thread; talks to the services through the server's runtime.
struct JobRunner {
    service: AutomlService,
    id: String,
    experiment_id: String,
    parent_run_id: String,
    request: StartRequest,
    plan: Plan,
    prepared: Arc<Prepared>,
    cancel: Arc<AtomicBool>,
    handle: tokio::runtime::Handle,
    progress: Mutex<Progress>,
    last_write: Mutex<Instant>,
}

impl JobRunner {
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    /// Runs `write` unless the server is stopping (None then); shutdown waits for a write
    /// in progress.
    fn unless_stopping<T>(&self, write: impl FnOnce() -> T) -> Option<T> {
        let stopping = self
            .service
            .stopping
            .read()
            .unwrap_or_else(|e| e.into_inner());
        (!*stopping).then(write)
    }

    fn stopping(&self) -> bool {
        *self
            .service
            .stopping
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn run(self) {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sweep(started)))
            .unwrap_or_else(|_| Err(Error::internal("the AutoML job panicked")));
        let (state, summary, error) = match result {
            Ok(summary) if self.cancel.load(Ordering::Relaxed) => {
                ("CANCELLED", Some(summary), None)
            }
            Ok(summary) => ("SUCCEEDED", Some(summary), None),
            // Cancelled before any model could be kept: still the user's cancel, not a failure.
            Err(e) if self.cancel.load(Ordering::Relaxed) => (
                "CANCELLED",
                None,
                Some(format!("cancelled before a model was kept: {}", e.message)),
            ),
            Err(e) => ("FAILED", None, Some(e.message)),
        };
        {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            p.elapsed_seconds = started.elapsed().as_secs_f64();
            p.stage = "done".into();
        }
        let status = match (state, &summary) {
            ("FAILED", _) => "FAILED",
            ("CANCELLED", None) => "KILLED",
            _ => "FINISHED",
        };
        let _ = self.unless_stopping(|| {
            self.block(self.service.tracking.update_run(
                &self.parent_run_id,
                Some(status),
                Some(now_millis()),
                None,
            ))
        });
        self.write(state, summary.as_ref(), error.as_deref());
        self.service
            .cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }

    fn write(&self, state: &str, summary: Option<&Value>, error: Option<&str>) {
        let progress = {
            let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            serde_json::to_string(&*p).unwrap_or_default()
        };
        let summary = summary.map(Value::to_string);
        let written = self.unless_stopping(|| {
            self.block(store::update(
                &self.service.db,
                &self.id,
                state,
                &progress,
                summary.as_deref(),
                error,
                now_millis(),
            ))
        });
        if let Some(Err(e)) = written {
            tracing::warn!(
                "AutoML run {}: cannot record progress: {}",
                self.id,
                e.message
            );
        }
    }

    fn stage(&self, stage: &str) {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stage = stage.into();
        self.write("RUNNING", None, None);
    }

    fn sweep(&self, started: Instant) -> Result<Value> {
        let p = &self.prepared;
        let parent = &self.parent_run_id;
        // Sweep deadline: the budget less a reserve for refitting, explaining and logging.
        let reserve = (self.plan.budget.as_secs_f64() * 0.05).clamp(1.0, 15.0);
        let deadline = started
            + self
                .plan
                .budget
                .saturating_sub(Duration::from_secs_f64(reserve));
        let mut params = vec![
            kv("target_col", &self.request.target_col),
            kv(
                "problem_type",
                &format!("{:?}", self.plan.problem).to_lowercase(),
            ),
            kv("primary_metric", self.plan.metric.name()),
            kv(
                "timeout_minutes",
                &format!("{}", self.plan.budget.as_secs_f64() / 60.0),
            ),
            kv("dataset", &self.request.dataset),
            kv("n_rows", &p.y.len().to_string()),
            kv("n_features", &p.x.ncols().to_string()),
            kv("split", &p.splits.method),
            kv("seed", &self.plan.seed.to_string()),
            kv(
                "algorithms",
                &self
                    .plan
                    .algorithms
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        if let Some(b) = &p.splits.balancing {
            params.push(kv("class_balancing", b));
        }
        self.block(
            self.service
                .tracking
                .log_batch(parent, vec![], params, vec![]),
        )?;
        self.block(
            self.service.artifacts_json(
                &self
                    .block(self.service.tracking.get_run(parent))?
                    .info
                    .artifact_uri,
                "data_preparation.json",
                &json!({
                    "columns": p.columns,
                    "features": p.feature_names,
                    "dropped_rows_missing_target": p.dropped_rows,
                    "split": p.splits.method,
                    "rows": {"train": p.splits.train.len(), "validation": p.splits.validation.len(),
                              "test": p.splits.test.len()},
                    "class_balancing": p.splits.balancing,
                }),
            ),
        )?;
        self.stage("searching");
        let cfg = Arc::new(SweepConfig {
            problem: self.plan.problem,
            metric: self.plan.metric,
            algorithms: self.plan.algorithms.clone(),
            deadline,
            max_trials: self.plan.max_trials,
            seed: self.plan.seed,
            workers: self.service.workers,
        });
        let (trials, stop) = search::run(&self.prepared, &cfg, self, &self.cancel);
        if self.stopping() {
            return Err(Error::new(
                ErrorCode::TemporarilyUnavailable,
                "the server stopped during the sweep",
            ));
        }
        self.stage("exporting the best model");
        let report = self.with_heartbeat(|| {
            report::finish(
                &report::Context {
                    tracking: &self.service.tracking,
                    registry: &self.service.registry,
                    artifacts: &self.service.artifacts,
                    handle: &self.handle,
                    experiment_id: &self.experiment_id,
                    parent_run_id: parent,
                    register_model_name: self.request.register_model_name.as_deref(),
                    metric: self.plan.metric,
                    problem: self.plan.problem,
                    seed: self.plan.seed,
                    child_runs: &self.child_runs(),
                },
                p,
                &trials,
            )
        })?;
        let mut summary = report;
        summary["stop_reason"] = json!(stop.as_str());
        summary["elapsed_seconds"] = json!(started.elapsed().as_secs_f64());
        summary["budget_seconds"] = json!(self.plan.budget.as_secs_f64());
        if stop == StopReason::Cancelled {
            summary["cancelled"] = json!(true);
        }
        self.block(
            self.service.artifacts_json(
                &self
                    .block(self.service.tracking.get_run(parent))?
                    .info
                    .artifact_uri,
                "summary.json",
                &summary,
            ),
        )?;
        Ok(summary)
    }

    /// Runs `work` while a second thread keeps the heartbeat going: exporting, explaining and
    /// logging a large model can outlast `STALE_AFTER`, and a job must not look dead then.
    fn with_heartbeat<T>(&self, work: impl FnOnce() -> T) -> T {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(1))
                {
                    self.tick();
                }
            });
            let out = work();
            drop(stop);
            out
        })
    }

    fn child_runs(&self) -> HashMap<usize, String> {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.trials
            .iter()
            .filter_map(|t| {
                Some((
                    t.get("trial")?.as_u64()? as usize,
                    t.get("run_id")?.as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// One child run per trial: params = estimator and hyperparameters; metrics = validation
    /// and train scores and the duration.
    fn log_trial(&self, t: &TrialResult) -> Result<String> {
        let tracking = &self.service.tracking;
        let start = now_millis() - t.duration.as_millis() as i64;
        let run = self.block(tracking.create_run(CreateRun {
            experiment_id: Some(self.experiment_id.clone()),
            user_id: Some("ferroflow-automl".into()),
            start_time: Some(start),
            run_name: Some(format!("{}-{}", t.algorithm, t.number)),
            tags: vec![
                kv("mlflow.parentRunId", &self.parent_run_id),
                kv("ferroflow.automl.run_id", &self.id),
                kv("ferroflow.automl.role", "trial"),
                kv("ferroflow.automl.algorithm", t.algorithm.name()),
                kv(
                    "ferroflow.automl.library",
                    t.algorithm.library(self.plan.problem),
                ),
                kv(
                    "ferroflow.automl.exportable",
                    &t.algorithm.exportable().to_string(),
                ),
            ],
        }))?;
        let run_id = run.info.run_id;
        let mut params = vec![kv("estimator", t.algorithm.name())];
        params.extend(t.params.0.iter().map(|(n, v)| kv(n, &v.to_string())));
        let now = now_millis();
        let metric = |key: String, value: f64| NewMetric {
            key,
            value,
            timestamp: now,
            step: 0,
            model: None,
        };
        let mut metrics = vec![metric("duration_seconds".into(), t.duration.as_secs_f64())];
        for (m, v) in &t.validation {
            metrics.push(metric(format!("val_{}", m.name()), *v));
        }
        for (m, v) in &t.train {
            metrics.push(metric(format!("train_{}", m.name()), *v));
        }
        let mut tags = vec![];
        if let Some(e) = &t.error {
            tags.push(kv(
                "ferroflow.automl.error",
                &e.chars().take(4000).collect::<String>(),
            ));
        }
        self.block(tracking.log_batch(&run_id, metrics, params, tags))?;
        let status = if t.error.is_some() {
            "FAILED"
        } else {
            "FINISHED"
        };
        self.block(tracking.update_run(&run_id, Some(status), Some(now), None))?;
        Ok(run_id)
    }
}

impl Observer for JobRunner {
    /// Rewrites the record every few seconds even while a long trial runs, so other
    /// processes sharing the store can tell a live job from one whose server died.
    fn tick(&self) {
        let due = {
            let mut last = self.last_write.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.elapsed() >= HEARTBEAT;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.write("RUNNING", None, None);
        }
    }

    fn trial_finished(&self, t: &TrialResult) {
        let run_id = match self.unless_stopping(|| self.log_trial(t)) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                tracing::warn!(
                    "AutoML run {}: cannot log trial {}: {}",
                    self.id,
                    t.number,
                    e.message
                );
                None
            }
        };
        let metric = self.plan.metric;
        let entry = json!({
            "trial": t.number,
            "run_id": run_id,
            "estimator": t.algorithm.name(),
            "exportable": t.algorithm.exportable(),
            "params": t.params.to_string(),
            "validation": crate::report::metrics_json(&t.validation),
            "primary_metric": crate::metrics::value(&t.validation, metric),
            "duration_seconds": t.duration.as_secs_f64(),
            "error": t.error,
        });
        let write = {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            if t.error.is_some() {
                p.trials_failed += 1;
            } else {
                p.trials_completed += 1;
                let better = p.best_trial.as_ref().is_none_or(|b| {
                    let best = b
                        .get("primary_metric")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN);
                    metric.loss(crate::metrics::value(&t.validation, metric)) < metric.loss(best)
                });
                if better {
                    p.best_trial = Some(entry.clone());
                }
            }
            p.trials.push(entry);
            let mut last = self.last_write.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.elapsed() >= Duration::from_millis(500);
            if due {
                *last = Instant::now();
            }
            due
        };
        if write {
            self.write("RUNNING", None, None);
        }
    }
}

impl AutomlService {
    /// Writes a JSON document as an artifact under a run's artifact root.
    pub(crate) async fn artifacts_json(&self, root: &str, name: &str, value: &Value) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
        self.artifacts.write_under(root, name, bytes.into()).await?;
        Ok(())
    }
}

/// Used by the report to name the estimator that fitted a trial.
pub(crate) fn create_logged_model(
    experiment_id: &str,
    run_id: &str,
    algorithm: &str,
) -> CreateLoggedModel {
    CreateLoggedModel {
        experiment_id: experiment_id.to_string(),
        name: Some("model".into()),
        model_type: Some("automl".into()),
        source_run_id: Some(run_id.to_string()),
        tags: vec![
            kv("mlflow.source.name", "ferroflow automl"),
            kv("ferroflow.automl.estimator", algorithm),
        ],
        params: vec![],
    }
}

pub(crate) fn create_version(
    name: &str,
    source: &str,
    run_id: &str,
    model_id: &str,
    description: &str,
) -> CreateModelVersion {
    CreateModelVersion {
        name: name.to_string(),
        source: source.to_string(),
        run_id: Some(run_id.to_string()),
        tags: vec![],
        run_link: None,
        description: Some(description.to_string()),
        model_id: Some(model_id.to_string()),
    }
}
