//! Group commit for SQLite: run-logging batches from concurrent requests are applied on the
//! single writer connection inside one transaction, so the commit (and its WAL write) is paid
//! once per group instead of once per request. PostgreSQL does not need it: its writers run
//! concurrently on their own connections.

use ferroflow_core::{Db, Error, Result, StorageContext};
use tokio::sync::{mpsc, oneshot};

use crate::service::{apply_batches, Batch};

/// Requests waiting for the writer before senders are made to wait (back-pressure).
const QUEUE_CAPACITY: usize = 1024;
/// Most metrics, params and tags applied in one transaction; bounds a group's latency.
const MAX_ENTITIES_PER_GROUP: usize = 20_000;

struct Job {
    run_id: String,
    batch: Batch,
    reply: oneshot::Sender<Result<()>>,
}

/// Handle to the group-commit task.
#[derive(Clone, Debug)]
pub struct BatchWriter {
    jobs: mpsc::Sender<Job>,
}

impl BatchWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(db: Db) -> BatchWriter {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(db, rx));
        BatchWriter { jobs }
    }

    /// Applies a validated batch; returns once its group has committed (or failed).
    pub async fn submit(&self, run_id: &str, batch: Batch) -> Result<()> {
        let (reply, done) = oneshot::channel();
        let job = Job {
            run_id: run_id.to_string(),
            batch,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::internal("the metric writer has stopped"))?;
        done.await
            .map_err(|_| Error::internal("the metric writer dropped a batch"))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut entities = first.batch.len();
        let mut jobs = vec![first];
        while entities < MAX_ENTITIES_PER_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    entities += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let results = apply_group(&db, &jobs).await;
        for (job, result) in jobs.into_iter().zip(results) {
            // The requester may have gone away; its batch is committed regardless.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction for the whole group. A batch rejected by validation (inactive run, changed
/// param) fails alone, before it writes anything; a storage error aborts the transaction and
/// fails every batch of the group.
async fn apply_group(db: &Db, jobs: &[Job]) -> Vec<Result<()>> {
    let fail_all = |e: Error| jobs.iter().map(|_| Err(e.clone())).collect();
    let mut tx = match db
        .writer()
        .begin()
        .await
        .context("failed to begin transaction")
    {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let batches: Vec<(&str, &Batch)> = jobs.iter().map(|j| (j.run_id.as_str(), &j.batch)).collect();
    let results = match apply_batches(&mut tx, &batches).await {
        Ok(results) => results,
        Err(e) => return fail_all(e),
    };
    match tx.commit().await.context("failed to commit batch") {
        Ok(()) => results,
        Err(e) => fail_all(e),
    }
}
