//! Dynamic batching in front of non-reentrant runners, on dedicated OS threads.
//!
//! Requests wait in one queue. A worker takes the first request, then keeps taking queued
//! requests until it holds `max_batch_size` rows or `max_delay` has passed since it took the
//! first, concatenates every input along dimension 0, runs once, and splits every output back by
//! the requests' row counts. Dropping the [`Batcher`] closes the queue: workers still answer every
//! request already queued, then exit — a model swapped out by a hot reload drains this way.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ferroflow_core::{Error, ErrorCode};
use tokio::sync::oneshot;

use crate::tensor::{OutputValue, Tensor};

/// Runs a model on one set of input tensors (in graph input order). One per worker thread.
pub trait Runner: Send + 'static {
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<OutputValue>, Error>;
}

/// How requests are coalesced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most rows one run takes; 1 disables batching.
    pub max_batch_size: usize,
    /// How long a worker waits for more requests after taking the first, in microseconds.
    pub max_delay_us: u64,
    /// Worker threads, each owning its own runner (session).
    pub workers: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_batch_size: 1,
            max_delay_us: 0,
            workers: 2,
        }
    }
}

/// Called once per model run with the number of rows in it (for a batch-size histogram).
pub type BatchObserver = Arc<dyn Fn(usize) + Send + Sync>;

type Reply = oneshot::Sender<Result<Vec<OutputValue>, Error>>;

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    reply: Reply,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    batches: AtomicU64,
    rows: AtomicU64,
    observer: Mutex<Option<BatchObserver>>,
}

/// Counters since the batcher started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounters {
    pub batches: u64,
    pub rows: u64,
}

/// A queue plus worker threads running `R`.
pub struct Batcher {
    shared: Arc<Shared>,
    options: BatchOptions,
}

impl Batcher {
    /// Starts one worker thread per runner. `concat_ok` says whether inputs may be concatenated
    /// along dimension 0 (every input has a dynamic first dimension); when false, queued
    /// requests still run one by one.
    pub fn start<R: Runner>(runners: Vec<R>, options: BatchOptions, concat_ok: bool) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            batches: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            observer: Mutex::new(None),
        });
        let max_rows = if concat_ok {
            options.max_batch_size.max(1)
        } else {
            1
        };
        let max_delay = Duration::from_micros(options.max_delay_us);
        for (i, runner) in runners.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("ferroflow-infer-{i}"))
                .spawn(move || worker(shared, runner, max_rows, max_delay))
                .expect("failed to spawn an inference worker thread");
        }
        Batcher { shared, options }
    }

    pub fn options(&self) -> BatchOptions {
        self.options
    }

    /// Queues one request of `rows` rows and waits for its outputs.
    pub async fn submit(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
    ) -> Result<Vec<OutputValue>, Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.jobs.push_back(Job {
                inputs,
                rows,
                reply: tx,
            });
        }
        self.shared.ready.notify_one();
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorCode::InternalError,
                "the inference worker stopped before answering",
            ))
        })
    }

    /// Requests waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .jobs
            .len()
    }

    pub fn counters(&self) -> BatchCounters {
        BatchCounters {
            batches: self.shared.batches.load(Ordering::Relaxed),
            rows: self.shared.rows.load(Ordering::Relaxed),
        }
    }

    /// Installs the callback told the row count of every run.
    pub fn set_observer(&self, observer: BatchObserver) {
        *self
            .shared
            .observer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.ready.notify_all();
    }
}

/// Takes the next batch: None once the queue is closed and empty.
fn next_batch(shared: &Shared, max_rows: usize, max_delay: Duration) -> Option<Vec<Job>> {
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(first) = queue.jobs.pop_front() {
            let mut rows = first.rows;
            let mut batch = vec![first];
            let deadline = Instant::now() + max_delay;
            while rows < max_rows {
                if let Some(next) = queue.jobs.front() {
                    if rows + next.rows > max_rows {
                        break;
                    }
                    rows += next.rows;
                    batch.push(queue.jobs.pop_front().expect("front exists"));
                    continue;
                }
                let now = Instant::now();
                if queue.closed || now >= deadline {
                    break;
                }
                queue = shared
                    .ready
                    .wait_timeout(queue, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            return Some(batch);
        }
        if queue.closed {
            return None;
        }
        queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
    }
}

fn worker<R: Runner>(shared: Arc<Shared>, mut runner: R, max_rows: usize, max_delay: Duration) {
    while let Some(batch) = next_batch(&shared, max_rows, max_delay) {
        // Another worker may be idle while this one waited for more rows.
        shared.ready.notify_one();
        run_batch(&shared, &mut runner, batch);
    }
}

fn record(shared: &Shared, rows: usize) {
    shared.batches.fetch_add(1, Ordering::Relaxed);
    shared.rows.fetch_add(rows as u64, Ordering::Relaxed);
    let observer = shared
        .observer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(observe) = observer {
        observe(rows);
    }
}

fn run_one<R: Runner>(shared: &Shared, runner: &mut R, job: Job) {
    record(shared, job.rows);
    let result = runner.run(&job.inputs);
    let _ = job.reply.send(result);
}

fn run_batch<R: Runner>(shared: &Shared, runner: &mut R, batch: Vec<Job>) {
    if batch.len() == 1 {
        let job = batch.into_iter().next().expect("one job");
        return run_one(shared, runner, job);
    }
    let rows: Vec<usize> = batch.iter().map(|j| j.rows).collect();
    let total: usize = rows.iter().sum();
    let n_inputs = batch[0].inputs.len();
    let joined: Option<Vec<Tensor>> = (0..n_inputs)
        .map(|i| {
            let parts: Vec<&Tensor> = batch.iter().map(|j| &j.inputs[i]).collect();
            Tensor::concat(&parts).filter(|t| t.rows() == total)
        })
        .collect();
    let split = joined.and_then(|inputs| {
        let outputs = runner.run(&inputs).ok()?;
        let mut per_job: Vec<Vec<OutputValue>> =
            vec![Vec::with_capacity(outputs.len()); rows.len()];
        for output in &outputs {
            for (slot, piece) in per_job.iter_mut().zip(output.split(&rows)?) {
                slot.push(piece);
            }
        }
        Some(per_job)
    });
    match split {
        Some(per_job) => {
            record(shared, total);
            for (job, outputs) in batch.into_iter().zip(per_job) {
                let _ = job.reply.send(Ok(outputs));
            }
        }
        // Inputs that do not concatenate, a failed batched run or outputs not aligned with rows:
        // run each request alone so one bad request cannot fail the others.
        None => {
            for job in batch {
                run_one(shared, runner, job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;
    use std::sync::mpsc;

    /// Doubles its only input; records the row count of every run; optionally waits for a gate.
    struct Doubler {
        runs: mpsc::Sender<usize>,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
        entered: Arc<AtomicU64>,
    }

    impl Runner for Doubler {
        fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<OutputValue>, Error> {
            self.entered.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let (lock, cv) = &**gate;
                let mut open = lock.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            let TensorData::Float(v) = &inputs[0].data else {
                return Err(Error::invalid("want float"));
            };
            if v.iter().any(|x| x.is_nan()) {
                return Err(Error::invalid("NaN input"));
            }
            let _ = self.runs.send(inputs[0].rows());
            let doubled = v.iter().map(|x| x * 2.0).collect();
            Ok(vec![
                OutputValue::Tensor(Tensor::new(
                    inputs[0].shape.clone(),
                    TensorData::Float(doubled),
                )),
                OutputValue::MapSequence(
                    v.chunks(inputs[0].shape[1])
                        .map(|row| vec![(crate::tensor::MapKey::Int(0), row[0])])
                        .collect(),
                ),
            ])
        }
    }

    fn rows_tensor(first: f32, rows: usize) -> Tensor {
        let data = (0..rows * 2).map(|i| first + i as f32).collect();
        Tensor::new(vec![rows, 2], TensorData::Float(data))
    }

    type Gate = Arc<(Mutex<bool>, Condvar)>;

    fn gate() -> Gate {
        Arc::new((Mutex::new(false), Condvar::new()))
    }

    fn open(gate: &Arc<(Mutex<bool>, Condvar)>) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    /// A one-worker batcher over a `Doubler` that blocks on the returned gate, with the
    /// channel of rows per run and the count of runs entered.
    fn gated_batcher(
        max_batch_size: usize,
        concat_ok: bool,
    ) -> (Arc<Batcher>, mpsc::Receiver<usize>, Gate, Arc<AtomicU64>) {
        let (runs_tx, runs_rx) = mpsc::channel();
        let g = gate();
        let entered = Arc::new(AtomicU64::new(0));
        let batcher = Arc::new(Batcher::start(
            vec![Doubler {
                runs: runs_tx,
                gate: Some(g.clone()),
                entered: entered.clone(),
            }],
            BatchOptions {
                max_batch_size,
                max_delay_us: 0,
                workers: 1,
            },
            concat_ok,
        ));
        (batcher, runs_rx, g, entered)
    }

    /// Polls observable state (bounded), rather than sleeping for a guessed time.
    async fn wait_until(mut done: impl FnMut() -> bool) {
        for _ in 0..1_000_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        panic!("condition never became true");
    }

    async fn wait_for_depth(batcher: &Batcher, depth: usize) {
        wait_until(|| batcher.queue_depth() == depth).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn coalesces_queued_requests_up_to_max_batch_size_and_splits_results() {
        let (batcher, runs_rx, g, entered) = gated_batcher(4, true);
        // The first request occupies the worker (blocked on the gate); the next ones queue up.
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![rows_tensor(100.0, 1)], 1).await }
        });
        wait_until(|| entered.load(Ordering::SeqCst) == 1).await;
        let sizes = [1usize, 2, 1, 3, 1];
        let mut handles = Vec::new();
        for (i, &rows) in sizes.iter().enumerate() {
            let b = batcher.clone();
            handles.push(tokio::spawn(async move {
                b.submit(vec![rows_tensor(i as f32 * 10.0, rows)], rows)
                    .await
            }));
            wait_for_depth(&batcher, i + 1).await;
        }
        open(&g);
        first.await.unwrap().unwrap();
        for (i, (handle, &rows)) in handles.into_iter().zip(&sizes).enumerate() {
            let outputs = handle.await.unwrap().unwrap();
            let expected: Vec<f32> = (0..rows * 2)
                .map(|k| (i as f32 * 10.0 + k as f32) * 2.0)
                .collect();
            assert_eq!(
                outputs[0],
                OutputValue::Tensor(Tensor::new(vec![rows, 2], TensorData::Float(expected)))
            );
            assert_eq!(
                outputs[1].rows(),
                rows,
                "zipmap split by element for request {i}"
            );
        }
        let runs: Vec<usize> = runs_rx.try_iter().collect();
        // 1 (the blocker), then [1,2,1] = 4 rows, then [3,1] = 4 rows.
        assert_eq!(runs, vec![1, 4, 4]);
        assert_eq!(
            batcher.counters(),
            BatchCounters {
                batches: 3,
                rows: 9
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn runs_one_by_one_when_inputs_cannot_be_concatenated() {
        let (batcher, runs_rx, g, _entered) = gated_batcher(8, false);
        let mut handles = Vec::new();
        for i in 0..3 {
            let b = batcher.clone();
            handles.push(tokio::spawn(async move {
                b.submit(vec![rows_tensor(i as f32, 2)], 2).await
            }));
        }
        wait_for_depth(&batcher, 2).await;
        open(&g);
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(runs_rx.try_iter().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_request_does_not_fail_the_rest_of_its_batch() {
        let (batcher, _runs_rx, g, entered) = gated_batcher(16, true);
        let blocker = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![rows_tensor(0.0, 1)], 1).await }
        });
        wait_until(|| entered.load(Ordering::SeqCst) == 1).await;
        let good = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![rows_tensor(1.0, 1)], 1).await }
        });
        wait_for_depth(&batcher, 1).await;
        let bad = tokio::spawn({
            let b = batcher.clone();
            let t = Tensor::new(vec![1, 2], TensorData::Float(vec![f32::NAN, 0.0]));
            async move { b.submit(vec![t], 1).await }
        });
        wait_for_depth(&batcher, 2).await;
        open(&g);
        blocker.await.unwrap().unwrap();
        assert!(good.await.unwrap().is_ok());
        assert_eq!(bad.await.unwrap().unwrap_err().message, "NaN input");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn dropping_the_batcher_answers_every_queued_request() {
        let (runs_tx, runs_rx) = mpsc::channel();
        let g = gate();
        let entered = Arc::new(AtomicU64::new(0));
        let batcher = Batcher::start(
            vec![Doubler {
                runs: runs_tx,
                gate: Some(g.clone()),
                entered: entered.clone(),
            }],
            BatchOptions {
                max_batch_size: 1,
                max_delay_us: 0,
                workers: 1,
            },
            true,
        );
        // Enqueue without awaiting, so the batcher itself can be dropped while work is queued.
        let mut receivers = Vec::new();
        for i in 0..5 {
            let (tx, rx) = oneshot::channel();
            batcher.shared.queue.lock().unwrap().jobs.push_back(Job {
                inputs: vec![rows_tensor(i as f32, 1)],
                rows: 1,
                reply: tx,
            });
            receivers.push(rx);
        }
        batcher.shared.ready.notify_all();
        drop(batcher);
        open(&g);
        for rx in receivers {
            assert!(rx.await.unwrap().is_ok());
        }
        assert_eq!(runs_rx.try_iter().count(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn observer_sees_every_run_size() {
        let (runs_tx, _runs_rx) = mpsc::channel();
        let batcher = Batcher::start(
            vec![Doubler {
                runs: runs_tx,
                gate: None,
                entered: Arc::default(),
            }],
            BatchOptions::default(),
            true,
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        batcher.set_observer(Arc::new(move |rows| s.lock().unwrap().push(rows)));
        batcher.submit(vec![rows_tensor(0.0, 3)], 3).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![3]);
    }
}
