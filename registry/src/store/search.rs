//! SQL for `registered-models/search` and `model-versions/search`, built from the parsed
//! registry filter grammar.

use ferroflow_core::search::CompareOp;
use ferroflow_core::search_registry::{
    RegistryComparison, RegistryKey, RegistryOrderBy, RegistryValue,
};
use ferroflow_core::sql::SqlBuilder;
use ferroflow_core::{Backend, Result, StorageContext};
use sqlx::{AnyConnection, Row};

use super::model_versions::{fill_version_tags, version_row, VERSION_COLUMNS};
use crate::model::ModelVersion;

fn push_text_comparison(q: &mut SqlBuilder, column: &str, op: CompareOp, value: &str) {
    match op {
        CompareOp::ILike => {
            q.push(&format!("LOWER({column}) LIKE LOWER("))
                .bind_text(value)
                .push(")");
        }
        _ => {
            q.push(&format!("{column} {} ", sql_op(op)))
                .bind_text(value);
        }
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    // ILIKE is written as LOWER(..) LIKE LOWER(..) by the caller; the rest are plain SQL.
    match op {
        CompareOp::ILike => "LIKE",
        other => other.as_str(),
    }
}

fn push_comparison(
    q: &mut SqlBuilder,
    c: &RegistryComparison,
    alias: &str,
    tag_table: &str,
    tag_join: &str,
) {
    q.push(" AND ");
    match (&c.key, &c.value) {
        (RegistryKey::Tag(key), RegistryValue::Text(v)) => {
            q.push(&format!(
                "EXISTS (SELECT 1 FROM {tag_table} t WHERE {tag_join} AND t.key = "
            ))
            .bind_text(key)
            .push(" AND ");
            push_text_comparison(q, "t.value", c.op, v);
            q.push(")");
        }
        (RegistryKey::Attribute(attr), value) => {
            let column = match attr.as_str() {
                "name" => format!("{alias}.name"),
                "run_id" => format!("{alias}.run_id"),
                "source_path" => format!("{alias}.source"),
                _ => format!("{alias}.version"),
            };
            match value {
                RegistryValue::Text(v) => push_text_comparison(q, &column, c.op, v),
                RegistryValue::Int(n) => {
                    q.push(&format!("{column} {} ", sql_op(c.op))).bind_int(*n);
                }
                RegistryValue::List(items) => {
                    if items.is_empty() {
                        q.push(if c.op == CompareOp::In {
                            "1 = 0"
                        } else {
                            "1 = 1"
                        });
                    } else {
                        q.push(&format!("{column} {} ", sql_op(c.op)))
                            .bind_text_list(items.iter().map(String::as_str));
                    }
                }
            }
        }
        // The grammar gives tags only text values.
        (RegistryKey::Tag(_), _) => {
            q.push("1 = 0");
        }
    }
}

fn push_order(q: &mut SqlBuilder, order: &[RegistryOrderBy], alias: &str) {
    q.push(" ORDER BY ");
    for (i, o) in order.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        let column = match o.key.as_str() {
            "creation_timestamp" => "creation_time",
            "last_updated_timestamp" => "last_updated_time",
            "version_number" => "version",
            _ => "name",
        };
        q.push(&format!(
            "{alias}.{column} {}",
            if o.ascending { "ASC" } else { "DESC" }
        ));
    }
}

/// Names of the registered models matching `filter`, one page (`limit` rows from `offset`).
/// `exclude_prompts` leaves out models tagged `mlflow.prompt.is_prompt = 'true'` (an
/// anti-join, so models without the tag stay, unlike a tag `!=` term).
pub async fn search_models(
    conn: &mut AnyConnection,
    backend: Backend,
    filter: &[RegistryComparison],
    exclude_prompts: bool,
    order: &[RegistryOrderBy],
    offset: i64,
    limit: i64,
) -> Result<Vec<String>> {
    let mut q = SqlBuilder::new(
        backend,
        "SELECT r.name FROM registered_models r WHERE 1 = 1",
    );
    for c in filter {
        push_comparison(&mut q, c, "r", "registered_model_tags", "t.name = r.name");
    }
    if exclude_prompts {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.name = r.name \
             AND t.key = 'mlflow.prompt.is_prompt' AND t.value = 'true')",
        );
    }
    push_order(&mut q, order, "r");
    q.push(" LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    q.query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to search registered models")?
        .iter()
        .map(|r| r.try_get("name").context("read registered model name"))
        .collect()
}

/// The model versions matching `filter` (with tags), one page; `exclude_prompts` leaves out
/// versions of models any of whose versions is tagged `mlflow.prompt.is_prompt = 'true'`.
pub async fn search_versions(
    conn: &mut AnyConnection,
    backend: Backend,
    filter: &[RegistryComparison],
    exclude_prompts: bool,
    order: &[RegistryOrderBy],
    offset: i64,
    limit: i64,
) -> Result<Vec<ModelVersion>> {
    let mut q = SqlBuilder::new(
        backend,
        format!("SELECT {VERSION_COLUMNS} FROM model_versions v WHERE 1 = 1"),
    );
    for c in filter {
        push_comparison(
            &mut q,
            c,
            "v",
            "model_version_tags",
            "t.name = v.name AND t.version = v.version",
        );
    }
    if exclude_prompts {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM model_version_tags t WHERE t.name = v.name \
             AND t.key = 'mlflow.prompt.is_prompt' AND t.value = 'true')",
        );
    }
    push_order(&mut q, order, "v");
    q.push(" LIMIT ")
        .bind_int(limit)
        .push(" OFFSET ")
        .bind_int(offset);
    let mut out = q
        .query()
        .fetch_all(&mut *conn)
        .await
        .context("failed to search model versions")?
        .iter()
        .map(version_row)
        .collect::<Result<Vec<_>>>()?;
    fill_version_tags(conn, backend, &mut out).await?;
    Ok(out)
}
