//! MLflow's GraphQL endpoint (`POST /graphql`, what the web UI's run and experiment pages
//! call), over the same services as REST. The schema is MLflow 3.17.2's
//! (`mlflow/server/graphql/`), built with async-graphql's dynamic schema from one table of
//! types: every object resolves its fields from the REST JSON of the entity (MLflow's proto
//! JSON, snake_case keys), materialising proto defaults as MLflow's graphene resolvers do
//! (`""` for strings, `"0"` for int64, empty lists and objects). int64 fields are the
//! `LongString` scalar (strings, so JavaScript keeps every digit).
//!
//! Answers are always 200 `{"data": …, "errors": [messages] | null}`, as MLflow's: resolver
//! errors become message strings with the field null. MLflow's static limits (depth 10, 1000
//! selections, 10 root fields, 10 aliases per level) are checked before validation, with its
//! messages. The `@component(name:)` directive the UI puts on its operations is accepted and
//! dropped.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::HttpMessage;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Scalar,
    Schema, TypeRef,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value as GqlValue, Variables};
use ferroflow_core::access::{Grants, Need};
use ferroflow_core::{Error, ErrorCode};
use ferroflow_registry::service::RegistrySearch;
use ferroflow_registry::RegistryService;
use ferroflow_tracking::artifacts::ArtifactService;
use ferroflow_tracking::model::ViewType;
use ferroflow_tracking::service::RunSearch;
use ferroflow_tracking::TrackingService;
use serde_json::{json, Value};

/// Query depth and total selections MLflow allows (`graphql_no_batching.py`).
const MAX_DEPTH: usize = 10;
const MAX_SELECTIONS: usize = 1000;

/// How a field of an object type resolves from the entity's JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    /// int64: the `LongString` scalar.
    Long,
    Float,
    Bool,
    Enum(&'static str),
    Obj(&'static str),
    ObjList(&'static str),
    StrList,
    /// A field ferroflow never fills (`apiError`, deployment-job enums): null.
    Null(&'static str),
}

use Kind::*;

/// Tags and params: `{key, value}`.
const KEY_VALUE: &[(&str, Kind)] = &[("key", Str), ("value", Str)];
/// A metric point of a run or a model version (`MlflowMetricExtension`, `MlflowModelMetric`).
const METRIC: &[(&str, Kind)] = &[
    ("key", Str),
    ("value", Float),
    ("timestamp", Long),
    ("step", Long),
    ("datasetName", Str),
    ("datasetDigest", Str),
    ("modelId", Str),
    ("runId", Str),
];

/// The object types, each field as (GraphQL name, kind); the JSON key is the snake_case name.
const OBJECTS: &[(&str, &[(&str, Kind)])] = &[
    (
        "MlflowExperiment",
        &[
            ("experimentId", Str),
            ("name", Str),
            ("artifactLocation", Str),
            ("lifecycleStage", Str),
            ("lastUpdateTime", Long),
            ("creationTime", Long),
            ("tags", ObjList("MlflowExperimentTag")),
            ("effectiveTraceArchivalRetention", Str),
            ("workspace", Str),
        ],
    ),
    ("MlflowExperimentTag", KEY_VALUE),
    (
        "ApiError",
        &[
            ("code", Str),
            ("message", Str),
            ("helpUrl", Str),
            ("traceId", Str),
            ("errorDetails", ObjList("ErrorDetail")),
        ],
    ),
    ("ErrorDetail", &[("field", Str), ("message", Str)]),
    (
        "MlflowGetExperimentResponse",
        &[
            ("experiment", Obj("MlflowExperiment")),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowMetricWithRunId",
        &[
            ("key", Str),
            ("value", Float),
            ("timestamp", Long),
            ("step", Long),
            ("runId", Str),
        ],
    ),
    (
        "MlflowGetMetricHistoryBulkIntervalResponse",
        &[
            ("metrics", ObjList("MlflowMetricWithRunId")),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowGetRunResponse",
        &[
            ("run", Obj("MlflowRunExtension")),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowRunInfo",
        &[
            ("runId", Str),
            ("runUuid", Str),
            ("runName", Str),
            ("experimentId", Str),
            ("userId", Str),
            ("status", Enum("MlflowRunStatus")),
            ("startTime", Long),
            ("endTime", Long),
            ("artifactUri", Str),
            ("lifecycleStage", Str),
        ],
    ),
    (
        "MlflowRunData",
        &[
            ("metrics", ObjList("MlflowMetricExtension")),
            ("params", ObjList("MlflowParam")),
            ("tags", ObjList("MlflowRunTag")),
        ],
    ),
    ("MlflowMetricExtension", METRIC),
    ("MlflowParam", KEY_VALUE),
    ("MlflowRunTag", KEY_VALUE),
    (
        "MlflowRunInputs",
        &[
            ("datasetInputs", ObjList("MlflowDatasetInput")),
            ("modelInputs", ObjList("MlflowModelInput")),
        ],
    ),
    (
        "MlflowDatasetInput",
        &[
            ("tags", ObjList("MlflowInputTag")),
            ("dataset", Obj("MlflowDataset")),
        ],
    ),
    ("MlflowInputTag", KEY_VALUE),
    (
        "MlflowDataset",
        &[
            ("name", Str),
            ("digest", Str),
            ("sourceType", Str),
            ("source", Str),
            ("schema", Str),
            ("profile", Str),
        ],
    ),
    ("MlflowModelInput", &[("modelId", Str)]),
    (
        "MlflowRunOutputs",
        &[("modelOutputs", ObjList("MlflowModelOutput"))],
    ),
    ("MlflowModelOutput", &[("modelId", Str), ("step", Long)]),
    (
        "MlflowModelVersion",
        &[
            ("name", Str),
            ("version", Str),
            ("creationTimestamp", Long),
            ("lastUpdatedTimestamp", Long),
            ("userId", Str),
            ("currentStage", Str),
            ("description", Str),
            ("source", Str),
            ("runId", Str),
            ("status", Enum("MlflowModelVersionStatus")),
            ("statusMessage", Str),
            ("tags", ObjList("MlflowModelVersionTag")),
            ("runLink", Str),
            ("aliases", StrList),
            ("modelId", Str),
            ("modelParams", ObjList("MlflowModelParam")),
            ("modelMetrics", ObjList("MlflowModelMetric")),
            (
                "deploymentJobState",
                Obj("MlflowModelVersionDeploymentJobState"),
            ),
        ],
    ),
    ("MlflowModelVersionTag", KEY_VALUE),
    ("MlflowModelParam", &[("name", Str), ("value", Str)]),
    ("MlflowModelMetric", METRIC),
    (
        "MlflowModelVersionDeploymentJobState",
        &[
            ("jobId", Str),
            ("runId", Str),
            ("jobState", Null("MlflowDeploymentJobConnectionState")),
            (
                "runState",
                Null("MlflowModelVersionDeploymentJobStateDeploymentJobRunState"),
            ),
            ("currentTaskName", Str),
        ],
    ),
    (
        "MlflowListArtifactsResponse",
        &[
            ("rootUri", Str),
            ("files", ObjList("MlflowFileInfo")),
            ("nextPageToken", Str),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowFileInfo",
        &[("path", Str), ("isDir", Bool), ("fileSize", Long)],
    ),
    (
        "MlflowSearchModelVersionsResponse",
        &[
            ("modelVersions", ObjList("MlflowModelVersion")),
            ("nextPageToken", Str),
            ("apiError", Null("ApiError")),
        ],
    ),
    ("Test", &[("output", Str)]),
    ("TestMutation", &[("output", Str)]),
    (
        "MlflowSearchRunsResponse",
        &[
            ("runs", ObjList("MlflowRunExtension")),
            ("nextPageToken", Str),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowSearchDatasetsResponse",
        &[
            ("datasetSummaries", ObjList("MlflowDatasetSummary")),
            ("apiError", Null("ApiError")),
        ],
    ),
    (
        "MlflowDatasetSummary",
        &[
            ("experimentId", Str),
            ("name", Str),
            ("digest", Str),
            ("context", Str),
        ],
    ),
];

const ENUMS: &[(&str, &[&str])] = &[
    (
        "MlflowRunStatus",
        &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"],
    ),
    (
        "MlflowModelVersionStatus",
        &["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"],
    ),
    ("MlflowViewType", &["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]),
    (
        "MlflowDeploymentJobConnectionState",
        &[
            "DEPLOYMENT_JOB_CONNECTION_STATE_UNSPECIFIED",
            "NOT_SET_UP",
            "CONNECTED",
            "NOT_FOUND",
            "REQUIRED_PARAMETERS_CHANGED",
        ],
    ),
    (
        "MlflowModelVersionDeploymentJobStateDeploymentJobRunState",
        &[
            "DEPLOYMENT_JOB_RUN_STATE_UNSPECIFIED",
            "NO_VALID_DEPLOYMENT_JOB_FOUND",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "PENDING",
            "APPROVAL",
        ],
    ),
];

/// Input types: (name, fields as (GraphQL name, type)).
const INPUTS: &[(&str, &[(&str, &str)])] = &[
    ("MlflowGetExperimentInput", &[("experimentId", "String")]),
    (
        "MlflowGetMetricHistoryBulkIntervalInput",
        &[
            ("runIds", "[String]"),
            ("metricKey", "String"),
            ("startStep", "Int"),
            ("endStep", "Int"),
            ("maxResults", "Int"),
        ],
    ),
    (
        "MlflowGetRunInput",
        &[("runId", "String"), ("runUuid", "String")],
    ),
    (
        "MlflowListArtifactsInput",
        &[
            ("runId", "String"),
            ("runUuid", "String"),
            ("path", "String"),
            ("pageToken", "String"),
        ],
    ),
    (
        "MlflowSearchModelVersionsInput",
        &[
            ("filter", "String"),
            ("maxResults", "LongString"),
            ("orderBy", "[String]"),
            ("pageToken", "String"),
        ],
    ),
    (
        "MlflowSearchRunsInput",
        &[
            ("experimentIds", "[String]"),
            ("filter", "String"),
            ("runViewType", "MlflowViewType"),
            ("maxResults", "Int"),
            ("orderBy", "[String]"),
            ("pageToken", "String"),
        ],
    ),
    (
        "MlflowSearchDatasetsInput",
        &[("experimentIds", "[String]")],
    ),
];

fn type_ref(spec: &str) -> TypeRef {
    match spec.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(inner) => TypeRef::named_list(inner),
        None => TypeRef::named(spec),
    }
}

/// `camelCase` → `snake_case`, the JSON key of a field.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field's value from its parent's JSON, with MLflow's proto defaults.
fn resolve(kind: Kind, v: Option<&Value>) -> Option<FieldValue<'static>> {
    let v = v.filter(|v| !v.is_null());
    Some(match kind {
        Str => FieldValue::value(match v {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }),
        Long => FieldValue::value(match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "0".to_string(),
        }),
        // NaN is null, as MLflow's MlflowMetricExtension; ±inf as the SQL store keeps them.
        Float => match v {
            Some(Value::Number(n)) => FieldValue::value(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) if s == "Infinity" => FieldValue::value(f64::MAX),
            Some(Value::String(s)) if s == "-Infinity" => FieldValue::value(f64::MIN),
            Some(Value::String(_)) => return None,
            _ => FieldValue::value(0.0),
        },
        Bool => FieldValue::value(v.and_then(Value::as_bool).unwrap_or(false)),
        Enum(name) => {
            let first = ENUMS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, values)| values[0]);
            let s = v.and_then(Value::as_str).unwrap_or(first);
            FieldValue::value(GqlValue::Enum(Name::new(s)))
        }
        Obj(_) => FieldValue::owned_any(v.cloned().unwrap_or_else(|| json!({}))),
        ObjList(_) => FieldValue::list(
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .cloned()
                        .map(FieldValue::owned_any)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        StrList => FieldValue::value(GqlValue::List(
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|s| GqlValue::String(s.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        )),
        Null(_) => return None,
    })
}

fn field_type(kind: Kind) -> TypeRef {
    match kind {
        Str => TypeRef::named(TypeRef::STRING),
        Long => TypeRef::named("LongString"),
        Float => TypeRef::named(TypeRef::FLOAT),
        Bool => TypeRef::named(TypeRef::BOOLEAN),
        Enum(n) | Obj(n) | Null(n) => TypeRef::named(n),
        ObjList(n) => TypeRef::named_nn_list(n),
        StrList => TypeRef::named_list(TypeRef::STRING),
    }
}

fn object(name: &'static str, fields: &'static [(&'static str, Kind)]) -> Object {
    let mut obj = Object::new(name);
    for (field, kind) in fields {
        let (field, kind) = (*field, *kind);
        let key = snake(field);
        obj = obj.field(Field::new(field, field_type(kind), move |ctx| {
            let key = key.clone();
            FieldFuture::new(async move {
                let parent = ctx.parent_value.try_downcast_ref::<Value>()?;
                Ok(resolve(kind, parent.get(&key)))
            })
        }));
    }
    obj
}

/// The services the resolvers call.
#[derive(Clone)]
pub struct Services {
    pub tracking: TrackingService,
    pub registry: RegistryService,
    pub artifacts: ArtifactService,
    /// With auth on, the caller's grants (admins and auth off: `None`, everything readable).
    /// A protected field the caller may not read resolves to null, as in MLflow.
    pub access: Option<Grants>,
}

/// The input a protected root field may run with (`None`: the field resolves to null). A
/// runs search keeps only the readable experiments it names.
async fn permitted(
    svc: &Services,
    field: &str,
    mut input: Value,
) -> async_graphql::Result<Option<Value>> {
    let Some(g) = &svc.access else {
        return Ok(Some(input));
    };
    let run_readable = |run_id: String| async move {
        Ok::<bool, async_graphql::Error>(
            match svc
                .tracking
                .experiment_of_run(&run_id)
                .await
                .map_err(fail)?
            {
                Some(e) => g.in_experiment("run", &e, Need::Read),
                None => false,
            },
        )
    };
    let ok = match field {
        "mlflowGetExperiment" => g
            .point(
                "experiment",
                &text(&input, "experimentId").unwrap_or_default(),
            )
            .allows(Need::Read),
        "mlflowGetRun" | "mlflowListArtifacts" => {
            let id = text(&input, "runId")
                .or_else(|| text(&input, "runUuid"))
                .unwrap_or_default();
            run_readable(id).await?
        }
        "mlflowGetMetricHistoryBulkInterval" => {
            let mut all = true;
            for id in texts(&input, "runIds") {
                all &= run_readable(id).await?;
            }
            all
        }
        "mlflowSearchDatasets" => texts(&input, "experimentIds")
            .iter()
            .all(|e| g.point("experiment", e).allows(Need::Read)),
        "mlflowSearchRuns" => {
            let asked = texts(&input, "experimentIds");
            let kept: Vec<String> = asked
                .into_iter()
                .filter(|e| {
                    g.row_visible("experiment", e) && g.allows(&[("run", "*", Need::NotDenied)])
                })
                .collect();
            let any = !kept.is_empty();
            input["experimentIds"] = json!(kept);
            any
        }
        _ => true,
    };
    Ok(ok.then_some(input))
}

/// Drops the model versions of models the caller may not read from an answer.
fn hide_versions(svc: &Services, answer: &mut Value) {
    if let (Some(g), Some(Value::Array(rows))) = (&svc.access, answer.get_mut("model_versions")) {
        rows.retain(|v| {
            g.row_visible("registered_model", v["name"].as_str().unwrap_or_default())
                && g.allows(&[("registered_model_version", "*", Need::NotDenied)])
        });
    }
}

fn to_json<T: serde::Serialize>(v: T) -> async_graphql::Result<Value> {
    serde_json::to_value(v).map_err(|e| async_graphql::Error::new(e.to_string()))
}

fn fail(e: Error) -> async_graphql::Error {
    async_graphql::Error::new(e.message)
}

/// The `input` argument as JSON (null/absent: an empty object, every field unset).
fn input(ctx: &ResolverContext<'_>) -> Value {
    ctx.args
        .get("input")
        .and_then(|v| v.as_value().clone().into_json().ok())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| json!({}))
}

fn text(input: &Value, key: &str) -> Option<String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

fn texts(input: &Value, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn services<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Services> {
    ctx.data::<Services>()
}

fn root<F, Fut>(name: &'static str, ty: &'static str, input_type: &'static str, f: F) -> Field
where
    F: Fn(Services, Value) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = async_graphql::Result<Value>> + Send + 'static,
{
    Field::new(name, TypeRef::named(ty), move |ctx| {
        let f = f.clone();
        FieldFuture::new(async move {
            let svc = services(&ctx)?.clone();
            let Some(input) = permitted(&svc, name, input(&ctx)).await? else {
                return Ok(None);
            };
            let mut out = f(svc.clone(), input).await?;
            hide_versions(&svc, &mut out);
            Ok(Some(FieldValue::owned_any(out)))
        })
    })
    .argument(InputValue::new("input", TypeRef::named(input_type)))
}

async fn search_runs(svc: Services, input: Value) -> async_graphql::Result<Value> {
    let view_type = match input.get("runViewType").and_then(Value::as_str) {
        Some(v) => ViewType::parse(v).unwrap_or_default(),
        None => ViewType::default(),
    };
    let page = svc
        .tracking
        .search_runs(&RunSearch {
            experiment_ids: texts(&input, "experimentIds"),
            filter: text(&input, "filter").unwrap_or_default(),
            view_type,
            max_results: input.get("maxResults").and_then(Value::as_i64),
            order_by: texts(&input, "orderBy"),
            page_token: text(&input, "pageToken"),
        })
        .await
        .map_err(fail)?;
    Ok(json!({
        "runs": to_json(page.items)?,
        "next_page_token": page.next_page_token.unwrap_or_default(),
    }))
}

async fn search_model_versions(
    svc: &Services,
    filter: String,
    input: &Value,
) -> async_graphql::Result<Value> {
    let page = svc
        .registry
        .search_model_versions(&RegistrySearch {
            filter,
            // LongString: a number or its text.
            max_results: match input.get("maxResults") {
                Some(Value::String(s)) => s.parse().ok(),
                Some(v) => v.as_i64(),
                None => None,
            },
            order_by: texts(input, "orderBy"),
            page_token: text(input, "pageToken"),
        })
        .await
        .map_err(fail)?;
    Ok(json!({
        "model_versions": to_json(page.items)?,
        "next_page_token": page.next_page_token.unwrap_or_default(),
    }))
}

/// `MlflowRunExtension`: a run with its experiment and the model versions made from it.
fn run_extension() -> Object {
    let fields: &'static [(&'static str, Kind)] = &[
        ("info", Obj("MlflowRunInfo")),
        ("data", Obj("MlflowRunData")),
        ("inputs", Obj("MlflowRunInputs")),
        ("outputs", Obj("MlflowRunOutputs")),
    ];
    object("MlflowRunExtension", fields)
        .field(Field::new(
            "experiment",
            TypeRef::named("MlflowExperiment"),
            |ctx| {
                FieldFuture::new(async move {
                    let run = ctx.parent_value.try_downcast_ref::<Value>()?;
                    let id = run["info"]["experiment_id"].as_str().unwrap_or_default();
                    let svc = services(&ctx)?;
                    let exp = svc.tracking.get_experiment(id).await.map_err(fail)?;
                    Ok(Some(FieldValue::owned_any(to_json(exp)?)))
                })
            },
        ))
        .field(Field::new(
            "modelVersions",
            TypeRef::named_nn_list("MlflowModelVersion"),
            |ctx| {
                FieldFuture::new(async move {
                    let run = ctx.parent_value.try_downcast_ref::<Value>()?;
                    let id = run["info"]["run_id"].as_str().unwrap_or_default();
                    let svc = services(&ctx)?;
                    let mut found =
                        search_model_versions(svc, format!("run_id='{id}'"), &json!({})).await?;
                    hide_versions(svc, &mut found);
                    Ok(resolve(
                        ObjList("MlflowModelVersion"),
                        found.get("model_versions"),
                    ))
                })
            },
        ))
}

/// MLflow 3.17.2's schema.
pub fn schema() -> Schema {
    let echo = |name: &'static str, ty: &'static str| {
        Field::new(name, TypeRef::named(ty), |ctx| {
            FieldFuture::new(async move {
                let s = ctx
                    .args
                    .get("inputString")
                    .and_then(|v| v.string().ok().map(str::to_string));
                Ok(Some(FieldValue::owned_any(json!({ "output": s }))))
            })
        })
        .description("Simple echoing field")
        .argument(InputValue::new(
            "inputString",
            TypeRef::named(TypeRef::STRING),
        ))
    };
    let query = Object::new("Query")
        .field(root(
            "mlflowGetExperiment",
            "MlflowGetExperimentResponse",
            "MlflowGetExperimentInput",
            |svc, input| async move {
                let id = text(&input, "experimentId").unwrap_or_default();
                let exp = svc.tracking.get_experiment(&id).await.map_err(fail)?;
                Ok(json!({ "experiment": to_json(exp)? }))
            },
        ))
        .field(root(
            "mlflowGetMetricHistoryBulkInterval",
            "MlflowGetMetricHistoryBulkIntervalResponse",
            "MlflowGetMetricHistoryBulkIntervalInput",
            |svc, input| async move {
                let run_ids = texts(&input, "runIds");
                let Some(key) = text(&input, "metricKey").filter(|_| !run_ids.is_empty()) else {
                    return Ok(json!({ "metrics": [] }));
                };
                let steps = match (
                    input.get("startStep").and_then(Value::as_i64),
                    input.get("endStep").and_then(Value::as_i64),
                ) {
                    (Some(s), Some(e)) => Some((s, e)),
                    (None, None) => None,
                    _ => return Err(async_graphql::Error::new(
                        "If either start step or end step are specified, both must be specified.",
                    )),
                };
                let max = input.get("maxResults").and_then(Value::as_i64);
                let metrics = svc
                    .tracking
                    .metric_history_bulk_interval(&run_ids, &key, steps, max)
                    .await
                    .map_err(fail)?;
                Ok(json!({ "metrics": to_json(metrics)? }))
            },
        ))
        .field(root(
            "mlflowGetRun",
            "MlflowGetRunResponse",
            "MlflowGetRunInput",
            |svc, input| async move {
                let id = text(&input, "runId")
                    .or_else(|| text(&input, "runUuid"))
                    .unwrap_or_default();
                let run = svc.tracking.get_run(&id).await.map_err(fail)?;
                Ok(json!({ "run": to_json(run)? }))
            },
        ))
        .field(root(
            "mlflowListArtifacts",
            "MlflowListArtifactsResponse",
            "MlflowListArtifactsInput",
            |svc, input| async move {
                let id = text(&input, "runId")
                    .or_else(|| text(&input, "runUuid"))
                    .unwrap_or_default();
                let path = text(&input, "path");
                let (root_uri, files) = svc
                    .artifacts
                    .list_run(&id, path.as_deref())
                    .await
                    .map_err(fail)?;
                Ok(json!({ "root_uri": root_uri, "files": to_json(files)?, "next_page_token": "" }))
            },
        ))
        .field(root(
            "mlflowSearchModelVersions",
            "MlflowSearchModelVersionsResponse",
            "MlflowSearchModelVersionsInput",
            |svc, input| async move {
                let filter = text(&input, "filter").unwrap_or_default();
                search_model_versions(&svc, filter, &input).await
            },
        ))
        .field(echo("test", "Test"))
        .field(root(
            "mlflowSearchRuns",
            "MlflowSearchRunsResponse",
            "MlflowSearchRunsInput",
            search_runs,
        ));
    let mutation = Object::new("Mutation")
        .field(root(
            "mlflowSearchDatasets",
            "MlflowSearchDatasetsResponse",
            "MlflowSearchDatasetsInput",
            |svc, input| async move {
                let summaries = svc
                    .tracking
                    .search_datasets(&texts(&input, "experimentIds"))
                    .await
                    .map_err(fail)?;
                Ok(json!({ "dataset_summaries": to_json(summaries)? }))
            },
        ))
        .field(root(
            "mlflowSearchRuns",
            "MlflowSearchRunsResponse",
            "MlflowSearchRunsInput",
            search_runs,
        ))
        .field(echo("testMutation", "TestMutation"));

    let mut builder = Schema::build("Query", Some("Mutation"), None)
        .register(query)
        .register(mutation)
        .register(run_extension())
        .register(
            Scalar::new("LongString")
                .description(
                    "Long converted to string to prevent truncation to max integer in JavaScript",
                )
                .validator(|v| matches!(v, GqlValue::Number(_) | GqlValue::String(_))),
        );
    for (name, fields) in OBJECTS {
        builder = builder.register(object(name, fields));
    }
    for (name, values) in ENUMS {
        let mut e = async_graphql::dynamic::Enum::new(*name);
        for v in *values {
            e = e.item(*v);
        }
        builder = builder.register(e);
    }
    for (name, fields) in INPUTS {
        let mut input = InputObject::new(*name);
        for (field, ty) in *fields {
            input = input.field(InputValue::new(*field, type_ref(ty)));
        }
        builder = builder.register(input);
    }
    builder.finish().expect("the GraphQL schema is consistent")
}

/// MLflow's static limits: the first error, in its words.
fn check_limits(doc: &ExecutableDocument) -> Option<String> {
    fn env_limit(name: &str) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
    }
    let fragments = &doc.fragments;
    // Fields of one level with inline fragments and spreads merged in, and their aliases.
    fn collect<'a>(
        set: &'a SelectionSet,
        fragments: &'a HashMap<
            Name,
            async_graphql::Positioned<async_graphql::parser::types::FragmentDefinition>,
        >,
        visited: &[&'a str],
    ) -> (Vec<&'a async_graphql::parser::types::Field>, usize) {
        let mut fields = Vec::new();
        let mut aliases = 0;
        let mut seen: Vec<&str> = visited.to_vec();
        let mut queue: std::collections::VecDeque<&Selection> =
            set.items.iter().map(|s| &s.node).collect();
        while let Some(sel) = queue.pop_front() {
            match sel {
                Selection::Field(f) => {
                    if f.node.alias.is_some() {
                        aliases += 1;
                    }
                    fields.push(&f.node);
                }
                Selection::InlineFragment(i) => {
                    queue.extend(i.node.selection_set.node.items.iter().map(|s| &s.node))
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    if !seen.contains(&name) {
                        seen.push(name);
                        if let Some(def) = fragments.get(&s.node.fragment_name.node) {
                            queue.extend(def.node.selection_set.node.items.iter().map(|s| &s.node));
                        }
                    }
                }
            }
        }
        (fields, aliases)
    }
    let (mut root_fields, mut max_aliases, mut total) = (0usize, 0usize, 0usize);
    for (_, op) in doc.operations.iter() {
        let mut stack: Vec<(&SelectionSet, usize)> = vec![(&op.node.selection_set.node, 1)];
        while let Some((set, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Some(format!("Query exceeds maximum depth of {MAX_DEPTH}"));
            }
            let (fields, aliases) = collect(set, fragments, &[]);
            for f in fields {
                if depth == 1 {
                    root_fields += 1;
                }
                if !f.selection_set.node.items.is_empty() {
                    stack.push((&f.selection_set.node, depth + 1));
                }
                total += 1;
                if total > MAX_SELECTIONS {
                    return Some(format!(
                        "Query exceeds maximum total selections of {MAX_SELECTIONS}"
                    ));
                }
            }
            max_aliases = max_aliases.max(aliases);
        }
    }
    for (count, what, var) in [
        (
            root_fields,
            "root fields",
            "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS",
        ),
        (max_aliases, "aliases", "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES"),
    ] {
        let limit = env_limit(var);
        if count > limit {
            return Some(format!(
                "GraphQL queries should have at most {limit} {what}, got {count} {what}. To increase the limit, set the {var} environment variable."
            ));
        }
    }
    None
}

/// Drops `@component(name: …)` from operations: MLflow's only directive, with no effect.
fn drop_component_directive(doc: &mut ExecutableDocument) {
    use async_graphql::parser::types::DocumentOperations;
    let ops: Vec<&mut async_graphql::Positioned<_>> = match &mut doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values_mut().collect(),
    };
    for op in ops {
        op.node
            .directives
            .retain(|d| d.node.name.node.as_str() != "component");
    }
}

fn answer(data: Value, errors: Vec<String>) -> HttpResponse {
    let errors = if errors.is_empty() {
        Value::Null
    } else {
        json!(errors)
    };
    HttpResponse::Ok().json(json!({ "data": data, "errors": errors }))
}

/// `POST /graphql` (and GET with a JSON body, as MLflow reads it).
pub async fn handle(
    schema: web::Data<Schema>,
    services: web::Data<Services>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    if req.method() == actix_web::http::Method::POST {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        match content_type {
            None => {
                return Err(Error::invalid(
                    "Bad Request. Content-Type header is missing.",
                ))
            }
            Some(ct) if ct.split(';').next().map(str::trim) != Some("application/json") => {
                return Err(Error::invalid(
                    "Bad Request. Content-Type must be one of ['application/json'].",
                ))
            }
            Some(_) => {}
        }
    }
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::new(
            ErrorCode::BadRequest,
            format!("Malformed GraphQL request body: {e}"),
        )
    })?;
    let Some(request) = request.as_object() else {
        return Err(Error::new(
            ErrorCode::BadRequest,
            "A GraphQL request is one JSON object {query, variables, operationName}: batches are not accepted.",
        ));
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return Err(Error::invalid(
            "Missing value for required parameter 'query'.",
        ));
    };
    let variables = match request.get("variables") {
        None | Some(Value::Null) => Variables::default(),
        Some(v @ Value::Object(_)) => Variables::from_json(v.clone()),
        Some(_) => return Err(Error::invalid("'variables' must be a JSON object.")),
    };
    let mut doc = match async_graphql::parser::parse_query(query) {
        Ok(doc) => doc,
        Err(e) => return Ok(answer(Value::Null, vec![format!("Syntax Error: {e}")])),
    };
    if let Some(limit) = check_limits(&doc) {
        return Ok(answer(Value::Null, vec![limit]));
    }
    drop_component_directive(&mut doc);
    let mut services = services.get_ref().clone();
    services.access = req.extensions().get::<Grants>().cloned();
    let mut gql = async_graphql::Request::new(query)
        .variables(variables)
        .data(services);
    if let Some(name) = request.get("operationName").and_then(Value::as_str) {
        gql = gql.operation_name(name);
    }
    gql.set_parsed_query(doc);
    let res = schema.execute(gql).await;
    let data = res.data.into_json().unwrap_or(Value::Null);
    let errors = res.errors.into_iter().map(|e| e.message).collect();
    Ok(answer(data, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(q: &str) -> Option<String> {
        check_limits(&async_graphql::parser::parse_query(q).unwrap())
    }

    #[test]
    fn the_schema_builds_with_mlflow_names() {
        let sdl = schema().sdl();
        for needle in [
            "type MlflowRunExtension",
            "mlflowSearchDatasets(input: MlflowSearchDatasetsInput): MlflowSearchDatasetsResponse",
            "scalar LongString",
            "modelVersions: [MlflowModelVersion!]",
        ] {
            assert!(sdl.contains(needle), "{needle} missing from\n{sdl}");
        }
    }

    #[test]
    fn mlflow_static_limits() {
        assert_eq!(limits("{ experiment { id } run { id } }"), None);
        let deep = "{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }";
        assert_eq!(
            limits(deep).as_deref(),
            Some("Query exceeds maximum depth of 10")
        );
        let many: String = (0..1001).map(|i| format!(" f{i} {{ id }}")).collect();
        assert_eq!(
            limits(&format!("{{{many} }}")).as_deref(),
            Some("Query exceeds maximum total selections of 1000")
        );
        let roots: String = (0..11)
            .map(|i| format!(" k{i}: test {{ output }}"))
            .collect();
        assert_eq!(
            limits(&format!("{{{roots} }}")).as_deref(),
            Some("GraphQL queries should have at most 10 root fields, got 11 root fields. To increase the limit, set the MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS environment variable.")
        );
        let aliases: String = (0..11)
            .map(|i| format!(" e{i}: experiment {{ name }}"))
            .collect();
        assert!(limits(&format!("{{ x {{{aliases} }} }}"))
            .unwrap()
            .contains("at most 10 aliases, got 11 aliases"));
        // Spreads and inline fragments merge into their level; cycles end.
        assert_eq!(
            limits("fragment A on Query { experiment { id } ...B } fragment B on Query { run { id } ...A } { ...A }"),
            None
        );
    }
}
