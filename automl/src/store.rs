//! SQL of AutoML jobs: the `automl_runs` table (migration 0006).

use ferroflow_core::{Db, Result, StorageContext};
use sqlx::Row;

/// A job row.
pub struct StoredJob {
    pub id: String,
    pub state: String,
    pub request: String,
    pub experiment_id: String,
    pub parent_run_id: String,
    pub progress: String,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

const COLUMNS: &str = "id, state, request, experiment_id, parent_run_id, progress, summary, \
                       error, creation_timestamp, last_updated_timestamp";

fn decode(row: &sqlx::any::AnyRow) -> Result<StoredJob> {
    let ctx = "failed to decode an AutoML run";
    Ok(StoredJob {
        id: row.try_get(0).context(ctx)?,
        state: row.try_get(1).context(ctx)?,
        request: row.try_get(2).context(ctx)?,
        experiment_id: row.try_get(3).context(ctx)?,
        parent_run_id: row.try_get(4).context(ctx)?,
        progress: row.try_get(5).context(ctx)?,
        summary: row.try_get(6).context(ctx)?,
        error: row.try_get(7).context(ctx)?,
        creation_timestamp: row.try_get(8).context(ctx)?,
        last_updated_timestamp: row.try_get(9).context(ctx)?,
    })
}

pub async fn insert(db: &Db, job: &StoredJob) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO automl_runs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&job.id)
    .bind(&job.state)
    .bind(&job.request)
    .bind(&job.experiment_id)
    .bind(&job.parent_run_id)
    .bind(&job.progress)
    .bind(&job.summary)
    .bind(&job.error)
    .bind(job.creation_timestamp)
    .bind(job.last_updated_timestamp)
    .execute(db.writer())
    .await
    .context("failed to store an AutoML run")?;
    Ok(())
}

/// Rewrites the mutable fields of a job.
pub async fn update(
    db: &Db,
    id: &str,
    state: &str,
    progress: &str,
    summary: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE automl_runs SET state = $1, progress = $2, summary = $3, error = $4, \
         last_updated_timestamp = $5 WHERE id = $6",
    )
    .bind(state)
    .bind(progress)
    .bind(summary)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(db.writer())
    .await
    .context("failed to update an AutoML run")?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<StoredJob>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM automl_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .context("failed to read an AutoML run")?;
    row.as_ref().map(decode).transpose()
}

pub async fn list(db: &Db, limit: i64) -> Result<Vec<StoredJob>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM automl_runs ORDER BY creation_timestamp DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.reader())
    .await
    .context("failed to list AutoML runs")?;
    rows.iter().map(decode).collect()
}

/// Jobs whose server stopped can never finish: mark those not updated since `stale_before`
/// failed.
pub async fn fail_interrupted(db: &Db, now: i64, stale_before: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE automl_runs SET state = 'FAILED', error = $1, last_updated_timestamp = $2 \
         WHERE state = 'RUNNING' AND last_updated_timestamp < $3",
    )
    .bind("The server stopped while this AutoML run was in progress")
    .bind(now)
    .bind(stale_before)
    .execute(db.writer())
    .await
    .context("failed to update interrupted AutoML runs")?;
    Ok(done.rows_affected())
}
