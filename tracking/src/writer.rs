//! Group commit for SQLite: run-logging batches from concurrent requests are applied on the
//! single writer connection inside one transaction, so the commit (and its WAL write) is paid
//! once per group instead of once per request. PostgreSQL does not need it: its writers run
//! concurrently on their own connections.

use ferroflow_core::{Db, Error, Result, StorageContext};
use tokio::sync::{mpsc, oneshot};

use crate::service::{apply_batches, Batch};
use crate::store;

/// Requests waiting for the writer before senders are made to wait (back-pressure).
const QUEUE_CAPACITY: usize = 1024;
/// Most metrics, params and tags applied in one transaction; bounds a group's latency.
const MAX_ENTITIES_PER_GROUP: usize = 20_000;
/// Points collected in `metrics_recent` before they are merged into `metrics`.
pub const DEFAULT_MERGE_THRESHOLD: usize = 100_000;

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
    /// Starts the writer task on the current tokio runtime; it merges recent metric points
    /// into the history table whenever `merge_threshold` of them have accumulated.
    pub fn spawn(db: Db, merge_threshold: usize) -> BatchWriter {
        let (jobs, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(db, rx, merge_threshold));
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

async fn run(db: Db, mut rx: mpsc::Receiver<Job>, merge_threshold: usize) {
    let mut unmerged = store::recent_metric_count(&db).await.unwrap_or(0).max(0) as usize;
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
            if result.is_ok() {
                unmerged += job.batch.metric_count();
            }
            // The requester may have gone away; its batch is committed regardless.
            let _ = job.reply.send(result);
        }
        if unmerged >= merge_threshold {
            match merge(&db).await {
                Ok(()) => unmerged = 0,
                // Points stay readable in metrics_recent; the next group tries again.
                Err(e) => tracing::error!(error = %e, "merging recent metrics failed"),
            }
        }
    }
}

async fn merge(db: &Db) -> Result<()> {
    let mut tx = db
        .writer()
        .begin()
        .await
        .context("failed to begin transaction")?;
    let moved = store::merge_recent_metrics(&mut tx).await?;
    tx.commit().await.context("failed to commit metric merge")?;
    tracing::debug!(moved, "merged recent metric points");
    Ok(())
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

#[cfg(test)]
mod tests {
    use ferroflow_core::{Db, StoreUri};

    use crate::model::NewMetric;
    use crate::service::{CreateRun, TrackingService};
    use crate::store;

    fn points(key: &str, steps: std::ops::Range<i64>) -> Vec<NewMetric> {
        steps
            .map(|step| NewMetric {
                model: None,
                key: key.into(),
                value: step as f64 * 0.5,
                timestamp: 7,
                step,
            })
            .collect()
    }

    #[tokio::test]
    async fn merged_and_recent_points_read_as_one_history() {
        let dir =
            std::env::temp_dir().join(format!("ferroflow-writer-{}", ferroflow_core::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&StoreUri::Sqlite(dir.join("t.db")), 4)
            .await
            .unwrap();
        let svc = TrackingService::with_merge_threshold(db.clone(), "mlflow-artifacts:/", 10);
        svc.init().await.unwrap();
        let exp = svc.create_experiment("e", None, &[]).await.unwrap();
        let run = svc
            .create_run(CreateRun {
                experiment_id: Some(exp),
                ..Default::default()
            })
            .await
            .unwrap()
            .info
            .run_id;

        // 12 points cross the threshold of 10 and are merged; the next 6 stay recent, and a
        // point logged again after its merge must not appear twice.
        svc.log_batch(&run, points("loss", 0..6), vec![], vec![])
            .await
            .unwrap();
        svc.log_batch(&run, points("loss", 6..12), vec![], vec![])
            .await
            .unwrap();
        svc.log_batch(&run, points("loss", 12..18), vec![], vec![])
            .await
            .unwrap();
        svc.log_batch(&run, points("loss", 0..1), vec![], vec![])
            .await
            .unwrap();
        assert_eq!(store::recent_metric_count(&db).await.unwrap(), 7);

        let history = svc
            .metric_history(&run, "loss", None, None)
            .await
            .unwrap()
            .items;
        let steps: Vec<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(steps, (0..18).collect::<Vec<_>>());
        assert_eq!(history[17].value.0, 8.5);
        let page = svc
            .metric_history(&run, "loss", Some(5), None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 5);
        assert!(page.next_page_token.is_some());
        let sampled = svc
            .metric_history_bulk_interval(std::slice::from_ref(&run), "loss", Some((10, 13)), None)
            .await
            .unwrap();
        assert_eq!(
            sampled.iter().map(|m| m.step).collect::<Vec<_>>(),
            vec![10, 11, 12, 13]
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
