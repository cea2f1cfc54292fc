//! SQL for `runs/search` and `experiments/search`, built from the parsed filter grammar.

use ferroflow_core::search::{CompareOp, Comparison, EntityType, FilterValue, OrderBy};
use ferroflow_core::{Backend, Error, Result};

use super::runs::RUN_COLUMNS;
use super::{experiment_select, Bind, SqlBuilder};
use crate::model::{ViewType, DATASET_CONTEXT_TAG};

/// The runs column an attribute key (canonical, from the grammar) reads.
fn run_attribute_column(key: &str) -> Result<&'static str> {
    Ok(match key {
        "run_id" | "run_uuid" => "r.run_uuid",
        "run_name" => "r.name",
        "status" => "r.status",
        "user_id" => "r.user_id",
        "artifact_uri" => "r.artifact_uri",
        "start_time" | "created" | "Created" => "r.start_time",
        "end_time" => "r.end_time",
        other => {
            return Err(Error::invalid(format!(
                "Invalid attribute key '{other}' specified."
            )))
        }
    })
}

fn experiment_attribute_column(key: &str) -> Result<&'static str> {
    Ok(match key {
        "name" => "e.name",
        "experiment_id" => "e.experiment_id",
        "creation_time" => "e.creation_time",
        "last_update_time" => "e.last_update_time",
        other => {
            return Err(Error::invalid(format!(
                "Invalid attribute key '{other}' specified."
            )))
        }
    })
}

/// Appends `<column> <op> <value>` for one comparison.
fn push_condition(
    q: &mut SqlBuilder,
    column: &str,
    op: CompareOp,
    value: &FilterValue,
    integer_ids: bool,
) -> Result<()> {
    let bind_scalar = |q: &mut SqlBuilder, v: &FilterValue| -> Result<()> {
        match v {
            FilterValue::Number(n) => {
                q.bind(Bind::Float(*n));
            }
            FilterValue::Text(t) if integer_ids => {
                q.bind_int(parse_int_id(t)?);
            }
            FilterValue::Text(t) => {
                q.bind_text(t);
            }
            FilterValue::List(_) | FilterValue::Null => {
                return Err(Error::invalid(format!(
                    "Invalid value for comparator '{}'",
                    op.as_str()
                )))
            }
        }
        Ok(())
    };
    match op {
        CompareOp::Eq
        | CompareOp::Ne
        | CompareOp::Lt
        | CompareOp::Le
        | CompareOp::Gt
        | CompareOp::Ge => {
            q.push(column).push(" ").push(op.as_str()).push(" ");
            bind_scalar(q, value)?;
        }
        CompareOp::Like => {
            q.push(column).push(" LIKE ");
            bind_scalar(q, value)?;
        }
        CompareOp::ILike => {
            q.push("LOWER(").push(column).push(") LIKE LOWER(");
            bind_scalar(q, value)?;
            q.push(")");
        }
        CompareOp::In | CompareOp::NotIn => {
            let FilterValue::List(values) = value else {
                return Err(Error::invalid(format!(
                    "Expected a list of values for '{}'",
                    op.as_str()
                )));
            };
            q.push(column).push(if op == CompareOp::In {
                " IN ("
            } else {
                " NOT IN ("
            });
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                if integer_ids {
                    q.bind_int(parse_int_id(v)?);
                } else {
                    q.bind_text(v);
                }
            }
            q.push(")");
        }
        CompareOp::IsNull | CompareOp::IsNotNull => {
            q.push(column).push(" ").push(op.as_str());
        }
    }
    Ok(())
}

fn parse_int_id(v: &str) -> Result<i64> {
    v.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "Invalid experiment ID '{v}'. Experiment ID must be a valid integer."
        ))
    })
}

fn push_stages(q: &mut SqlBuilder, column: &str, view: ViewType) {
    q.push(column)
        .push(" IN ")
        .bind_text_list(view.stages().iter().copied());
}

/// The index of a filter comparison whose inner join on the same metric/param/tag as `o`
/// guarantees every matching run has a real (non-null, non-NaN) value for it.
fn present_join(filter: &[Comparison], o: &OrderBy) -> Option<usize> {
    filter.iter().position(|c| {
        c.entity == o.entity
            && c.key == o.key
            && match c.entity {
                EntityType::Metric => matches!(
                    c.op,
                    CompareOp::Eq | CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
                ),
                EntityType::Param | EntityType::Tag => {
                    !matches!(c.op, CompareOp::IsNull | CompareOp::IsNotNull)
                }
                _ => false,
            }
    })
}

/// `SELECT <run columns> FROM runs r … ORDER BY … LIMIT … OFFSET …` for a search page.
pub fn run_search_query(
    backend: Backend,
    experiment_ids: &[i64],
    view: ViewType,
    filter: &[Comparison],
    order_by: &[OrderBy],
    offset: i64,
    limit: i64,
) -> Result<SqlBuilder> {
    let mut q = SqlBuilder::new(backend, format!("SELECT {RUN_COLUMNS} FROM runs r"));

    // Joins for metric/param/tag comparisons: (run_uuid, key) is unique in each table, so an
    // inner join keeps at most one row per run and lets the planner start from the index.
    for (i, c) in filter.iter().enumerate() {
        let table = match c.entity {
            EntityType::Metric => "latest_metrics",
            EntityType::Param => "params",
            EntityType::Tag => "tags",
            _ => continue,
        };
        if matches!(c.op, CompareOp::IsNull | CompareOp::IsNotNull) {
            continue;
        }
        let alias = format!("f{i}");
        q.push(&format!(
            " JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = "
        ));
        q.bind_text(&c.key).push(" AND ");
        // NaN is stored as 0 with is_nan set: it matches only `!=`, as in MLflow.
        match (c.entity, c.op) {
            (EntityType::Metric, CompareOp::Ne) => {
                q.push("(");
                push_condition(&mut q, &format!("{alias}.value"), c.op, &c.value, false)?;
                q.push(&format!(" OR {alias}.is_nan = 1)"));
            }
            (EntityType::Metric, _) => {
                q.push(&format!("{alias}.is_nan = 0 AND "));
                push_condition(&mut q, &format!("{alias}.value"), c.op, &c.value, false)?;
            }
            _ => push_condition(&mut q, &format!("{alias}.value"), c.op, &c.value, false)?,
        }
    }

    let mut seen = Vec::new();
    for (i, o) in order_by.iter().enumerate() {
        if seen.contains(&(o.entity, o.key.as_str())) {
            return Err(Error::invalid(format!(
                "`order_by` contains duplicate fields: {}",
                o.key
            )));
        }
        seen.push((o.entity, o.key.as_str()));
        if present_join(filter, o).is_some() {
            continue;
        }
        let table = match o.entity {
            EntityType::Metric => "latest_metrics",
            EntityType::Param => "params",
            EntityType::Tag => "tags",
            _ => continue,
        };
        let alias = format!("o{i}");
        q.push(&format!(
            " LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = "
        ));
        q.bind_text(&o.key);
    }

    q.push(" WHERE r.experiment_id IN (");
    for (i, id) in experiment_ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_int(*id);
    }
    q.push(") AND ");
    push_stages(&mut q, "r.lifecycle_stage", view);

    for c in filter {
        match (c.entity, c.op) {
            (EntityType::Param | EntityType::Tag, CompareOp::IsNull | CompareOp::IsNotNull) => {
                let table = if c.entity == EntityType::Param {
                    "params"
                } else {
                    "tags"
                };
                q.push(if c.op == CompareOp::IsNull {
                    " AND NOT EXISTS"
                } else {
                    " AND EXISTS"
                });
                q.push(&format!(
                    " (SELECT 1 FROM {table} n WHERE n.run_uuid = r.run_uuid AND n.key = "
                ));
                q.bind_text(&c.key).push(")");
            }
            (EntityType::Attribute, _) => {
                q.push(" AND ");
                push_condition(&mut q, run_attribute_column(&c.key)?, c.op, &c.value, false)?;
            }
            (EntityType::Dataset, _) => {
                q.push(
                    " AND EXISTS (SELECT 1 FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id",
                );
                let column = match c.key.as_str() {
                    "name" => "d.name",
                    "digest" => "d.digest",
                    "context" => {
                        q.push(
                            " JOIN input_tags it ON it.input_uuid = i.input_uuid AND it.name = ",
                        );
                        q.bind_text(DATASET_CONTEXT_TAG);
                        "it.value"
                    }
                    other => {
                        return Err(Error::invalid(format!(
                            "Invalid dataset key '{other}' specified."
                        )))
                    }
                };
                q.push(" WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id = r.run_uuid AND ");
                push_condition(&mut q, column, c.op, &c.value, false)?;
                q.push(")");
            }
            _ => {}
        }
    }

    // MLflow's ordering: per clause, missing values last (NaN metrics before missing), then the
    // value; then start_time DESC unless ordered by it, then run_uuid.
    q.push(" ORDER BY ");
    let mut has_start_time = false;
    for (i, o) in order_by.iter().enumerate() {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        let value = match o.entity {
            EntityType::Attribute => {
                let col = run_attribute_column(&o.key)?;
                has_start_time |= col == "r.start_time";
                col.to_string()
            }
            _ => match present_join(filter, o) {
                // A filter join guarantees a real value: no null/NaN ranking needed, so an
                // index on (key, value) can deliver rows already in order.
                Some(f) => {
                    q.push(&format!("f{f}.value {dir}, "));
                    continue;
                }
                None => format!("o{i}.value"),
            },
        };
        if o.entity == EntityType::Metric {
            q.push(&format!(
                "CASE WHEN o{i}.is_nan = 1 THEN 1 WHEN o{i}.value IS NULL THEN 2 ELSE 0 END, {value} {dir}, "
            ));
        } else {
            q.push(&format!(
                "CASE WHEN {value} IS NULL THEN 1 ELSE 0 END, {value} {dir}, "
            ));
        }
    }
    if !has_start_time {
        q.push("r.start_time DESC, ");
    }
    q.push("r.run_uuid ASC LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    Ok(q)
}

/// `SELECT <experiment columns> FROM experiments e …` for a search page.
pub fn experiment_search_query(
    backend: Backend,
    view: ViewType,
    filter: &[Comparison],
    order_by: &[OrderBy],
    offset: i64,
    limit: i64,
) -> Result<SqlBuilder> {
    let mut q = SqlBuilder::new(
        backend,
        format!("SELECT {} FROM experiments e WHERE ", experiment_select()),
    );
    push_stages(&mut q, "e.lifecycle_stage", view);
    for c in filter {
        match c.entity {
            EntityType::Attribute => {
                let col = experiment_attribute_column(&c.key)?;
                q.push(" AND ");
                push_condition(&mut q, col, c.op, &c.value, col == "e.experiment_id")?;
            }
            EntityType::Tag => match c.op {
                CompareOp::IsNull | CompareOp::IsNotNull => {
                    q.push(if c.op == CompareOp::IsNull {
                        " AND NOT EXISTS"
                    } else {
                        " AND EXISTS"
                    });
                    q.push(" (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ");
                    q.bind_text(&c.key).push(")");
                }
                _ => {
                    q.push(" AND EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ");
                    q.bind_text(&c.key).push(" AND ");
                    push_condition(&mut q, "t.value", c.op, &c.value, false)?;
                    q.push(")");
                }
            },
            other => {
                return Err(Error::invalid(format!(
                    "Invalid entity type '{}' for experiments",
                    other.as_str()
                )))
            }
        }
    }
    q.push(" ORDER BY ");
    let mut has_id = false;
    if order_by.is_empty() {
        q.push("e.creation_time DESC, e.experiment_id ASC");
        has_id = true;
    }
    for (i, o) in order_by.iter().enumerate() {
        let col = experiment_attribute_column(&o.key)?;
        has_id |= col == "e.experiment_id";
        if i > 0 {
            q.push(", ");
        }
        q.push(col).push(if o.ascending { " ASC" } else { " DESC" });
    }
    if !has_id {
        q.push(", e.experiment_id DESC");
    }
    q.push(" LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    Ok(q)
}
