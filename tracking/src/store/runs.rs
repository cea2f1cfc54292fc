//! Runs, params, tags, inputs and outputs.

use std::collections::HashMap;

use ferroflow_core::{Backend, Db, Error, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{opt_i64, SqlBuilder};
use crate::model::{
    Dataset, DatasetInput, KeyValue, Metric, MetricValue, ModelIo, NewRun, Run, RunData, RunInfo,
    RunInputs, RunOutputs, LIFECYCLE_ACTIVE,
};

pub(crate) const RUN_COLUMNS: &str = "r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, \
     r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

fn run_info_from_row(row: &AnyRow) -> Result<RunInfo> {
    let read = || -> std::result::Result<RunInfo, sqlx::Error> {
        let id: String = row.try_get("run_uuid")?;
        Ok(RunInfo {
            run_uuid: id.clone(),
            experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
            run_name: row.try_get("name")?,
            user_id: row.try_get("user_id")?,
            status: row.try_get("status")?,
            start_time: opt_i64(row, "start_time"),
            end_time: opt_i64(row, "end_time"),
            artifact_uri: row.try_get("artifact_uri")?,
            lifecycle_stage: row.try_get("lifecycle_stage")?,
            run_id: id,
        })
    };
    read().context("failed to decode run row")
}

pub async fn insert_run(conn: &mut AnyConnection, run: &NewRun) -> Result<()> {
    sqlx::query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) \
         VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7)",
    )
    .bind(&run.run_id)
    .bind(run.experiment_id)
    .bind(&run.name)
    .bind(&run.user_id)
    .bind(run.start_time)
    .bind(LIFECYCLE_ACTIVE)
    .bind(&run.artifact_uri)
    .execute(&mut *conn)
    .await
    .context("failed to insert run")?;
    upsert_tags(conn, &run.run_id, &run.tags).await
}

/// Lifecycle stage of each existing run among `run_ids`.
pub async fn run_stages(
    conn: &mut AnyConnection,
    run_ids: &[&str],
) -> Result<HashMap<String, String>> {
    if run_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = SqlBuilder::new(
        Backend::of(conn),
        "SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid IN ",
    );
    q.bind_text_list(run_ids.iter().copied());
    q.query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to read run lifecycle stages")?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .context("failed to decode run lifecycle stages")
}

/// The run's lifecycle stage, or None if no such run.
pub async fn run_stage(conn: &mut AnyConnection, run_id: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = $1")
        .bind(run_id)
        .fetch_optional(conn)
        .await
        .context("failed to read run lifecycle stage")
}

pub async fn run_info(db: &Db, run_id: &str) -> Result<Option<RunInfo>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1");
    let row = sqlx::query(&sql)
        .bind(run_id)
        .fetch_optional(db.reader())
        .await
        .context("failed to read run")?;
    row.as_ref().map(run_info_from_row).transpose()
}

/// Sets status / end time / name of a run (each only when given).
pub async fn update_run(
    conn: &mut AnyConnection,
    run_id: &str,
    status: Option<&str>,
    end_time: Option<i64>,
    name: Option<&str>,
) -> Result<()> {
    let mut q = SqlBuilder::new(
        ferroflow_core::Backend::of(conn),
        "UPDATE runs SET run_uuid = run_uuid",
    );
    if let Some(s) = status {
        q.push(", status = ").bind_text(s);
    }
    if let Some(t) = end_time {
        q.push(", end_time = ").bind_int(t);
    }
    if let Some(n) = name {
        q.push(", name = ").bind_text(n);
    }
    q.push(" WHERE run_uuid = ").bind_text(run_id);
    q.query()
        .execute(conn)
        .await
        .context("failed to update run")?;
    Ok(())
}

pub async fn set_run_stage(
    conn: &mut AnyConnection,
    run_id: &str,
    stage: &str,
    deleted_time: Option<i64>,
) -> Result<()> {
    sqlx::query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3")
        .bind(stage)
        .bind(deleted_time)
        .bind(run_id)
        .execute(conn)
        .await
        .context("failed to update run lifecycle stage")?;
    Ok(())
}

pub async fn upsert_tags(conn: &mut AnyConnection, run_id: &str, tags: &[KeyValue]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new(
        ferroflow_core::Backend::of(conn),
        "INSERT INTO tags (run_uuid, key, value) VALUES ",
    );
    for (i, t) in tags.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        q.bind_text(run_id)
            .push(", ")
            .bind_text(&t.key)
            .push(", ")
            .bind_text(&t.value)
            .push(")");
    }
    q.push(" ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value");
    q.query()
        .execute(conn)
        .await
        .context("failed to set run tags")?;
    Ok(())
}

pub async fn delete_tag(conn: &mut AnyConnection, run_id: &str, key: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM tags WHERE run_uuid = $1 AND key = $2")
        .bind(run_id)
        .bind(key)
        .execute(conn)
        .await
        .context("failed to delete run tag")?;
    Ok(done.rows_affected() > 0)
}

/// Inserts params; a key already logged with another value is INVALID_PARAMETER_VALUE and
/// nothing is written (the caller's transaction rolls back).
pub async fn insert_params(
    conn: &mut AnyConnection,
    run_id: &str,
    params: &[KeyValue],
) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new(
        ferroflow_core::Backend::of(conn),
        "SELECT key, value FROM params WHERE run_uuid = ",
    );
    q.bind_text(run_id)
        .push(" AND key IN ")
        .bind_text_list(params.iter().map(|p| p.key.as_str()));
    let existing: HashMap<String, String> = q
        .query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to read existing params")?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .context("failed to decode params")?;
    let mut new = Vec::new();
    for p in params {
        match existing.get(&p.key) {
            Some(old) if *old != p.value => {
                return Err(Error::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with \
                     value='{}' for run ID='{}'. Attempted logging new value '{}'.",
                    p.key, old, run_id, p.value
                )))
            }
            Some(_) => {}
            None => new.push(p),
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new(
        ferroflow_core::Backend::of(conn),
        "INSERT INTO params (run_uuid, key, value) VALUES ",
    );
    for (i, p) in new.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        q.bind_text(run_id)
            .push(", ")
            .bind_text(&p.key)
            .push(", ")
            .bind_text(&p.value)
            .push(")");
    }
    q.query()
        .execute(conn)
        .await
        .context("failed to insert params")?;
    Ok(())
}

/// Records dataset inputs of a run (datasets are shared per experiment by name and digest).
pub async fn insert_dataset_inputs(
    conn: &mut AnyConnection,
    experiment_id: i64,
    run_id: &str,
    inputs: &[DatasetInput],
) -> Result<()> {
    for input in inputs {
        let d = &input.dataset;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
        )
        .bind(experiment_id)
        .bind(&d.name)
        .bind(&d.digest)
        .fetch_optional(&mut *conn)
        .await
        .context("failed to look up dataset")?;
        let dataset_uuid = match existing {
            Some(id) => id,
            None => {
                let id = ferroflow_core::new_id();
                sqlx::query(
                    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, \
                     dataset_source, dataset_schema, dataset_profile) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&id)
                .bind(experiment_id)
                .bind(&d.name)
                .bind(&d.digest)
                .bind(&d.source_type)
                .bind(&d.source)
                .bind(d.schema.as_deref())
                .bind(d.profile.as_deref())
                .execute(&mut *conn)
                .await
                .context("failed to insert dataset")?;
                id
            }
        };
        let input_uuid = ferroflow_core::new_id();
        let inserted = sqlx::query(
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES ($1, 'DATASET', $2, 'RUN', $3, 0) ON CONFLICT DO NOTHING",
        )
        .bind(&input_uuid)
        .bind(&dataset_uuid)
        .bind(run_id)
        .execute(&mut *conn)
        .await
        .context("failed to insert run input")?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        for tag in &input.tags {
            sqlx::query("INSERT INTO input_tags (input_uuid, name, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&input_uuid)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *conn)
                .await
                .context("failed to insert input tag")?;
        }
    }
    Ok(())
}

/// Links logged models to a run as inputs (`MODEL_INPUT`) or outputs (`MODEL_OUTPUT`).
pub async fn insert_model_links(
    conn: &mut AnyConnection,
    run_id: &str,
    models: &[ModelIo],
    output: bool,
) -> Result<()> {
    let (source_type, destination_type) = if output {
        ("RUN_OUTPUT", "MODEL_OUTPUT")
    } else {
        ("RUN_INPUT", "MODEL_INPUT")
    };
    for m in models {
        sqlx::query(
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(ferroflow_core::new_id())
        .bind(source_type)
        .bind(run_id)
        .bind(destination_type)
        .bind(&m.model_id)
        .bind(m.step.unwrap_or(0))
        .execute(&mut *conn)
        .await
        .context("failed to link logged model to run")?;
    }
    Ok(())
}

/// Loads full runs (info, latest metrics, params, tags, inputs, outputs) in the given order.
pub async fn load_runs(db: &Db, infos: Vec<RunInfo>) -> Result<Vec<Run>> {
    if infos.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = infos.iter().map(|r| r.run_uuid.as_str()).collect();
    let pool = db.reader();

    let mut data: HashMap<String, RunData> = HashMap::new();
    let mut q = SqlBuilder::new(db.backend, "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid IN ");
    q.bind_text_list(ids.iter().copied())
        .push(" ORDER BY run_uuid, key");
    for row in q
        .query()
        .fetch_all(pool)
        .await
        .context("failed to read latest metrics")?
    {
        let read = || -> std::result::Result<(String, Metric), sqlx::Error> {
            let is_nan: i64 = row.try_get(5)?;
            let value: f64 = row.try_get(2)?;
            Ok((
                row.try_get(0)?,
                Metric {
                    key: row.try_get(1)?,
                    value: MetricValue(if is_nan != 0 { f64::NAN } else { value }),
                    timestamp: row.try_get(3)?,
                    step: row.try_get(4)?,
                },
            ))
        };
        let (id, m) = read().context("failed to decode metric")?;
        data.entry(id).or_default().metrics.push(m);
    }
    for (table, is_params) in [("params", true), ("tags", false)] {
        let mut q = SqlBuilder::new(
            db.backend,
            format!("SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN "),
        );
        q.bind_text_list(ids.iter().copied())
            .push(" ORDER BY run_uuid, key");
        for row in q
            .query()
            .fetch_all(pool)
            .await
            .context("failed to read params and tags")?
        {
            let read = || -> std::result::Result<(String, KeyValue), sqlx::Error> {
                Ok((
                    row.try_get(0)?,
                    KeyValue {
                        key: row.try_get(1)?,
                        value: row.try_get(2)?,
                    },
                ))
            };
            let (id, kv) = read().context("failed to decode param or tag")?;
            let d = data.entry(id).or_default();
            if is_params {
                d.params.push(kv)
            } else {
                d.tags.push(kv)
            }
        }
    }
    let mut inputs = load_dataset_inputs(db, &ids).await?;
    let mut models = load_model_links(db, &ids).await?;

    Ok(infos
        .into_iter()
        .map(|info| {
            let id = info.run_uuid.clone();
            let (model_inputs, model_outputs) = models.remove(&id).unwrap_or_default();
            Run {
                data: data.remove(&id).unwrap_or_default(),
                inputs: RunInputs {
                    dataset_inputs: inputs.remove(&id).unwrap_or_default(),
                    model_inputs,
                },
                outputs: RunOutputs { model_outputs },
                info,
            }
        })
        .collect())
}

async fn load_dataset_inputs(db: &Db, ids: &[&str]) -> Result<HashMap<String, Vec<DatasetInput>>> {
    let mut q = SqlBuilder::new(db.backend,
        "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, \
         d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id \
         WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id IN ",
    );
    q.bind_text_list(ids.iter().copied())
        .push(" ORDER BY i.destination_id, d.name, i.input_uuid");
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read run inputs")?;
    let mut by_input: Vec<(String, String, DatasetInput)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let read = || -> std::result::Result<(String, String, DatasetInput), sqlx::Error> {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                DatasetInput {
                    tags: Vec::new(),
                    dataset: Dataset {
                        name: row.try_get(2)?,
                        digest: row.try_get(3)?,
                        source_type: row.try_get(4)?,
                        source: row.try_get(5)?,
                        schema: row.try_get(6)?,
                        profile: row.try_get(7)?,
                    },
                },
            ))
        };
        by_input.push(read().context("failed to decode dataset input")?);
    }
    if !by_input.is_empty() {
        let mut q = SqlBuilder::new(
            db.backend,
            "SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN ",
        );
        q.bind_text_list(by_input.iter().map(|(_, u, _)| u.as_str()))
            .push(" ORDER BY input_uuid, name");
        let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
        for row in q
            .query()
            .fetch_all(db.reader())
            .await
            .context("failed to read input tags")?
        {
            let read = || -> std::result::Result<(String, KeyValue), sqlx::Error> {
                Ok((
                    row.try_get(0)?,
                    KeyValue {
                        key: row.try_get(1)?,
                        value: row.try_get(2)?,
                    },
                ))
            };
            let (u, kv) = read().context("failed to decode input tag")?;
            tags.entry(u).or_default().push(kv);
        }
        for (_, u, input) in &mut by_input {
            input.tags = tags.remove(u.as_str()).unwrap_or_default();
        }
    }
    let mut out: HashMap<String, Vec<DatasetInput>> = HashMap::new();
    for (run, _, input) in by_input {
        out.entry(run).or_default().push(input);
    }
    Ok(out)
}

/// `(experiment_id, name, digest, context)` of the datasets runs of these experiments used,
/// each distinct combination once (at most `limit`), as MLflow's `_search_datasets`: the
/// context is the input's `mlflow.data.context` tag, None without one.
pub async fn dataset_summaries(
    db: &Db,
    experiment_ids: &[i64],
    limit: i64,
) -> Result<Vec<(i64, String, String, Option<String>)>> {
    let mut q = SqlBuilder::new(
        db.backend,
        "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value FROM datasets d \
         JOIN inputs i ON i.source_id = d.dataset_uuid AND i.source_type = 'DATASET' \
         LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.name = 'mlflow.data.context' \
         WHERE d.experiment_id IN (",
    );
    for (n, id) in experiment_ids.iter().enumerate() {
        if n > 0 {
            q.push(", ");
        }
        q.bind_int(*id);
    }
    q.push(") ORDER BY d.experiment_id, d.name, d.digest, t.value LIMIT ")
        .bind_int(limit);
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read dataset summaries")?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ))
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .context("failed to decode dataset summaries")
}

type ModelLinks = (Vec<ModelIo>, Vec<ModelIo>);

async fn load_model_links(db: &Db, ids: &[&str]) -> Result<HashMap<String, ModelLinks>> {
    let mut q = SqlBuilder::new(
        db.backend,
        "SELECT source_id, destination_type, destination_id, step FROM inputs \
         WHERE source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND source_id IN ",
    );
    q.bind_text_list(ids.iter().copied())
        .push(" ORDER BY source_id, destination_id");
    let mut out: HashMap<String, ModelLinks> = HashMap::new();
    for row in q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to read run model links")?
    {
        let read = || -> std::result::Result<(String, String, ModelIo), sqlx::Error> {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                ModelIo {
                    model_id: row.try_get(2)?,
                    step: Some(row.try_get(3)?),
                },
            ))
        };
        let (run, kind, link) = read().context("failed to decode run model link")?;
        let entry = out.entry(run).or_default();
        if kind == "MODEL_OUTPUT" {
            entry.1.push(link)
        } else {
            entry.0.push(link)
        }
    }
    Ok(out)
}

/// Runs a built `SELECT <RUN_COLUMNS> FROM runs r …` query into run infos.
pub async fn fetch_run_infos(db: &Db, q: &SqlBuilder) -> Result<Vec<RunInfo>> {
    let rows = q
        .query()
        .fetch_all(db.reader())
        .await
        .context("failed to search runs")?;
    rows.iter().map(run_info_from_row).collect()
}

pub async fn run_experiment_id(conn: &mut AnyConnection, run_id: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT experiment_id FROM runs WHERE run_uuid = $1")
        .bind(run_id)
        .fetch_one(conn)
        .await
        .context("failed to read run experiment")
}
