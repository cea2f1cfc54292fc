//! Prometheus families of serving endpoints, labelled by endpoint, served model and version.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct ServingMetrics {
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub batch_rows: HistogramVec,
    pub queue_depth: IntGaugeVec,
}

const LABELS: [&str; 3] = ["endpoint", "served_model", "version"];

impl ServingMetrics {
    /// Creates the families and registers them on `registry`.
    pub fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "ferroflow_serving_requests_total",
                "Inference requests by endpoint, served model, version and HTTP status",
            ),
            &["endpoint", "served_model", "version", "status"],
        )
        .expect("valid metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "ferroflow_serving_request_duration_seconds",
                "Inference latency inside the server (parse, queue, run, shape)",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                0.25, 1.0,
            ]),
            &LABELS,
        )
        .expect("valid metric definition");
        let batch_rows = HistogramVec::new(
            HistogramOpts::new(
                "ferroflow_serving_batch_rows",
                "Rows per model run (dynamic batching coalesces requests)",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
            ]),
            &LABELS,
        )
        .expect("valid metric definition");
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "ferroflow_serving_queue_depth",
                "Requests waiting for an inference worker",
            ),
            &LABELS,
        )
        .expect("valid metric definition");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(batch_rows.clone()),
            Box::new(queue_depth.clone()),
        ] {
            registry
                .register(c)
                .expect("serving metrics registered once");
        }
        ServingMetrics {
            requests,
            latency,
            batch_rows,
            queue_depth,
        }
    }
}
