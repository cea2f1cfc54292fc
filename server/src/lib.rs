//! The ferroflow server: configuration, composition of every capability's routes, metrics.

pub mod auth_gate;
pub mod automl_cli;
pub mod cli_client;
pub mod config;
pub mod features_cli;
pub mod graphql;
pub mod import_mlflow;
pub mod limits;
pub mod metrics;
pub mod models_serve;
pub mod ui;
pub mod ui_api;

use ferroflow_core::access::{RouteRule, Rule};
use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpRequest, HttpResponse, HttpServer};
use ferroflow_core::{Db, Error, ErrorCode};
use ferroflow_registry::RegistryService;
use ferroflow_serving::endpoints::{EndpointManager, ServingMetrics};
use ferroflow_tracking::artifacts::{ArtifactService, ArtifactStore};
use ferroflow_tracking::TrackingService;
use serde_json::json;

pub use config::ServerConfig;
use metrics::Metrics;

/// The MLflow release whose REST API this server speaks.
pub const MLFLOW_API_VERSION: &str = "3.17.2";

/// API prefixes MLflow serves its REST API under (the UI uses the `ajax-api` one).
pub const API_PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

/// Routes outside the tracking API, as (method, path); the OpenAPI test checks them too.
pub const SERVER_ROUTES: &[RouteRule] = &[
    ("GET", "/health", Rule::Open),
    ("GET", "/version", Rule::Authenticated),
    ("GET", "/metrics", Rule::Metrics),
    ("GET", "/api/3.0/mlflow/server-info", Rule::Open),
    ("GET", "/ajax-api/3.0/mlflow/server-info", Rule::Open),
    ("GET", "/graphql", Rule::Graphql),
    ("POST", "/graphql", Rule::Graphql),
    ("GET", "/", Rule::Authenticated),
    ("GET", "/static-files/{path}", Rule::Open),
];

/// How long an idle keep-alive connection stays open (nginx's default). Longer than the idle
/// expiry of pooling clients (httpx 5 s, aiohttp 15 s), so such a client drops an idle
/// connection before the server does. With equal timeouts (actix's default is 5 s) a request
/// sent just as the server closes fails with "Server disconnected without sending a response".
pub(crate) const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);

/// Turns off Nagle on each accepted connection: responses written in more than one segment
/// otherwise wait for the client's delayed ACK, ~40 ms stalls on keep-alive connections.
pub(crate) fn set_nodelay(conn: &dyn std::any::Any, _ext: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        let _ = tcp.set_nodelay(true);
    }
}

/// A built, bound, not yet awaited server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    /// Background work that uses the store, stopped before the store closes.
    endpoints: EndpointManager,
    automl: ferroflow_automl::AutomlService,
}

impl Application {
    /// Connects the store (running migrations), binds the listener and builds the server.
    pub async fn build(config: &ServerConfig) -> anyhow::Result<Application> {
        let store_uri = config.store_uri().map_err(|e| anyhow::anyhow!(e.message))?;
        let workers = config.worker_count();
        let db = Db::connect(&store_uri, (workers as u32) * 2 + 2)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let tracking = TrackingService::new(db.clone(), config.artifact_root());
        tracking
            .init()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;

        let listener = TcpListener::bind((config.host.as_str(), config.port)).map_err(|e| {
            anyhow::anyhow!("cannot listen on {}:{}: {e}", config.host, config.port)
        })?;
        let port = listener.local_addr()?.port();

        let artifact_store = ArtifactStore::open(&config.artifacts_destination)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let metrics = Metrics::new();
        let artifacts = web::Data::new(ArtifactService::new(
            artifact_store,
            tracking.clone(),
            metrics.artifact_counters(),
        ));
        let multipart_uploads = artifacts.multipart_uploads_enabled();
        let registry_service = RegistryService::new(db.clone(), tracking.clone());

        // ONNX Runtime is optional at start-up: without it serving endpoints answer 503.
        match ferroflow_serving::init_runtime(config.onnxruntime_lib.as_deref()) {
            ferroflow_serving::RuntimeStatus::Ready { version } => {
                tracing::info!("ONNX Runtime {version} loaded for serving")
            }
            ferroflow_serving::RuntimeStatus::Unavailable { reason } => {
                tracing::warn!("serving endpoints unavailable: {reason}")
            }
        }
        let endpoints = EndpointManager::new(
            db.clone(),
            registry_service.clone(),
            (*artifacts.clone().into_inner()).clone(),
            ServingMetrics::new(metrics.registry()),
        );
        endpoints
            .load_persisted()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        endpoints.spawn_watcher(std::time::Duration::from_millis(
            config.serving_poll_ms.max(10),
        ));
        let automl = ferroflow_automl::AutomlService::new(
            db.clone(),
            tracking.clone(),
            registry_service.clone(),
            (*artifacts.clone().into_inner()).clone(),
        );
        automl
            .init()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let features = web::Data::new(ferroflow_features::FeatureService::new(
            db.clone(),
            tracking.clone(),
            (*artifacts.clone().into_inner()).clone(),
            ferroflow_features::OnlineStore::open(config.online_store.as_deref(), &db)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?,
            config.feature_table_locations.clone(),
        ));
        endpoints.set_feature_source(std::sync::Arc::new(
            (*features.clone().into_inner()).clone(),
        ));
        let automl_service = automl.clone();
        let automl = web::Data::new(automl);
        let endpoint_manager = endpoints.clone();
        let endpoints = web::Data::new(endpoints);
        let registry = web::Data::new(registry_service);
        let tracking = web::Data::new(tracking);
        let db_data = web::Data::new(db.clone());
        let metrics = web::Data::new(metrics);
        let ui = web::Data::new(ui::Ui {
            folder: ui::find_folder(config.static_folder.as_deref()),
            prefix: config.static_prefix.clone(),
        });
        match &ui.folder {
            Some(folder) => tracing::info!("MLflow UI: {}", folder.display()),
            None => tracing::info!("no MLflow UI bundle found (scripts/mlflow-ui.sh installs it)"),
        }
        let gate = if config.auth_enabled() {
            let auth_config =
                ferroflow_auth::AuthConfig::from_env().map_err(|e| anyhow::anyhow!(e.message))?;
            let auth = ferroflow_auth::AuthService::new(
                db.clone(),
                auth_config,
                ferroflow_auth::service::DEFAULT_CACHE_TTL,
            );
            auth.bootstrap()
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            tracing::info!("authentication on (basic-auth): every request needs credentials");
            Some((
                web::Data::new(auth.clone()),
                web::Data::new(auth_gate::Gate::new(auth, config.public_metrics)),
            ))
        } else {
            None
        };
        let graphql_schema = web::Data::new(graphql::schema());
        let graphql_services = web::Data::new(graphql::Services {
            tracking: (**tracking).clone(),
            registry: (**registry).clone(),
            artifacts: (**artifacts).clone(),
            access: None,
        });
        let server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(tracking.clone())
                .app_data(registry.clone())
                .app_data(db_data.clone())
                .app_data(metrics.clone())
                .app_data(artifacts.clone())
                .app_data(endpoints.clone())
                .app_data(automl.clone())
                .app_data(features.clone())
                .app_data(ui.clone())
                .app_data(graphql_schema.clone())
                .app_data(graphql_services.clone())
                .app_data(web::PayloadConfig::new(ferroflow_core::http::MAX_JSON_BODY))
                // The gate inside the limits: a body too large for it to read is a 413 the
                // limits middleware words and drains.
                .wrap(middleware::from_fn(auth_gate::gate))
                .wrap(middleware::from_fn(limits::over_limit))
                .wrap(middleware::from_fn(metrics::track))
                .wrap(middleware::from_fn(ui::strip_prefix))
                .route("/health", web::get().to(health))
                .route("/version", web::get().to(version))
                .route("/metrics", web::get().to(metrics::metrics_endpoint));
            for version3 in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"] {
                app = app.route(
                    &format!("{version3}/server-info"),
                    web::get().to(move || server_info(multipart_uploads)),
                );
            }
            if let Some((auth, gate)) = &gate {
                app = app
                    .app_data(auth.clone())
                    .app_data(gate.clone())
                    .configure(ferroflow_auth::configure);
            }
            // First: actix tries routes in order, and inference is the hottest path.
            app = app.configure(ferroflow_serving::endpoints::configure);
            // Before the `/api/2.0/mlflow` scopes: `artifacts/list` is matched here.
            app = app.configure(ferroflow_tracking::artifacts::configure);
            app = app.configure(ferroflow_automl::configure);
            app = app.configure(ferroflow_features::configure);
            // Before the `/ajax-api/2.0/mlflow` scope, which would answer its paths with 404.
            app = app.configure(ui_api::configure);
            for prefix in API_PREFIXES {
                app = app.service(
                    web::scope(prefix)
                        .configure(ferroflow_tracking::configure)
                        .configure(ferroflow_registry::configure),
                );
            }
            app = app
                .route("/graphql", web::post().to(graphql::handle))
                .route("/graphql", web::get().to(graphql::handle));
            app = app.configure(ui::configure);
            app.default_service(web::to(not_found))
        })
        .on_connect(set_nodelay)
        .keep_alive(KEEP_ALIVE)
        .workers(workers)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            db,
            endpoints: endpoint_manager,
            automl: automl_service,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (gracefully, as SIGTERM does).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then stops the background tasks that read the store, then
    /// closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let res = self.server.await;
        self.endpoints.stop_watcher().await;
        self.automl.shutdown().await;
        self.db.close().await;
        res
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}

async fn version() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .insert_header(("X-Ferroflow-Version", env!("CARGO_PKG_VERSION")))
        .body(MLFLOW_API_VERSION)
}

/// `GET /api/3.0/mlflow/server-info`, with the keys MLflow 3.17.2 answers. Multipart
/// uploads and presigned downloads are offered on S3 destinations, as MLflow's
/// `S3ArtifactRepository` offers them; the client then moves bytes straight to S3.
async fn server_info(multipart_uploads: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": multipart_uploads,
        "multipart_downloads_enabled": multipart_uploads,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": { "gateway": false },
    }))
}

async fn not_found(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    let known = ferroflow_tracking::routes::ROUTES
        .iter()
        .chain(ferroflow_registry::routes::ROUTES)
        .any(|(_, p, _)| {
            API_PREFIXES
                .iter()
                .any(|prefix| req.path() == format!("{prefix}{p}"))
        })
        || ferroflow_tracking::artifacts::routes::is_artifact_route(req.path());
    let err = if known {
        Error::new(
            ErrorCode::BadRequest,
            format!("Method {} is not allowed for {}", req.method(), req.path()),
        )
    } else {
        Error::new(
            ErrorCode::EndpointNotFound,
            format!("No endpoint {} {}", req.method(), req.path()),
        )
    };
    let status = if known {
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED
    } else {
        err.code.http_status()
    };
    Ok(HttpResponse::build(status)
        .json(json!({ "error_code": err.code.as_str(), "message": err.message })))
}
