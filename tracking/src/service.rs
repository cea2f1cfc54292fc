//! Tracking operations: validation, defaults and business rules shared by every transport.

use ferroflow_core::{now_millis, paging, Backend, Db, Error, ErrorCode, Result, StorageContext};

use crate::model::*;
use crate::store;
use crate::validate;
use crate::writer::{BatchWriter, DEFAULT_MERGE_THRESHOLD};

/// Parameters of `runs/search`.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub view_type: ViewType,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Parameters of `experiments/search`.
#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    pub filter: String,
    pub view_type: ViewType,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Parameters of `runs/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRun {
    pub experiment_id: Option<String>,
    pub user_id: Option<String>,
    pub start_time: Option<i64>,
    pub run_name: Option<String>,
    pub tags: Vec<KeyValue>,
}

/// The tracking service: every tracking operation, over one database handle.
#[derive(Clone, Debug)]
pub struct TrackingService {
    db: Db,
    artifact_root: String,
    /// Group commit of run logging; SQLite only (one writer connection).
    writer: Option<BatchWriter>,
}

impl TrackingService {
    /// `artifact_root` is where new experiments' artifacts go (`mlflow-artifacts:/` by default).
    /// On SQLite this starts the group-commit writer, so it must run inside a tokio runtime.
    pub fn new(db: Db, artifact_root: impl Into<String>) -> Self {
        Self::with_merge_threshold(db, artifact_root, DEFAULT_MERGE_THRESHOLD)
    }

    /// As [`TrackingService::new`], merging recent metric points every `merge_threshold`
    /// points (SQLite; tests use a small one).
    pub fn with_merge_threshold(
        db: Db,
        artifact_root: impl Into<String>,
        merge_threshold: usize,
    ) -> Self {
        let writer = (db.backend == Backend::Sqlite)
            .then(|| BatchWriter::spawn(db.clone(), merge_threshold));
        TrackingService {
            db,
            artifact_root: artifact_root.into(),
            writer,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates what a new store needs (the `Default` experiment).
    pub async fn init(&self) -> Result<()> {
        store::ensure_default_experiment(&self.db, &self.artifact_root, now_millis()).await
    }

    // ----- experiments -----

    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<String> {
        validate::experiment_name(name)?;
        if let Some(loc) = artifact_location {
            if loc.starts_with("runs:") {
                return Err(Error::invalid(format!(
                    "Artifact location cannot be a runs:/ URI. Given: '{loc}'"
                )));
            }
        }
        for t in tags {
            validate::experiment_tag(&t.key, &t.value)?;
        }
        // As MLflow: a relative local location is taken against the server's working directory.
        let artifact_location =
            artifact_location
                .filter(|l| !l.is_empty())
                .map(|l| match std::env::current_dir() {
                    Ok(cwd) => ferroflow_core::uri::resolve_if_local(l, &cwd),
                    Err(_) => l.to_string(),
                });
        let artifact_location = artifact_location.as_deref();
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        if store::experiment_by_name_in(&mut tx, name).await?.is_some() {
            return Err(Error::already_exists(format!(
                "Experiment(name={name}) already exists."
            )));
        }
        let id = store::insert_experiment(
            &mut tx,
            name,
            artifact_location,
            &self.artifact_root,
            tags,
            now_millis(),
        )
        .await?;
        tx.commit().await.context("failed to commit experiment")?;
        Ok(id.to_string())
    }

    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = validate::experiment_id(experiment_id)?;
        store::experiment_by_id(&self.db, id).await?.ok_or_else(|| {
            Error::not_found(format!("No Experiment with id={experiment_id} exists"))
        })
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        store::experiment_by_name(&self.db, name)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("Could not find experiment with name '{name}'"))
            })
    }

    pub async fn search_experiments(&self, req: &ExperimentSearch) -> Result<Page<Experiment>> {
        let max_results = req
            .max_results
            .unwrap_or(validate::SEARCH_MAX_RESULTS_DEFAULT);
        validate::max_results(max_results, validate::SEARCH_MAX_RESULTS_THRESHOLD)?;
        let offset = paging::decode_offset(req.page_token.as_deref())?;
        let filter = ferroflow_core::search::parse_experiment_filter(&req.filter)?;
        let order_by = req
            .order_by
            .iter()
            .map(|o| ferroflow_core::search::parse_experiment_order_by(o))
            .collect::<Result<Vec<_>>>()?;
        let q = store::experiment_search_query(
            self.db.backend,
            req.view_type,
            &filter,
            &order_by,
            offset,
            max_results + 1,
        )?;
        Ok(Page::from_overfetch(
            store::fetch_experiments(&self.db, &q).await?,
            offset,
            max_results,
        ))
    }

    pub async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        validate::experiment_name(new_name)?;
        let id = validate::experiment_id(experiment_id)?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        match store::experiment_stage(&mut tx, id).await? {
            None => {
                return Err(Error::not_found(format!(
                    "No Experiment with id={experiment_id} exists"
                )))
            }
            Some(s) if s != LIFECYCLE_ACTIVE => {
                return Err(Error::new(
                    ferroflow_core::ErrorCode::InvalidState,
                    "Cannot rename a non-active experiment.",
                ))
            }
            Some(_) => {}
        }
        if let Some(other) = store::experiment_by_name_in(&mut tx, new_name).await? {
            if other != id {
                return Err(Error::already_exists(format!(
                    "Experiment(name={new_name}) already exists."
                )));
            }
        }
        store::rename_experiment(&mut tx, id, new_name, now_millis()).await?;
        tx.commit().await.context("failed to commit rename")
    }

    /// Marks the experiment and its runs deleted (`restore = false`) or active again.
    pub async fn set_experiment_deleted(&self, experiment_id: &str, deleted: bool) -> Result<()> {
        let id = validate::experiment_id(experiment_id)?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        let (from, to) = if deleted {
            (LIFECYCLE_ACTIVE, LIFECYCLE_DELETED)
        } else {
            (LIFECYCLE_DELETED, LIFECYCLE_ACTIVE)
        };
        match store::experiment_stage(&mut tx, id).await? {
            Some(s) if s == from => {}
            _ => {
                return Err(Error::not_found(format!(
                    "No Experiment with id={experiment_id} exists{}",
                    if deleted { "" } else { " in the deleted state" }
                )))
            }
        }
        store::set_experiment_stage(&mut tx, id, to, now_millis()).await?;
        tx.commit()
            .await
            .context("failed to commit experiment lifecycle change")
    }

    pub async fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        validate::experiment_tag(key, value)?;
        let id = validate::experiment_id(experiment_id)?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        self.require_active_experiment(&mut tx, id, experiment_id)
            .await?;
        store::upsert_experiment_tag(&mut tx, id, key, value).await?;
        tx.commit().await.context("failed to commit experiment tag")
    }

    pub async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        let id = validate::experiment_id(experiment_id)?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        self.require_active_experiment(&mut tx, id, experiment_id)
            .await?;
        if !store::delete_experiment_tag(&mut tx, id, key).await? {
            return Err(Error::not_found(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            )));
        }
        tx.commit()
            .await
            .context("failed to commit experiment tag deletion")
    }

    async fn require_active_experiment(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
        raw: &str,
    ) -> Result<()> {
        match store::experiment_stage(conn, id).await? {
            None => Err(Error::not_found(format!(
                "No Experiment with id={raw} exists"
            ))),
            Some(s) if s != LIFECYCLE_ACTIVE => Err(Error::invalid(format!(
                "The experiment {raw} must be in the 'active' state. Current state is {s}."
            ))),
            Some(_) => Ok(()),
        }
    }

    // ----- runs -----

    pub async fn create_run(&self, req: CreateRun) -> Result<Run> {
        let experiment_id = validate::experiment_id(req.experiment_id.as_deref().unwrap_or("0"))?;
        let tags = checked_tags(&req.tags)?;
        let name_tag = tags
            .iter()
            .rev()
            .find(|t| t.key == RUN_NAME_TAG)
            .map(|t| t.value.clone());
        let run_name = req.run_name.filter(|n| !n.is_empty());
        if let (Some(n), Some(t)) = (&run_name, &name_tag) {
            if n != t {
                return Err(Error::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different \
                     values (run_name='{n}', mlflow.runName='{t}')."
                )));
            }
        }
        let name = run_name
            .or(name_tag.clone())
            .unwrap_or_else(random_run_name);
        let mut tags = tags;
        if name_tag.is_none() {
            tags.push(KeyValue {
                key: RUN_NAME_TAG.into(),
                value: name.clone(),
            });
        }
        let user_id = req
            .user_id
            .or_else(|| {
                tags.iter()
                    .find(|t| t.key == USER_TAG)
                    .map(|t| t.value.clone())
            })
            .unwrap_or_default();

        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        let exp_raw = experiment_id.to_string();
        self.require_active_experiment(&mut tx, experiment_id, &exp_raw)
            .await?;
        let location = store::experiment_artifact_location(&mut tx, experiment_id).await?;
        let run_id = ferroflow_core::new_id();
        let new = NewRun {
            artifact_uri: store::join_uri(&store::join_uri(&location, &run_id), "artifacts"),
            run_id,
            experiment_id,
            user_id,
            name,
            start_time: req.start_time.unwrap_or_else(now_millis),
            tags: dedup_last_wins(tags),
        };
        store::insert_run(&mut tx, &new).await?;
        tx.commit().await.context("failed to commit run")?;
        self.get_run(&new.run_id).await
    }

    /// The experiment a run belongs to (`None`: no such run), for access checks.
    pub async fn experiment_of_run(&self, run_id: &str) -> Result<Option<String>> {
        Ok(store::run_info(&self.db, run_id)
            .await?
            .map(|info| info.experiment_id))
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        validate::run_id(run_id, "run_id")?;
        let info = store::run_info(&self.db, run_id)
            .await?
            .ok_or_else(|| run_not_found(run_id))?;
        let mut runs = store::load_runs(&self.db, vec![info]).await?;
        runs.pop().ok_or_else(|| run_not_found(run_id))
    }

    pub async fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo> {
        validate::run_id(run_id, "run_id")?;
        if let Some(s) = status {
            if !RUN_STATUSES.contains(&s) {
                return Err(validate::invalid_value(
                    "status",
                    s,
                    Some("must be one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"),
                ));
            }
        }
        let run_name = run_name.filter(|n| !n.is_empty());
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        require_active_run(&mut tx, run_id).await?;
        store::update_run(&mut tx, run_id, status, end_time, run_name).await?;
        if let Some(n) = run_name {
            store::upsert_tags(
                &mut tx,
                run_id,
                &[KeyValue {
                    key: RUN_NAME_TAG.into(),
                    value: n.into(),
                }],
            )
            .await?;
        }
        tx.commit().await.context("failed to commit run update")?;
        store::run_info(&self.db, run_id)
            .await?
            .ok_or_else(|| run_not_found(run_id))
    }

    pub async fn set_run_deleted(&self, run_id: &str, deleted: bool) -> Result<()> {
        validate::run_id(run_id, "run_id")?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        if store::run_stage(&mut tx, run_id).await?.is_none() {
            return Err(run_not_found(run_id));
        }
        let (stage, deleted_time) = if deleted {
            (LIFECYCLE_DELETED, Some(now_millis()))
        } else {
            (LIFECYCLE_ACTIVE, None)
        };
        store::set_run_stage(&mut tx, run_id, stage, deleted_time).await?;
        tx.commit()
            .await
            .context("failed to commit run lifecycle change")
    }

    /// Logs metrics, params and tags atomically: all of them or, on any error, none.
    /// Logs metrics, params and tags atomically: all of them or, on any error, none.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: Vec<NewMetric>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    ) -> Result<()> {
        let batch = Batch::validate(run_id, metrics, params, tags)?;
        // Points about logged models (MLflow 3) are also recorded as the models' metrics
        // (in `apply_batches`); the models are checked first so a bad id writes nothing.
        self.check_metric_models(&batch.metrics).await?;
        if let Some(writer) = &self.writer {
            writer.submit(run_id, batch).await
        } else {
            let mut tx = self
                .db
                .writer()
                .begin()
                .await
                .context("failed to begin transaction")?;
            let mut results = apply_batches(&mut tx, &[(run_id, &batch)]).await?;
            results.pop().unwrap_or(Ok(()))?;
            tx.commit().await.context("failed to commit batch")
        }
    }

    /// Every logged model a batch's metrics name must exist and be active.
    async fn check_metric_models(&self, points: &[NewMetric]) -> Result<()> {
        let mut ids: Vec<&str> = points
            .iter()
            .filter_map(|m| m.model.as_ref().map(|l| l.model_id.as_str()))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        let mut conn = self
            .db
            .reader()
            .acquire()
            .await
            .context("failed to acquire a connection")?;
        for id in ids {
            if !store::logged_model_active(&mut conn, id).await? {
                return Err(Error::not_found(format!(
                    "Logged model with ID '{id}' not found."
                )));
            }
        }
        Ok(())
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        validate::run_id(run_id, "run_id")?;
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        require_active_run(&mut tx, run_id).await?;
        if !store::delete_tag(&mut tx, run_id, key).await? {
            return Err(Error::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        tx.commit().await.context("failed to commit tag deletion")
    }

    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelIo],
    ) -> Result<()> {
        validate::run_id(run_id, "run_id")?;
        for (i, d) in datasets.iter().enumerate() {
            for (field, value) in [("name", &d.dataset.name), ("digest", &d.dataset.digest)] {
                if value.is_empty() {
                    return Err(validate::missing_value(&format!(
                        "datasets[{i}].dataset.{field}"
                    )));
                }
            }
            for (j, t) in d.tags.iter().enumerate() {
                validate::tag(&t.key, &t.value, &format!("datasets[{i}].tags[{j}]"))?;
            }
        }
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        require_active_run(&mut tx, run_id).await?;
        let experiment_id = store::run_experiment_id(&mut tx, run_id).await?;
        store::insert_dataset_inputs(&mut tx, experiment_id, run_id, datasets).await?;
        store::insert_model_links(&mut tx, run_id, models, false).await?;
        tx.commit().await.context("failed to commit run inputs")
    }

    pub async fn log_outputs(&self, run_id: &str, models: &[ModelIo]) -> Result<()> {
        validate::run_id(run_id, "run_id")?;
        for (i, m) in models.iter().enumerate() {
            if m.model_id.is_empty() {
                return Err(validate::missing_value(&format!("models[{i}].model_id")));
            }
        }
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin transaction")?;
        require_active_run(&mut tx, run_id).await?;
        store::insert_model_links(&mut tx, run_id, models, true).await?;
        tx.commit().await.context("failed to commit run outputs")
    }

    pub async fn search_runs(&self, req: &RunSearch) -> Result<Page<Run>> {
        let max_results = req
            .max_results
            .unwrap_or(validate::SEARCH_MAX_RESULTS_DEFAULT);
        if max_results > validate::SEARCH_MAX_RESULTS_THRESHOLD {
            // MLflow's handler schema refuses it before the store, in its own words.
            return Err(ferroflow_core::http::invalid_value(
                "max_results",
                &max_results.into(),
            ));
        }
        validate::max_results(max_results, validate::SEARCH_MAX_RESULTS_THRESHOLD)?;
        let experiment_ids = req
            .experiment_ids
            .iter()
            .map(|e| validate::experiment_id(e))
            .collect::<Result<Vec<_>>>()?;
        let offset = paging::decode_offset(req.page_token.as_deref())?;
        let filter = ferroflow_core::search::parse_run_filter(&req.filter)?;
        let order_by = req
            .order_by
            .iter()
            .map(|o| ferroflow_core::search::parse_run_order_by(o))
            .collect::<Result<Vec<_>>>()?;
        if experiment_ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: None,
            });
        }
        let q = store::run_search_query(
            self.db.backend,
            &experiment_ids,
            req.view_type,
            &filter,
            &order_by,
            offset,
            max_results + 1,
        )?;
        let infos = Page::from_overfetch(
            store::fetch_run_infos(&self.db, &q).await?,
            offset,
            max_results,
        );
        let items = store::load_runs(&self.db, infos.items).await?;
        Ok(Page {
            items,
            next_page_token: infos.next_page_token,
        })
    }

    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        validate::run_id(run_id, "run_id")?;
        if let Some(m) = max_results {
            if m <= 0 {
                return Err(Error::invalid(format!(
                    "Invalid value {m} for parameter 'max_results' supplied. It must be a positive integer."
                )));
            }
        }
        let offset = paging::decode_offset(page_token)?;
        self.require_run(run_id).await?;
        let items =
            store::metric_history(&self.db, run_id, key, offset, max_results.map(|m| m + 1))
                .await?;
        Ok(match max_results {
            Some(m) => Page::from_overfetch(items, offset, m),
            None => Page {
                items,
                next_page_token: None,
            },
        })
    }

    /// The UI's `ajax-api/2.0/mlflow/metrics/get-history-bulk`: every run's history of one
    /// metric, runs in id order, each in (timestamp, step, value) order, at most
    /// `max_results` (25,000) points in all. Unknown runs have no points, as in MLflow.
    pub async fn metric_history_bulk(
        &self,
        run_ids: &[String],
        key: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<Vec<MetricWithRunId>> {
        const MAX_HISTORY_RESULTS: i64 = 25_000;
        if run_ids.is_empty() {
            return Err(Error::invalid(
                "GetMetricHistoryBulk request must specify at least one run_id.",
            ));
        }
        if run_ids.len() > validate::MAX_RUNS_GET_METRIC_HISTORY_BULK {
            return Err(Error::invalid(format!(
                "GetMetricHistoryBulk request cannot specify more than {} run_ids. Received {} run_ids.",
                validate::MAX_RUNS_GET_METRIC_HISTORY_BULK,
                run_ids.len()
            )));
        }
        let Some(key) = key else {
            return Err(Error::invalid(
                "GetMetricHistoryBulk request must specify a metric_key.",
            ));
        };
        let max_results = max_results
            .unwrap_or(MAX_HISTORY_RESULTS)
            .clamp(0, MAX_HISTORY_RESULTS);
        let mut ids: Vec<&String> = run_ids.iter().collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            let left = max_results - out.len() as i64;
            if left <= 0 {
                break;
            }
            for m in store::metric_history(&self.db, id, key, 0, Some(left)).await? {
                out.push(MetricWithRunId {
                    key: m.key,
                    value: m.value,
                    timestamp: m.timestamp,
                    step: m.step,
                    run_id: id.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The UI's `experiments/search-datasets`: the datasets the experiments' runs used, with
    /// their context (at most 1000), as MLflow's `search_datasets_impl`.
    pub async fn search_datasets(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>> {
        const MAX_EXPERIMENT_IDS_PER_REQUEST: usize = 20;
        const MAX_DATASET_SUMMARIES_RESULTS: i64 = 1000;
        if experiment_ids.is_empty() {
            return Err(Error::invalid(
                "SearchDatasets request must specify at least one experiment_id.",
            ));
        }
        if experiment_ids.len() > MAX_EXPERIMENT_IDS_PER_REQUEST {
            return Err(Error::invalid(format!(
                "SearchDatasets request cannot specify more than {MAX_EXPERIMENT_IDS_PER_REQUEST} experiment_ids. Received {} experiment_ids.",
                experiment_ids.len()
            )));
        }
        let ids = experiment_ids
            .iter()
            .map(|id| validate::experiment_id(id))
            .collect::<Result<Vec<_>>>()?;
        Ok(
            store::dataset_summaries(&self.db, &ids, MAX_DATASET_SUMMARIES_RESULTS)
                .await?
                .into_iter()
                .map(|(experiment_id, name, digest, context)| DatasetSummary {
                    experiment_id: experiment_id.to_string(),
                    name,
                    digest,
                    context,
                })
                .collect(),
        )
    }

    /// Up to `max_results` points per run, evenly sampled by row and keeping the first and last.
    pub async fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
        max_results: Option<i64>,
    ) -> Result<Vec<MetricWithRunId>> {
        validate::bulk_interval_run_ids(run_ids)?;
        let max_results = validate::bulk_interval_max_results(max_results)?;
        if let Some((start, end)) = steps {
            if start > end {
                return Err(Error::invalid(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )));
            }
        }
        // As MLflow: a run that does not exist has no points (the answer is not an error).
        let mut out = Vec::new();
        for id in run_ids {
            let points = store::metric_points_by_step(&self.db, id, key, steps).await?;
            for i in evenly_spaced_indices(points.len(), max_results as usize) {
                let m = &points[i];
                out.push(MetricWithRunId {
                    key: m.key.clone(),
                    value: m.value,
                    timestamp: m.timestamp,
                    step: m.step,
                    run_id: id.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn require_run(&self, run_id: &str) -> Result<()> {
        let mut conn = self
            .db
            .reader()
            .acquire()
            .await
            .context("failed to acquire connection")?;
        store::run_stage(&mut conn, run_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| run_not_found(run_id))
    }
}

/// A validated `log-batch`: metrics, params and tags checked against MLflow's rules, values
/// truncated as MLflow truncates them, tags de-duplicated (last wins).
#[derive(Debug, Clone)]
pub struct Batch {
    metrics: Vec<NewMetric>,
    params: Vec<KeyValue>,
    tags: Vec<KeyValue>,
}

impl Batch {
    pub fn validate(
        run_id: &str,
        metrics: Vec<NewMetric>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    ) -> Result<Batch> {
        validate::run_id(run_id, "run_id")?;
        for (i, m) in metrics.iter().enumerate() {
            validate::metric(&m.key, m.timestamp, &format!("metrics[{i}]"))?;
        }
        let params = params
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let value = validate::param(&p.key, &p.value, &format!("params[{i}]"))?;
                Ok(KeyValue { key: p.key, value })
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = checked_tags(&tags)?;
        validate::batch_limit("metrics", validate::MAX_METRICS_PER_BATCH, metrics.len())?;
        validate::batch_limit("params", validate::MAX_PARAMS_TAGS_PER_BATCH, params.len())?;
        validate::batch_limit("tags", validate::MAX_PARAMS_TAGS_PER_BATCH, tags.len())?;
        validate::batch_limit(
            "metrics, params, and tags",
            validate::MAX_ENTITIES_PER_BATCH,
            metrics.len() + params.len() + tags.len(),
        )?;
        let mut seen = std::collections::HashSet::new();
        let dupes: Vec<&str> = params
            .iter()
            .filter(|p| !seen.insert(p.key.as_str()))
            .map(|p| p.key.as_str())
            .collect();
        if !dupes.is_empty() {
            return Err(Error::invalid(format!(
                "Duplicate parameter keys have been submitted: {dupes:?}. Please ensure the request contains \
                 only one param value per param key."
            )));
        }
        Ok(Batch {
            metrics,
            params,
            tags: dedup_last_wins(tags),
        })
    }

    pub fn metric_count(&self) -> usize {
        self.metrics.len()
    }

    /// Number of entities (metrics + params + tags).
    pub fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes validated batches (one per request) on the caller's transaction: one result per
/// batch, and an outer error only for storage failures, which leave the transaction unusable.
/// A batch is rejected (missing or inactive run, changed param) before any of its writes, so
/// a rejection never leaves part of it behind. Metrics of all accepted batches go in together.
pub(crate) async fn apply_batches(
    conn: &mut sqlx::AnyConnection,
    batches: &[(&str, &Batch)],
) -> Result<Vec<Result<()>>> {
    let mut runs: Vec<&str> = batches.iter().map(|(run, _)| *run).collect();
    runs.sort_unstable();
    runs.dedup();
    let stages = store::run_stages(conn, &runs).await?;
    let mut results = Vec::with_capacity(batches.len());
    for (run_id, batch) in batches {
        let result = match stages.get(*run_id) {
            None => Err(run_not_found(run_id)),
            Some(stage) if stage != LIFECYCLE_ACTIVE => Err(inactive_run(run_id, stage)),
            Some(_) => match store::insert_params(conn, run_id, &batch.params).await {
                Err(e) if e.code == ErrorCode::InternalError => return Err(e),
                other => other,
            },
        };
        results.push(result);
    }
    let points: Vec<store::RunPoint> = batches
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .flat_map(|((run, batch), _)| batch.metrics.iter().map(move |m| (*run, m)))
        .collect();
    if !points.is_empty() {
        store::insert_metrics(conn, &points).await?;
    }
    // Points about logged models are also the models' metrics, in the same transaction.
    for ((run_id, batch), _) in batches.iter().zip(&results).filter(|(_, r)| r.is_ok()) {
        let model_points: Vec<&NewMetric> =
            batch.metrics.iter().filter(|m| m.model.is_some()).collect();
        if !model_points.is_empty() {
            let experiment_id = store::run_experiment_id(conn, run_id).await?;
            store::insert_logged_model_metrics(conn, run_id, experiment_id, &model_points).await?;
        }
    }
    for ((run_id, batch), _) in batches.iter().zip(&results).filter(|(_, r)| r.is_ok()) {
        if batch.tags.is_empty() {
            continue;
        }
        if let Some(name) = batch.tags.iter().find(|t| t.key == RUN_NAME_TAG) {
            store::update_run(conn, run_id, None, None, Some(&name.value)).await?;
        }
        store::upsert_tags(conn, run_id, &batch.tags).await?;
    }
    Ok(results)
}

/// Run tags with MLflow's key rules applied and values cut to MLflow's limit.
fn checked_tags(tags: &[KeyValue]) -> Result<Vec<KeyValue>> {
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            let value = validate::tag(&t.key, &t.value, &format!("tags[{i}]"))?;
            Ok(KeyValue {
                key: t.key.clone(),
                value,
            })
        })
        .collect()
}

fn run_not_found(run_id: &str) -> Error {
    Error::not_found(format!("Run with id={run_id} not found"))
}

async fn require_active_run(conn: &mut sqlx::AnyConnection, run_id: &str) -> Result<()> {
    match store::run_stage(conn, run_id).await? {
        None => Err(run_not_found(run_id)),
        Some(s) if s != LIFECYCLE_ACTIVE => Err(inactive_run(run_id, &s)),
        Some(_) => Ok(()),
    }
}

fn inactive_run(run_id: &str, stage: &str) -> Error {
    Error::invalid(format!(
        "The run {run_id} must be in the 'active' state. Current state is {stage}."
    ))
}

/// Keeps the last value of each key, in first-seen order.
fn dedup_last_wins(tags: Vec<KeyValue>) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = Vec::with_capacity(tags.len());
    for t in tags {
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value,
            None => out.push(t),
        }
    }
    out
}

/// MLflow's `_evenly_spaced_indices`.
fn evenly_spaced_indices(total: usize, max_results: usize) -> Vec<usize> {
    if total == 0 {
        return Vec::new();
    }
    if total <= max_results {
        return (0..total).collect();
    }
    if max_results == 1 {
        return vec![total - 1];
    }
    let step = (total - 1) as f64 / (max_results - 1) as f64;
    let mut idx: Vec<usize> = (0..max_results)
        .map(|i| round_half_even(i as f64 * step))
        .collect();
    idx.dedup();
    idx
}

/// Python's `round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> usize {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        (r - 1.0) as usize
    } else {
        r as usize
    }
}

/// `adjective-noun-number`, the shape of MLflow's generated run names.
fn random_run_name() -> String {
    const ADJECTIVES: [&str; 16] = [
        "bright", "calm", "clever", "bold", "gentle", "rare", "swift", "wise", "merry", "silent",
        "brave", "lucky", "sunny", "proud", "eager", "polite",
    ];
    const NOUNS: [&str; 16] = [
        "fox", "owl", "lark", "whale", "crane", "hare", "bee", "trout", "wolf", "seal", "moth",
        "doe", "ram", "finch", "mole", "yak",
    ];
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!(
        "{}-{}-{}",
        ADJECTIVES[bytes[0] as usize % ADJECTIVES.len()],
        NOUNS[bytes[1] as usize % NOUNS.len()],
        u16::from_le_bytes([bytes[2], bytes[3]]) % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spaced_indices_keep_first_and_last() {
        assert_eq!(evenly_spaced_indices(10, 3), vec![0, 4, 9]);
        assert_eq!(evenly_spaced_indices(3, 5), vec![0, 1, 2]);
        assert_eq!(evenly_spaced_indices(7, 1), vec![6]);
    }

    #[test]
    fn dedup_keeps_last_value_per_key() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(
            dedup_last_wins(vec![kv("a", "1"), kv("b", "2"), kv("a", "3")]),
            vec![kv("a", "3"), kv("b", "2")]
        );
    }
}
