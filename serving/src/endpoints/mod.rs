//! Serving endpoints hosted by `ferroflow server` (Databricks Model Serving shape).

pub mod capture;
pub mod config;
pub mod features;
pub mod manager;
pub mod metrics;
pub mod routes;
mod store;

/// A uniform draw in [0, 1) for traffic splits and log sampling: xorshift64* per thread,
/// seeded from std's per-thread random keys (no syscall per request, unlike a UUID).
pub(crate) fn random_fraction() -> f64 {
    use std::cell::Cell;
    use std::hash::BuildHasher;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

pub use config::{EndpointConfig, ServedModelConfig, Target};
pub use manager::EndpointManager;
pub use metrics::ServingMetrics;
pub use routes::{configure, ROUTES};
