//! Prometheus metrics: per-route request counts, latency and status, plus DB pool gauges.

use std::time::Instant;

use tracing::Instrument;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use ferroflow_core::Db;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The metric families ferroflow exports, registered on their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    artifact_bytes: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "ferroflow_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "ferroflow_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric definition");
        let pool = IntGaugeVec::new(
            Opts::new(
                "ferroflow_db_pool_connections",
                "Backend store pool connections by state",
            ),
            &["state"],
        )
        .expect("valid metric definition");
        let artifact_bytes = IntCounterVec::new(
            Opts::new(
                "ferroflow_artifact_bytes_total",
                "Proxied artifact bytes received (in) and sent (out)",
            ),
            &["direction"],
        )
        .expect("valid metric definition");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool.clone()),
            Box::new(artifact_bytes.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool,
            artifact_bytes,
        }
    }

    /// The registry every family is exported from (capabilities register their own).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The artifact byte counters, for the artifact service.
    pub fn artifact_counters(&self) -> ferroflow_tracking::artifacts::ByteCounters {
        ferroflow_tracking::artifacts::ByteCounters {
            bytes_in: self.artifact_bytes.with_label_values(&["in"]),
            bytes_out: self.artifact_bytes.with_label_values(&["out"]),
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self, db: &Db) -> String {
        let (open, idle) = db.pool_stats();
        self.pool.with_label_values(&["open"]).set(open as i64);
        self.pool.with_label_values(&["idle"]).set(idle as i64);
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: records every request under its route pattern (not its raw path, so ids do
/// not explode label cardinality). `/metrics` and `/health` are not recorded.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    if path == "/metrics" || path == "/health" {
        return next.call(req).await;
    }
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let span = tracing::info_span!("request", method = %method, path = %req.path());
    let started = Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16();
    span.in_scope(|| tracing::debug!(route, status, micros = elapsed.as_micros() as u64, "served"));
    if let Some(m) = metrics {
        m.observe(&method, &route, status, elapsed.as_secs_f64());
    }
    Ok(res)
}

pub async fn metrics_endpoint(metrics: web::Data<Metrics>, db: web::Data<Db>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(&db))
}
