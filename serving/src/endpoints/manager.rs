//! Serving endpoints inside `ferroflow server`: configs persisted in the backend store,
//! models resolved through the registry and fetched from the artifact store, traffic split
//! across served models, and hot reload when a followed stage or alias moves.
//!
//! Hot reload: the watcher re-resolves every served model that follows the registry; a new
//! version is downloaded, loaded and warmed up *before* the slot's `Arc<Deployed>` is
//! swapped. Requests already running hold the old `Arc`, so they finish on the old model,
//! whose batcher drains its queue when the last of them lets go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use ferroflow_core::{now_millis, Db, Error, ErrorCode, Result};
use ferroflow_registry::model::ModelVersion;
use ferroflow_registry::RegistryService;
use ferroflow_tracking::artifacts::ArtifactService;
use prometheus::{Histogram, IntGauge};
use serde_json::{json, Value};

use super::capture::{CaptureRecord, CaptureSink};
use super::config::{check_endpoint_name, EndpointConfig, EndpointSpec, ServedSpec};
use super::features::{self, SharedSource};
use super::metrics::ServingMetrics;
use super::store;
use crate::protocol::ScoringError;
use crate::LoadedModel;

/// A loaded version of a served model, with its metric handles resolved once.
pub struct Deployed {
    pub version: String,
    pub model: Arc<LoadedModel>,
    latency: Histogram,
    queue_depth: IntGauge,
}

#[derive(Debug, Clone, PartialEq)]
enum SlotState {
    Creating,
    Ready,
    Failed(String),
}

/// One served model of an endpoint: its spec and the version it runs now.
pub struct Slot {
    pub spec: ServedSpec,
    current: RwLock<Option<Arc<Deployed>>>,
    state: Mutex<(SlotState, Option<Instant>)>,
    /// A newer version the watcher could not load while the current one kept serving.
    reload_failure: Mutex<Option<ReloadFailure>>,
}

/// Why a followed stage, alias or `latest` did not move the slot to its new version.
#[derive(Debug, Clone)]
struct ReloadFailure {
    version: String,
    message: String,
    at: Instant,
}

impl Slot {
    fn new(spec: ServedSpec) -> Slot {
        Slot {
            spec,
            current: RwLock::new(None),
            state: Mutex::new((SlotState::Creating, None)),
            reload_failure: Mutex::new(None),
        }
    }

    /// The deployed version (what a request runs on), if any.
    pub fn current(&self) -> Option<Arc<Deployed>> {
        self.current.read().expect("slot lock").clone()
    }

    fn install(&self, deployed: Arc<Deployed>) {
        *self.current.write().expect("slot lock") = Some(deployed);
        *self.state.lock().expect("slot lock") = (SlotState::Ready, None);
        self.reload_failure.lock().expect("slot lock").take();
    }

    fn reload_failure(&self) -> Option<ReloadFailure> {
        self.reload_failure.lock().expect("slot lock").clone()
    }

    /// Keeps serving the current version and records why `version` could not replace it.
    fn reload_failed(&self, version: &str, message: String) {
        *self.reload_failure.lock().expect("slot lock") = Some(ReloadFailure {
            version: version.to_string(),
            message,
            at: Instant::now(),
        });
    }

    fn fail(&self, message: String) {
        *self.state.lock().expect("slot lock") = (SlotState::Failed(message), Some(Instant::now()));
    }
}

/// An endpoint: its config as accepted, the checked spec, and one slot per served model.
pub struct Endpoint {
    pub name: String,
    pub config: EndpointConfig,
    pub spec: EndpointSpec,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub slots: Vec<Arc<Slot>>,
    /// Inference logging, when `auto_capture_config.enabled`.
    pub capture: Option<CaptureSink>,
}

impl Endpoint {
    /// READY when every served model that takes traffic has a loaded version.
    pub fn ready(&self) -> bool {
        self.spec
            .routes
            .iter()
            .filter(|(_, pct)| *pct > 0)
            .all(|(i, _)| self.slots[*i].current().is_some())
    }

    /// Picks a served model by the traffic split.
    fn pick(&self) -> &Arc<Slot> {
        if let [(only, _)] = self.spec.routes.as_slice() {
            return &self.slots[*only];
        }
        let draw = (super::random_fraction() * 100.0) as u32;
        let mut acc = 0;
        for (i, pct) in &self.spec.routes {
            acc += pct;
            if draw < acc {
                return &self.slots[*i];
            }
        }
        &self.slots[self.spec.routes.last().map_or(0, |(i, _)| *i)]
    }

    /// The endpoint as the REST API shows it.
    pub fn view(&self) -> Value {
        let served: Vec<Value> = self
            .slots
            .iter()
            .zip(&self.config.served_models)
            .map(|(slot, cfg)| {
                let mut v = serde_json::to_value(cfg).unwrap_or_else(|_| json!({}));
                v["name"] = json!(slot.spec.name);
                v["max_batch_size"] = json!(slot.spec.batch.max_batch_size);
                v["max_delay_us"] = json!(slot.spec.batch.max_delay_us);
                v["workers"] = json!(slot.spec.batch.workers);
                if let Some(d) = slot.current() {
                    v["served_version"] = json!(d.version);
                }
                let (state, _) = slot.state.lock().expect("slot lock").clone();
                let (deployment, message) = match (state, slot.reload_failure()) {
                    (SlotState::Creating, _) => ("DEPLOYMENT_CREATING", String::new()),
                    (SlotState::Ready, None) => ("DEPLOYMENT_READY", String::new()),
                    (SlotState::Ready, Some(f)) => (
                        "DEPLOYMENT_READY",
                        format!(
                            "version {} could not be loaded, version {} keeps serving: {}",
                            f.version,
                            slot.current()
                                .map(|d| d.version.clone())
                                .unwrap_or_default(),
                            f.message
                        ),
                    ),
                    (SlotState::Failed(m), _) => ("DEPLOYMENT_FAILED", m),
                };
                v["state"] = json!({
                    "deployment": deployment,
                    "deployment_state_message": message,
                });
                v
            })
            .collect();
        let routes: Vec<Value> = self
            .spec
            .routes
            .iter()
            .map(|(i, pct)| {
                json!({
                    "served_model_name": self.slots[*i].spec.name,
                    "traffic_percentage": pct,
                })
            })
            .collect();
        let mut config = json!({
            "served_models": served,
            "traffic_config": { "routes": routes },
        });
        if let Some(capture) = &self.config.auto_capture_config {
            let mut c = serde_json::to_value(capture).unwrap_or_else(|_| json!({}));
            if let Some(sink) = &self.capture {
                c["location"] = json!(format!("mlflow-artifacts:/{}", sink.location));
                c["dropped_records"] = json!(sink.dropped());
            }
            config["auto_capture_config"] = c;
        }
        json!({
            "name": self.name,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "state": {
                "ready": if self.ready() { "READY" } else { "NOT_READY" },
                // As Databricks shows an update that did not take: the endpoint keeps
                // serving what it served, and says the move failed.
                "config_update": if self.slots.iter().any(|s| s.reload_failure().is_some()) {
                    "UPDATE_FAILED"
                } else {
                    "NOT_UPDATING"
                },
            },
            "config": config,
        })
    }
}

/// What an invocation ran on.
pub struct Invocation {
    pub served_model: String,
    pub version: String,
    pub body: Value,
}

/// Owns every endpoint; cheap to clone.
#[derive(Clone)]
pub struct EndpointManager {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    registry: RegistryService,
    artifacts: ArtifactService,
    metrics: ServingMetrics,
    endpoints: RwLock<HashMap<String, Arc<Endpoint>>>,
    /// The online store endpoints with feature lookups read from.
    features: RwLock<Option<SharedSource>>,
    /// Config changes and reloads run one at a time.
    changes: tokio::sync::Mutex<()>,
    /// The running watcher: how to stop it and its task.
    watcher: Mutex<Option<Watcher>>,
}

type Watcher = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// A failed deployment is retried this long after the failure.
const RETRY_AFTER: Duration = Duration::from_secs(30);

fn endpoint_not_found(name: &str) -> Error {
    Error::not_found(format!("Endpoint with name '{name}' does not exist."))
}

impl EndpointManager {
    pub fn new(
        db: Db,
        registry: RegistryService,
        artifacts: ArtifactService,
        metrics: ServingMetrics,
    ) -> EndpointManager {
        EndpointManager {
            inner: Arc::new(Inner {
                db,
                registry,
                artifacts,
                metrics,
                endpoints: RwLock::new(HashMap::new()),
                features: RwLock::new(None),
                changes: tokio::sync::Mutex::new(()),
                watcher: Mutex::new(None),
            }),
        }
    }

    /// Connects the online store that endpoints with `feature_lookups` read.
    pub fn set_feature_source(&self, source: SharedSource) {
        *self
            .inner
            .features
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// The inference-log writer of an endpoint whose config enables it.
    fn capture_sink(&self, name: &str, config: &EndpointConfig) -> Result<Option<CaptureSink>> {
        match &config.auto_capture_config {
            Some(c) if c.enabled => Ok(Some(CaptureSink::start(
                name,
                c,
                self.inner.artifacts.clone(),
            )?)),
            _ => Ok(None),
        }
    }

    /// Reads the persisted endpoints (their models load in the background watcher).
    pub async fn load_persisted(&self) -> Result<usize> {
        self.sync_from_store().await
    }

    /// Makes the in-memory endpoints match the stored ones, so replicas sharing a backend
    /// store see each other's creates, updates and deletes. Unchanged endpoints are kept as
    /// they are; changed ones keep the loaded slots whose spec is the same (the watcher loads
    /// the rest). Returns how many endpoints are stored.
    async fn sync_from_store(&self) -> Result<usize> {
        let rows = store::load_all(&self.inner.db).await?;
        let count = rows.len();
        let current: HashMap<String, Arc<Endpoint>> =
            self.inner.endpoints.read().expect("endpoints lock").clone();
        let mut next = HashMap::with_capacity(count);
        for row in rows {
            let previous = current.get(&row.name);
            if let Some(e) = previous.filter(|e| {
                e.last_updated_timestamp == row.last_updated_timestamp
                    && serde_json::to_string(&e.config).ok().as_deref() == Some(&row.config)
            }) {
                next.insert(row.name, e.clone());
                continue;
            }
            if let Some(e) = self.endpoint_from_row(row, previous.map(|p| p.as_ref())) {
                next.insert(e.name.clone(), Arc::new(e));
            }
        }
        *self.inner.endpoints.write().expect("endpoints lock") = next;
        Ok(count)
    }

    /// An endpoint from its stored row (None, logged, if the config no longer reads).
    fn endpoint_from_row(
        &self,
        row: store::StoredEndpoint,
        previous: Option<&Endpoint>,
    ) -> Option<Endpoint> {
        let name = row.name;
        let config: EndpointConfig = match serde_json::from_str(&row.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(endpoint = %name, "stored config is unreadable: {e}");
                return None;
            }
        };
        let Ok(spec) = config.check() else {
            tracing::error!(endpoint = %name, "stored config no longer checks");
            return None;
        };
        let slots = spec
            .served
            .iter()
            .map(|served| {
                previous
                    .and_then(|p| p.slots.iter().find(|s| s.spec == *served))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Slot::new(served.clone())))
            })
            .collect();
        let capture = match self.capture_sink(&name, &config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(endpoint = %name, "inference logging off: {}", e.message);
                None
            }
        };
        Some(Endpoint {
            name,
            config,
            spec,
            creation_timestamp: row.creation_timestamp,
            last_updated_timestamp: row.last_updated_timestamp,
            slots,
            capture,
        })
    }

    /// Re-resolves followed stages and aliases every `interval` (and loads endpoints that
    /// have no model yet), until [`EndpointManager::stop_watcher`].
    pub fn spawn_watcher(&self, interval: Duration) {
        let manager = self.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                manager.refresh().await;
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
        let previous = self
            .inner
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((stop, task));
        if let Some((stop, _)) = previous {
            let _ = stop.send(());
        }
    }

    /// Stops the watcher and waits for a pass in progress to end: the server calls this
    /// before it closes the backend store the watcher reads.
    pub async fn stop_watcher(&self) {
        let watcher = self
            .inner
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, task)) = watcher {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    fn snapshot(&self) -> Vec<Arc<Endpoint>> {
        self.inner
            .endpoints
            .read()
            .expect("endpoints lock")
            .values()
            .cloned()
            .collect()
    }

    /// One watcher pass: picks up endpoint changes made by other replicas, swaps in new
    /// versions of followed stages/aliases, retries failures.
    pub async fn refresh(&self) {
        let _guard = self.inner.changes.lock().await;
        if let Err(e) = self.sync_from_store().await {
            tracing::warn!("reading serving endpoints failed: {}", e.message);
        }
        for endpoint in self.snapshot() {
            for slot in &endpoint.slots {
                let current = slot.current();
                if current.is_some() && !slot.spec.target.follows_registry() {
                    continue;
                }
                if current.is_none() {
                    let state = slot.state.lock().expect("slot lock").clone();
                    if matches!(state, (SlotState::Failed(_), Some(at)) if at.elapsed() < RETRY_AFTER)
                    {
                        continue;
                    }
                }
                let mv = match self.resolve(&slot.spec).await {
                    Ok(mv) => mv,
                    Err(e) => {
                        if current.is_none() {
                            slot.fail(e.message);
                        }
                        continue;
                    }
                };
                if current.as_ref().map(|d| d.version.as_str()) == Some(mv.version.as_str()) {
                    // Back on the serving version (an alias moved back): nothing failed now.
                    slot.reload_failure.lock().expect("slot lock").take();
                    continue;
                }
                // A version that failed to load is not downloaded again on every pass.
                if matches!(slot.reload_failure(), Some(f) if f.version == mv.version && f.at.elapsed() < RETRY_AFTER)
                {
                    continue;
                }
                match self.deploy(&endpoint.name, &slot.spec, &mv).await {
                    Ok(d) => {
                        tracing::info!(
                            endpoint = %endpoint.name,
                            served_model = %slot.spec.name,
                            version = %d.version,
                            "serving new version"
                        );
                        slot.install(d);
                    }
                    Err(e) => {
                        tracing::warn!(endpoint = %endpoint.name, "loading {} failed: {}", mv.version, e.message);
                        if current.is_none() {
                            slot.fail(e.message);
                        } else {
                            slot.reload_failed(&mv.version, e.message);
                        }
                    }
                }
            }
        }
    }

    async fn resolve(&self, spec: &ServedSpec) -> Result<ModelVersion> {
        self.inner
            .registry
            .resolve_models_uri(&spec.target.models_uri(&spec.model_name))
            .await
    }

    /// Downloads, loads and warms up one version.
    async fn deploy(
        &self,
        endpoint: &str,
        spec: &ServedSpec,
        mv: &ModelVersion,
    ) -> Result<Arc<Deployed>> {
        let location = self.inner.registry.model_version_location(mv).await?;
        // A directory of its own per download, removed once the model is loaded (sessions
        // hold it in memory) or the download failed: nothing is left in the temp dir.
        let dir = std::env::temp_dir().join(format!(
            "ferroflow-serving-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let downloaded = self.inner.artifacts.download_tree(&location, &dir).await;
        let loaded = match downloaded {
            Ok(_) => {
                let batch = spec.batch;
                let load_dir = dir.clone();
                tokio::task::spawn_blocking(move || LoadedModel::load(&load_dir, batch))
                    .await
                    .map_err(|e| Error::internal(format!("model loading panicked: {e}")))
            }
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_dir_all(&dir).await;
        let model = loaded??;
        let labels = [endpoint, spec.name.as_str(), mv.version.as_str()];
        let m = &self.inner.metrics;
        let histogram = m.batch_rows.with_label_values(&labels);
        model.set_batch_observer(Arc::new(move |rows| histogram.observe(rows as f64)));
        Ok(Arc::new(Deployed {
            version: mv.version.clone(),
            model,
            latency: m.latency.with_label_values(&labels),
            queue_depth: m.queue_depth.with_label_values(&labels),
        }))
    }

    /// Resolves and loads every served model of a new config, reusing slots of `previous`
    /// whose spec is unchanged. A missing ONNX Runtime leaves a slot failed (the endpoint is
    /// NOT_READY); any other error (no such model or version, not an ONNX model) is returned.
    async fn build_slots(
        &self,
        name: &str,
        spec: &EndpointSpec,
        previous: Option<&Endpoint>,
    ) -> Result<Vec<Arc<Slot>>> {
        let mut slots = Vec::with_capacity(spec.served.len());
        for served in &spec.served {
            if let Some(old) = previous
                .and_then(|p| p.slots.iter().find(|s| s.spec == *served))
                .filter(|s| s.current().is_some())
            {
                slots.push(old.clone());
                continue;
            }
            let mv = self.resolve(served).await?;
            let slot = Arc::new(Slot::new(served.clone()));
            match self.deploy(name, served, &mv).await {
                Ok(d) => slot.install(d),
                Err(e) if e.code == ErrorCode::TemporarilyUnavailable => slot.fail(e.message),
                Err(e) => return Err(e),
            }
            slots.push(slot);
        }
        Ok(slots)
    }

    pub async fn create(&self, name: &str, config: EndpointConfig) -> Result<Value> {
        check_endpoint_name(name)?;
        let spec = config.check()?;
        let _guard = self.inner.changes.lock().await;
        if self.get_endpoint(name).is_some() {
            return Err(Error::already_exists(format!(
                "Endpoint with name '{name}' already exists."
            )));
        }
        let slots = self.build_slots(name, &spec, None).await?;
        let capture = self.capture_sink(name, &config)?;
        let now = now_millis();
        let text = serde_json::to_string(&config).expect("config serializes");
        store::insert(&self.inner.db, name, &text, now).await?;
        let endpoint = Arc::new(Endpoint {
            name: name.to_string(),
            config,
            spec,
            creation_timestamp: now,
            last_updated_timestamp: now,
            slots,
            capture,
        });
        let view = endpoint.view();
        self.inner
            .endpoints
            .write()
            .expect("endpoints lock")
            .insert(name.to_string(), endpoint);
        Ok(view)
    }

    /// Replaces an endpoint's config; new models are loaded before traffic moves to them.
    pub async fn update(&self, name: &str, config: EndpointConfig) -> Result<Value> {
        let spec = config.check()?;
        let _guard = self.inner.changes.lock().await;
        let previous = self
            .get_endpoint(name)
            .ok_or_else(|| endpoint_not_found(name))?;
        let slots = self.build_slots(name, &spec, Some(&previous)).await?;
        let capture = self.capture_sink(name, &config)?;
        let now = now_millis();
        let text = serde_json::to_string(&config).expect("config serializes");
        store::update(&self.inner.db, name, &text, now).await?;
        let endpoint = Arc::new(Endpoint {
            name: name.to_string(),
            config,
            spec,
            creation_timestamp: previous.creation_timestamp,
            last_updated_timestamp: now,
            slots,
            capture,
        });
        let view = endpoint.view();
        self.inner
            .endpoints
            .write()
            .expect("endpoints lock")
            .insert(name.to_string(), endpoint);
        Ok(view)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let _guard = self.inner.changes.lock().await;
        if self.get_endpoint(name).is_none() {
            return Err(endpoint_not_found(name));
        }
        store::delete(&self.inner.db, name).await?;
        self.inner
            .endpoints
            .write()
            .expect("endpoints lock")
            .remove(name);
        Ok(())
    }

    pub fn get_endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.inner
            .endpoints
            .read()
            .expect("endpoints lock")
            .get(name)
            .cloned()
    }

    pub fn get(&self, name: &str) -> Result<Value> {
        self.get_endpoint(name)
            .map(|e| e.view())
            .ok_or_else(|| endpoint_not_found(name))
    }

    /// Whether every endpoint is READY (V2 server readiness).
    pub fn all_ready(&self) -> bool {
        self.snapshot().iter().all(|e| e.ready())
    }

    pub fn list(&self) -> Value {
        let mut all = self.snapshot();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        json!({ "endpoints": all.iter().map(|e| e.view()).collect::<Vec<_>>() })
    }

    /// The deployed model a request to `name` runs on: by the traffic split, or the served
    /// model running `version` when one is asked for.
    pub fn route(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Arc<Endpoint>, Arc<Slot>, Arc<Deployed>)> {
        let endpoint = self
            .get_endpoint(name)
            .ok_or_else(|| endpoint_not_found(name))?;
        let slot = match version {
            None => endpoint.pick().clone(),
            Some(v) => endpoint
                .slots
                .iter()
                .find(|s| s.current().is_some_and(|d| d.version == v))
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(format!("Endpoint '{name}' does not serve version {v}"))
                })?,
        };
        let deployed = slot.current().ok_or_else(|| {
            let (state, _) = slot.state.lock().expect("slot lock").clone();
            let why = match state {
                SlotState::Failed(m) => m,
                _ => "the model is still loading".to_string(),
            };
            Error::new(
                ErrorCode::TemporarilyUnavailable,
                format!("Endpoint '{name}' is not ready: {why}"),
            )
        })?;
        Ok((endpoint, slot, deployed))
    }

    /// `POST /serving-endpoints/{name}/invocations`, with its metrics.
    pub async fn invoke(
        &self,
        name: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Invocation, ScoringError> {
        let start = Instant::now();
        let (endpoint, slot, deployed) = self.route(name, None)?;
        deployed
            .queue_depth
            .set(deployed.model.queue_depth() as i64);
        let joined;
        let body = if endpoint.config.feature_lookups.is_empty() {
            body
        } else {
            let source = self
                .inner
                .features
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or_else(|| Error::internal("no feature store is connected to serving"))?;
            joined =
                features::join(source.as_ref(), &endpoint.config.feature_lookups, body).await?;
            &joined[..]
        };
        let result = deployed.model.invocations(content_type, body).await;
        let status = match &result {
            Ok(_) => StatusCode::OK,
            Err(ScoringError::UnsupportedMediaType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Err(ScoringError::Mlflow(e)) => e.code.http_status(),
        };
        self.inner
            .metrics
            .requests
            .with_label_values(&[name, &slot.spec.name, &deployed.version, status.as_str()])
            .inc();
        let elapsed = start.elapsed();
        deployed.latency.observe(elapsed.as_secs_f64());
        if let Some(sink) = endpoint.capture.as_ref().filter(|s| s.sampled()) {
            let response = match &result {
                Ok(v) => v.to_string(),
                Err(ScoringError::UnsupportedMediaType(m)) => m.clone(),
                Err(ScoringError::Mlflow(e)) => {
                    json!({"error_code": e.code.as_str(), "message": e.message}).to_string()
                }
            };
            sink.record(CaptureRecord {
                request_id: uuid::Uuid::new_v4().to_string(),
                timestamp_ms: now_millis(),
                latency_us: elapsed.as_micros() as i64,
                status_code: i32::from(status.as_u16()),
                served_model: slot.spec.name.clone(),
                served_version: deployed.version.clone(),
                request: bytes::Bytes::copy_from_slice(body),
                response,
            });
        }
        Ok(Invocation {
            served_model: slot.spec.name.clone(),
            version: deployed.version.clone(),
            body: result?,
        })
    }
}
