//! The limit serving is measured against: one-row inference straight through ONNX Runtime,
//! no HTTP, no parsing, no batcher. Prints single-thread p50/p99 latency and throughput with
//! one session per thread.
//!
//! Usage: bare_ort <model.onnx> <features> [seconds=5] [threads=2]

use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::Tensor;

fn session(bytes: &[u8]) -> Result<Session, String> {
    let env = ferroflow_serving::runtime::environment().map_err(|e| e.message)?;
    let mut builder = Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_intra_threads(1)
        .map_err(|e| e.to_string())?;
    builder.commit_from_memory(bytes).map_err(|e| e.to_string())
}

fn run_once(s: &mut Session, name: &str, width: usize) -> Result<(), String> {
    let x =
        Tensor::from_array(([1usize, width], vec![0.5f32; width])).map_err(|e| e.to_string())?;
    s.run(vec![(name.to_string(), x.into_dyn())])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: bare_ort <model.onnx> <features> [seconds] [threads]".into());
    }
    let width: usize = args[2].parse().map_err(|_| "features must be a number")?;
    let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let threads: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2);
    if let ferroflow_serving::RuntimeStatus::Unavailable { reason } =
        ferroflow_serving::init_runtime(None)
    {
        return Err(reason);
    }
    let bytes = std::fs::read(&args[1]).map_err(|e| e.to_string())?;
    let mut s = session(&bytes)?;
    let name = s.inputs()[0].name().to_string();
    let mut lat = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let t = Instant::now();
        run_once(&mut s, &name, width)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    println!(
        "bare ort 1 thread: p50 {:.1} us, p99 {:.1} us, {:.0} inferences/s",
        pct(0.5),
        pct(0.99),
        lat.len() as f64 / secs
    );
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let bytes = &bytes;
                let name = &name;
                scope.spawn(move || -> Result<usize, String> {
                    let mut s = session(bytes)?;
                    let end = Instant::now() + Duration::from_secs_f64(secs);
                    let mut n = 0;
                    while Instant::now() < end {
                        run_once(&mut s, name, width)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").unwrap_or(0))
            .sum()
    });
    println!(
        "bare ort {threads} threads: {:.0} inferences/s",
        total as f64 / secs
    );
    Ok(())
}
