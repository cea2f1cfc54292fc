//! The auth gate: with `--app-name basic-auth` every request passes here before its handler.
//! It finds the route's [`Rule`] (each capability declares them next to its route table),
//! authenticates the caller (HTTP Basic or an access token), and checks the caller's grants
//! against what the rule touches, as MLflow 3.17.2's basic-auth `before_request` does. Admins
//! pass every check. A route without a rule is refused to everyone else (fail-closed).
//!
//! After a successful request it records ownership (MANAGE for the creator of an experiment,
//! registered model, feature table or serving endpoint), follows renames and deletions of
//! registered models, and filters search answers to the rows the caller may read.

use std::collections::HashMap;

use actix_web::body::{to_bytes, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use ferroflow_auth::{AuthService, User};
use ferroflow_core::access::{Created, Filter, Grants, Need, Param, Permission, RouteRule, Rule};
use ferroflow_core::{Error, ErrorCode};
use ferroflow_tracking::TrackingService;
use serde_json::{json, Value};

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Var(String),
    /// `{path}` as the last segment: the rest of the path.
    Rest(String),
}

#[derive(Debug, Clone)]
struct Entry {
    method: Method,
    segs: Vec<Seg>,
    rule: Rule,
}

/// The gate's state: the auth service and every route's rule.
pub struct Gate {
    pub auth: AuthService,
    entries: Vec<Entry>,
    /// `/metrics` open to everyone (for scrapers without credentials).
    pub public_metrics: bool,
}

/// `/ajax-api/…` is the UI's twin of `/api/…`, under the same rule.
fn canonical(path: &str) -> String {
    match path.strip_prefix("/ajax-api/") {
        Some(rest) => format!("/api/{rest}"),
        None => path.to_string(),
    }
}

fn compile(pattern: &str) -> Vec<Seg> {
    let canon = canonical(pattern);
    let parts: Vec<&str> = canon.split('/').collect();
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(
            |(i, p)| match p.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                Some("path") if i + 1 == n => Seg::Rest("path".into()),
                Some(v) => Seg::Var(v.split(':').next().unwrap_or(v).to_string()),
                None => Seg::Lit(p.to_string()),
            },
        )
        .collect()
}

/// Every route's rule: the API-prefixed tracking and registry tables, and the absolute ones.
pub fn all_rules() -> Vec<(String, String, Rule)> {
    let mut out = Vec::new();
    let prefixed: [&[RouteRule]; 2] = [
        ferroflow_tracking::routes::ROUTES,
        ferroflow_registry::routes::ROUTES,
    ];
    for table in prefixed {
        for (m, p, r) in table {
            out.push((m.to_string(), format!("/api/2.0/mlflow{p}"), *r));
        }
    }
    let absolute: [&[RouteRule]; 7] = [
        crate::SERVER_ROUTES,
        crate::ui_api::ROUTES,
        ferroflow_tracking::artifacts::ROUTES,
        ferroflow_serving::endpoints::ROUTES,
        ferroflow_automl::routes::ROUTES,
        ferroflow_features::ROUTES,
        ferroflow_auth::ROUTES,
    ];
    for table in absolute {
        for (m, p, r) in table {
            out.push((m.to_string(), p.to_string(), *r));
        }
    }
    out
}

impl Gate {
    pub fn new(auth: AuthService, public_metrics: bool) -> Gate {
        let entries = all_rules()
            .into_iter()
            .map(|(m, p, rule)| Entry {
                method: Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET),
                segs: compile(&p),
                rule,
            })
            .collect();
        Gate {
            auth,
            entries,
            public_metrics,
        }
    }

    /// The rule of a request and the values of its path variables.
    fn find(&self, method: &Method, path: &str) -> Option<(Rule, HashMap<String, String>)> {
        let path = canonical(path);
        let parts: Vec<&str> = path.split('/').collect();
        'entries: for e in &self.entries {
            if e.method != method {
                continue;
            }
            let mut vars = HashMap::new();
            for (i, seg) in e.segs.iter().enumerate() {
                match seg {
                    Seg::Rest(name) => {
                        if i >= parts.len() {
                            continue 'entries;
                        }
                        vars.insert(name.clone(), parts[i..].join("/"));
                        return Some((e.rule, vars));
                    }
                    Seg::Lit(l) => {
                        if parts.get(i) != Some(&l.as_str()) {
                            continue 'entries;
                        }
                    }
                    Seg::Var(name) => match parts.get(i) {
                        Some(v) if !v.is_empty() => {
                            vars.insert(name.clone(), percent_decode(v));
                        }
                        _ => continue 'entries,
                    },
                }
            }
            if parts.len() == e.segs.len() {
                return Some((e.rule, vars));
            }
        }
        None
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn denied() -> Error {
    Error::new(ErrorCode::PermissionDenied, "Permission denied")
}

/// A request's parameters, read once: the query string, the JSON body (kept for the handler)
/// and the path variables.
struct Params {
    query: Vec<(String, String)>,
    body: Option<Value>,
    path: HashMap<String, String>,
}

impl Params {
    /// A parameter's values (a list parameter gives several).
    fn values(&self, p: Param) -> Vec<String> {
        let from_query = |name: &str| -> Vec<String> {
            self.query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        match p {
            Param::Path(name) => self.path.get(name).cloned().into_iter().collect(),
            Param::Query(name) => from_query(name),
            Param::Field(name) => {
                if let Some(v) = self.body.as_ref().and_then(|b| b.get(name)) {
                    return match v {
                        Value::Array(items) => items.iter().filter_map(scalar).collect(),
                        other => scalar(other).into_iter().collect(),
                    };
                }
                from_query(name)
            }
        }
    }

    fn one(&self, p: Param) -> Option<String> {
        self.values(p).into_iter().next()
    }

    /// `run_id`, else `run_uuid` (MLflow's fallback).
    fn run_ids(&self, p: Param) -> Vec<String> {
        // As the handlers: an empty `run_id` falls back to `run_uuid`.
        let ids: Vec<String> = self
            .values(p)
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        match p {
            Param::Field("run_id") | Param::Query("run_id") if ids.is_empty() => {
                self.values(Param::Field("run_uuid"))
            }
            _ => ids,
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether the rule needs the JSON body of a request.
fn needs_body(rule: &Rule) -> bool {
    let field = |p: &Param| matches!(p, Param::Field(_));
    match rule {
        Rule::Experiment(p, _)
        | Rule::Experiments(p, _)
        | Rule::ExperimentByName(p, _)
        | Rule::CreateIn(p, _)
        | Rule::Run(p, _)
        | Rule::Runs(p, _)
        | Rule::LoggedModel(p, _)
        | Rule::Model(p, _)
        | Rule::ModelVersion(p, _)
        | Rule::ArtifactPath(p, _)
        | Rule::FeatureTable(p, _)
        | Rule::Endpoint(p, _)
        | Rule::AutomlRun(p, _) => field(p),
        Rule::Creates(_)
        | Rule::CreateVersion
        | Rule::FeatureLookups
        | Rule::EndpointConfig(_)
        | Rule::Filtered(Filter::RunsSearch) => true,
        _ => false,
    }
}

fn is_json(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"))
}

/// A request payload that yields `bytes` once (a body the gate read, handed on to the handler).
fn payload_of(bytes: Bytes) -> Payload {
    let stream =
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(bytes) });
    Payload::from(Box::pin(stream)
        as std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
        >)
}

/// Reads a JSON body and puts it back for the handler.
async fn take_json(req: &mut ServiceRequest) -> Result<(Bytes, Option<Value>), actix_web::Error> {
    let bytes = req.extract::<Bytes>().await?;
    let value = serde_json::from_slice(&bytes).ok();
    let again = bytes.clone();
    req.set_payload(payload_of(again));
    Ok((bytes, value))
}

/// The services the checks look resources up in.
struct Lookups {
    tracking: Option<web::Data<TrackingService>>,
    automl: Option<web::Data<ferroflow_automl::AutomlService>>,
}

impl Lookups {
    async fn experiment_of_run(&self, run_id: &str) -> Result<Option<String>, Error> {
        match &self.tracking {
            Some(t) => t.experiment_of_run(run_id).await,
            None => Ok(None),
        }
    }

    async fn experiment_of_model(&self, model_id: &str) -> Result<Option<String>, Error> {
        match &self.tracking {
            Some(t) => t.experiment_of_logged_model(model_id).await,
            None => Ok(None),
        }
    }

    async fn experiment_named(&self, name: &str) -> Result<Option<String>, Error> {
        match &self.tracking {
            Some(t) => match t.get_experiment_by_name(name).await {
                Ok(e) => Ok(Some(e.experiment_id)),
                Err(e) if e.code == ErrorCode::ResourceDoesNotExist => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    async fn experiment_of_automl(&self, id: &str) -> Result<Option<String>, Error> {
        match &self.automl {
            Some(a) => match a.get(id).await {
                Ok(job) => Ok(Some(job.experiment_id.clone())),
                Err(e) if e.code == ErrorCode::ResourceDoesNotExist => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }
}

/// The experiment id and sub-resource tier of a proxied artifact path.
fn artifact_target(path: &str) -> (Option<String>, Option<&'static str>) {
    let path = path.trim_start_matches('/');
    let path = match path.strip_prefix("workspaces/") {
        Some(rest) => rest.split_once('/').map(|(_, r)| r).unwrap_or(""),
        None => path,
    };
    let mut parts = path.split('/');
    let Some(first) = parts
        .next()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    else {
        return (None, None);
    };
    let second = parts.next().unwrap_or("");
    let third = parts.next().unwrap_or("");
    let tier = if second == "models" {
        Some("logged_model")
    } else if second.len() == 32 && second.bytes().all(|b| b.is_ascii_hexdigit())
        || third == "artifacts"
    {
        Some("run")
    } else {
        None
    };
    (Some(first.to_string()), tier)
}

/// The registered models a serving-endpoint config would serve.
fn served_models(body: Option<&Value>) -> Vec<String> {
    let Some(body) = body else { return Vec::new() };
    let config = body.get("config").unwrap_or(body);
    let mut out = Vec::new();
    for (list, field) in [
        ("served_models", "model_name"),
        ("served_entities", "entity_name"),
    ] {
        if let Some(items) = config.get(list).and_then(Value::as_array) {
            out.extend(items.iter().filter_map(|m| m.get(field)).filter_map(scalar));
        }
    }
    out
}

/// Checks a non-admin caller against a rule; `Ok(false)` is a 403.
async fn check(
    rule: &Rule,
    g: &Grants,
    p: &Params,
    look: &Lookups,
    public_metrics: bool,
) -> Result<bool, Error> {
    Ok(match *rule {
        Rule::Open | Rule::Authenticated => true,
        Rule::Admin => false,
        Rule::Metrics => public_metrics,
        // Each protected GraphQL field checks the caller's grants itself (graphql.rs).
        Rule::Graphql => true,
        Rule::Creates(Created::Experiment) => true,
        Rule::Creates(Created::RegisteredModel) => match p.one(Param::Field("name")) {
            Some(name) => g.point("registered_model", &name) != Permission::Deny,
            None => true,
        },
        // An explicit `location` places Delta files on the server's disk: admins only.
        Rule::Creates(Created::FeatureTable) => {
            p.one(Param::Field("location")).is_none()
                && p.one(Param::Field("name"))
                    .is_none_or(|name| g.point("feature_table", &name) != Permission::Deny)
        }
        Rule::Creates(Created::Endpoint) => served_models(p.body.as_ref())
            .iter()
            .all(|m| g.point("registered_model", m).allows(Need::Manage)),
        Rule::EndpointConfig(param) => {
            p.one(param)
                .is_none_or(|n| g.point("serving_endpoint", &n).allows(Need::Manage))
                && served_models(p.body.as_ref())
                    .iter()
                    .all(|m| g.point("registered_model", m).allows(Need::Manage))
        }
        Rule::Experiment(param, need) => match p.one(param) {
            Some(id) => g.point("experiment", &id).allows(need),
            None => true,
        },
        Rule::Experiments(param, need) => p
            .values(param)
            .iter()
            .all(|id| g.point("experiment", id).allows(need)),
        Rule::ExperimentByName(param, need) => match p.one(param) {
            Some(name) => match look.experiment_named(&name).await? {
                Some(id) => g.point("experiment", &id).allows(need),
                None => true,
            },
            None => true,
        },
        Rule::CreateIn(param, tier) => {
            // Without an experiment id a run lands in the Default experiment (0).
            let id = p
                .one(param)
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "0".into());
            g.point("experiment", &id).allows(Need::Update)
                && g.allows(&[(tier, "*", Need::NotDenied)])
        }
        Rule::Run(param, need) | Rule::Runs(param, need) => {
            for run in p.run_ids(param) {
                match look.experiment_of_run(&run).await? {
                    Some(e) if g.in_experiment("run", &e, need) => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        Rule::LoggedModel(param, need) => match p.one(param) {
            Some(id) => match look.experiment_of_model(&id).await? {
                Some(e) => g.in_experiment("logged_model", &e, need),
                None => false,
            },
            None => true,
        },
        Rule::Model(param, need) => match p.one(param) {
            Some(name) => g.point("registered_model", &name).allows(need),
            None => true,
        },
        Rule::ModelVersion(param, need) => match p.one(param) {
            Some(name) => g.in_model(&name, need),
            None => true,
        },
        Rule::CreateVersion => {
            if let Some(name) = p.one(Param::Field("name")) {
                if !(g.point("registered_model", &name).allows(Need::Update)
                    && g.allows(&[("registered_model_version", "*", Need::NotDenied)]))
                {
                    return Ok(false);
                }
            }
            if let Some(run) = p.one(Param::Field("run_id")).filter(|r| !r.is_empty()) {
                match look.experiment_of_run(&run).await? {
                    Some(e) if g.in_experiment("run", &e, Need::Read) => {}
                    _ => return Ok(false),
                }
            }
            let source_model = p
                .one(Param::Field("source"))
                .and_then(|s| s.strip_prefix("models:/").map(str::to_string))
                .filter(|s| s.starts_with("m-"));
            for id in p
                .one(Param::Field("model_id"))
                .into_iter()
                .chain(source_model)
            {
                match look.experiment_of_model(&id).await? {
                    Some(e) if g.in_experiment("logged_model", &e, Need::Read) => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        Rule::ArtifactPath(param, need) => {
            let path = p.one(param).unwrap_or_default();
            match artifact_target(&path) {
                (None, _) => g.default.allows(need),
                (Some(e), None) => g.point("experiment", &e).allows(need),
                (Some(e), Some(tier)) => g.in_experiment(tier, &e, need),
            }
        }
        Rule::FeatureTable(param, need) => match p.one(param) {
            Some(name) => g.point("feature_table", &name).allows(need),
            None => true,
        },
        Rule::FeatureLookups => {
            let body = p.body.as_ref();
            let mut names = Vec::new();
            for list in ["feature_lookups", "lookups"] {
                if let Some(items) = body.and_then(|b| b.get(list)).and_then(Value::as_array) {
                    names.extend(
                        items
                            .iter()
                            .filter_map(|l| l.get("table_name"))
                            .filter_map(scalar),
                    );
                }
            }
            names
                .iter()
                .all(|n| g.point("feature_table", n).allows(Need::Read))
        }
        Rule::Endpoint(param, need) => match p.one(param) {
            Some(name) => g.point("serving_endpoint", &name).allows(need),
            None => true,
        },
        Rule::AutomlRun(param, need) => match p.one(param) {
            Some(id) => match look.experiment_of_automl(&id).await? {
                Some(e) => g.in_experiment("run", &e, need),
                None => false,
            },
            None => true,
        },
        Rule::Filtered(_) => true,
    })
}

/// Keeps the rows of `field` (an array in the answer) that `keep` accepts.
fn filter_rows(body: &mut Value, field: &str, keep: impl Fn(&Value) -> bool) {
    if let Some(Value::Array(rows)) = body.get_mut(field) {
        rows.retain(|r| keep(r));
    }
}

fn text_at<'v>(row: &'v Value, path: &[&str]) -> &'v str {
    let mut v = row;
    for k in path {
        match v.get(k) {
            Some(next) => v = next,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

/// Filters a search answer to the rows the caller may read.
fn filter_answer(filter: Filter, g: &Grants, body: &mut Value) {
    match filter {
        Filter::Experiments => filter_rows(body, "experiments", |r| {
            g.row_visible("experiment", text_at(r, &["experiment_id"]))
        }),
        Filter::RegisteredModels => filter_rows(body, "registered_models", |r| {
            g.row_visible("registered_model", text_at(r, &["name"]))
        }),
        Filter::ModelVersions => filter_rows(body, "model_versions", |r| {
            g.row_visible("registered_model", text_at(r, &["name"]))
                && g.allows(&[("registered_model_version", "*", Need::NotDenied)])
        }),
        Filter::LoggedModels => filter_rows(body, "models", |r| {
            let e = text_at(r, &["info", "experiment_id"]);
            g.row_visible("experiment", e) && g.allows(&[("logged_model", "*", Need::NotDenied)])
        }),
        Filter::FeatureTables => filter_rows(body, "feature_tables", |r| {
            g.row_visible("feature_table", text_at(r, &["name"]))
        }),
        Filter::Endpoints => filter_rows(body, "endpoints", |r| {
            g.row_visible("serving_endpoint", text_at(r, &["name"]))
        }),
        Filter::AutomlRuns => filter_rows(body, "automl_runs", |r| {
            g.row_visible("experiment", text_at(r, &["experiment_id"]))
        }),
        Filter::RunsSearch => {}
    }
}

fn refuse(req: ServiceRequest, e: Error) -> ServiceResponse<BoxBody> {
    req.into_response(e.error_response())
}

type Answer<B> = ServiceResponse<EitherBody<B, BoxBody>>;

pub async fn gate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<Answer<impl MessageBody>, actix_web::Error> {
    let Some(gate) = req.app_data::<web::Data<Gate>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let found = gate.find(req.method(), req.path());
    if matches!(found, Some((Rule::Open, _))) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let addr = req.peer_addr().map(|a| a.ip());
    let user: User = match gate.auth.authenticate(auth_header.as_deref(), addr).await {
        Ok(u) => u,
        Err(refusal) => return Ok(refuse(req, refusal.into()).map_into_right_body()),
    };
    req.extensions_mut().insert(user.clone());
    let Some((rule, path_vars)) = found else {
        // No rule: the router answers admins (404 or 405); everyone else is refused.
        if user.is_admin {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        return Ok(refuse(req, denied()).map_into_right_body());
    };
    let post_hook = matches!(rule, Rule::Creates(_) | Rule::Filtered(_))
        || matches!(
            (req.method().as_str(), canonical(req.path()).as_str()),
            ("POST", "/api/2.0/mlflow/registered-models/rename")
                | ("DELETE", "/api/2.0/mlflow/registered-models/delete")
                | ("DELETE", "/api/2.0/feature-store/feature-tables/delete")
        )
        || (req.method() == Method::DELETE
            && rule == Rule::Endpoint(Param::Path("name"), Need::Manage));
    if user.is_admin && !post_hook {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let query =
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string()).unwrap_or_default();
    let body = if req.method() != Method::GET && is_json(&req) && needs_body(&rule) {
        match take_json(&mut req).await {
            Ok((_, v)) => v,
            // Too large (the limits middleware around the gate words the 413) or unreadable.
            Err(e) => {
                let res = e.error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    } else {
        None
    };
    let params = Params {
        query,
        body,
        path: path_vars,
    };
    let grants = if user.is_admin {
        None
    } else {
        match gate.auth.grants(&user).await {
            Ok(g) => Some(g),
            Err(e) => return Ok(refuse(req, e).map_into_right_body()),
        }
    };
    if let Some(g) = &grants {
        let look = Lookups {
            tracking: req.app_data::<web::Data<TrackingService>>().cloned(),
            automl: req
                .app_data::<web::Data<ferroflow_automl::AutomlService>>()
                .cloned(),
        };
        if rule == Rule::Graphql {
            req.extensions_mut().insert(g.clone());
        }
        match check(&rule, g, &params, &look, gate.public_metrics).await {
            Ok(true) => {}
            Ok(false) => return Ok(refuse(req, denied()).map_into_right_body()),
            Err(e) => return Ok(refuse(req, e).map_into_right_body()),
        }
        // runs/search: only the experiments the caller may read are searched.
        if rule == Rule::Filtered(Filter::RunsSearch) {
            let asked = params.values(Param::Field("experiment_ids"));
            let kept: Vec<String> = asked
                .iter()
                .filter(|e| {
                    g.row_visible("experiment", e) && g.allows(&[("run", "*", Need::NotDenied)])
                })
                .cloned()
                .collect();
            if kept.len() != asked.len() {
                if kept.is_empty() {
                    return Ok(req
                        .into_response(HttpResponse::Ok().json(json!({})))
                        .map_into_right_body());
                }
                let mut body = params.body.clone().unwrap_or_else(|| json!({}));
                body["experiment_ids"] = json!(kept);
                let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                req.headers_mut().insert(
                    header::CONTENT_LENGTH,
                    header::HeaderValue::from(bytes.len()),
                );
                req.set_payload(payload_of(bytes));
            }
        }
    }
    let res = next.call(req).await?;
    if !post_hook || res.status().as_u16() >= 400 {
        return Ok(res.map_into_left_body());
    }
    let (http_req, res) = res.into_parts();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = to_bytes(res.into_body()).await.unwrap_or_default();
    let mut answer: Option<Value> = serde_json::from_slice(&bytes).ok();
    let auth = &gate.auth;
    let owned = |t: &'static str, id: Option<String>| (t, id);
    let grant = match rule {
        Rule::Creates(Created::Experiment) => owned(
            "experiment",
            answer
                .as_ref()
                .and_then(|a| a.get("experiment_id"))
                .and_then(scalar),
        ),
        Rule::Creates(Created::RegisteredModel) => {
            owned("registered_model", params.one(Param::Field("name")))
        }
        Rule::Creates(Created::FeatureTable) => {
            owned("feature_table", params.one(Param::Field("name")))
        }
        Rule::Creates(Created::Endpoint) => {
            owned("serving_endpoint", params.one(Param::Field("name")))
        }
        _ => ("", None),
    };
    let hook = async {
        if let (t, Some(id)) = grant {
            auth.grant_owner(&user, t, &id).await?;
        }
        match (
            http_req.method().as_str(),
            canonical(http_req.path()).as_str(),
        ) {
            ("POST", "/api/2.0/mlflow/registered-models/rename") => {
                if let (Some(old), Some(new)) = (
                    params.one(Param::Field("name")),
                    params.one(Param::Field("new_name")),
                ) {
                    auth.store
                        .rename_pattern("registered_model", &old, &new)
                        .await?;
                }
            }
            ("DELETE", "/api/2.0/mlflow/registered-models/delete") => {
                if let Some(name) = params.one(Param::Field("name")) {
                    auth.store.delete_pattern("registered_model", &name).await?;
                }
            }
            ("DELETE", "/api/2.0/feature-store/feature-tables/delete") => {
                if let Some(name) = params.one(Param::Field("name")) {
                    auth.store.delete_pattern("feature_table", &name).await?;
                }
            }
            ("DELETE", _) => {
                if let Some(name) = params.one(Param::Path("name")) {
                    auth.store.delete_pattern("serving_endpoint", &name).await?;
                }
            }
            _ => {}
        }
        Ok::<_, Error>(())
    };
    if let Err(e) = hook.await {
        tracing::error!(
            "recording permissions after {} failed: {}",
            http_req.path(),
            e.message
        );
    }
    let out = match (&rule, &grants, answer.as_mut()) {
        (Rule::Filtered(f), Some(g), Some(a)) => {
            filter_answer(*f, g, a);
            Bytes::from(serde_json::to_vec(a).unwrap_or_default())
        }
        _ => bytes,
    };
    let mut builder = HttpResponse::build(status);
    for (k, v) in headers.iter() {
        if k != header::CONTENT_LENGTH {
            builder.insert_header((k.clone(), v.clone()));
        }
    }
    let res = builder.body(out);
    Ok(ServiceResponse::new(http_req, res).map_into_right_body())
}
