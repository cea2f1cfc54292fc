//! actix handlers for the model registry half of MLflow's REST API: parse → call service →
//! serialize. Mounted under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.

use actix_web::{web, HttpRequest, HttpResponse};
use ferroflow_core::access::{Created, Filter, Need, Param, RouteRule, Rule};
use ferroflow_core::http::{int64, page_response, parse, required};
use ferroflow_core::Result;
use ferroflow_tracking::routes::{key_values, KeyValueEntry};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::service::{CreateModelVersion, RegistrySearch, RegistryService};

/// Every registry route as (method, path under the API prefix), as MLflow 3.17.2's
/// `get_endpoints()` lists them; the OpenAPI test checks the spec against this list.
pub const ROUTES: &[RouteRule] = &[
    (
        "POST",
        "/registered-models/create",
        Rule::Creates(Created::RegisteredModel),
    ),
    (
        "POST",
        "/registered-models/rename",
        Rule::Model(Param::Field("name"), Need::Update),
    ),
    (
        "PATCH",
        "/registered-models/update",
        Rule::Model(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/registered-models/delete",
        Rule::Model(Param::Field("name"), Need::Delete),
    ),
    (
        "GET",
        "/registered-models/get",
        Rule::Model(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/registered-models/search",
        Rule::Filtered(Filter::RegisteredModels),
    ),
    (
        "POST",
        "/registered-models/get-latest-versions",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/registered-models/get-latest-versions",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    (
        "POST",
        "/registered-models/set-tag",
        Rule::Model(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/registered-models/delete-tag",
        Rule::Model(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/registered-models/alias",
        Rule::Model(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/registered-models/alias",
        Rule::Model(Param::Field("name"), Need::Delete),
    ),
    (
        "GET",
        "/registered-models/alias",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    ("POST", "/model-versions/create", Rule::CreateVersion),
    (
        "PATCH",
        "/model-versions/update",
        Rule::ModelVersion(Param::Field("name"), Need::Update),
    ),
    (
        "POST",
        "/model-versions/transition-stage",
        Rule::ModelVersion(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/model-versions/delete",
        Rule::ModelVersion(Param::Field("name"), Need::Delete),
    ),
    (
        "GET",
        "/model-versions/get",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    (
        "GET",
        "/model-versions/search",
        Rule::Filtered(Filter::ModelVersions),
    ),
    (
        "GET",
        "/model-versions/get-download-uri",
        Rule::ModelVersion(Param::Field("name"), Need::Read),
    ),
    (
        "POST",
        "/model-versions/set-tag",
        Rule::ModelVersion(Param::Field("name"), Need::Update),
    ),
    (
        "DELETE",
        "/model-versions/delete-tag",
        Rule::ModelVersion(Param::Field("name"), Need::Delete),
    ),
];

/// Registers the registry routes on a scope (called once per API prefix).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/registered-models/create",
        web::post().to(create_registered_model),
    )
    .route(
        "/registered-models/rename",
        web::post().to(rename_registered_model),
    )
    .route(
        "/registered-models/update",
        web::patch().to(update_registered_model),
    )
    .route(
        "/registered-models/delete",
        web::delete().to(delete_registered_model),
    )
    .route(
        "/registered-models/get",
        web::get().to(get_registered_model),
    )
    .route(
        "/registered-models/search",
        web::get().to(search_registered_models),
    )
    .route(
        "/registered-models/get-latest-versions",
        web::post().to(get_latest_versions),
    )
    .route(
        "/registered-models/get-latest-versions",
        web::get().to(get_latest_versions),
    )
    .route(
        "/registered-models/set-tag",
        web::post().to(set_registered_model_tag),
    )
    .route(
        "/registered-models/delete-tag",
        web::delete().to(delete_registered_model_tag),
    )
    .route("/registered-models/alias", web::post().to(set_alias))
    .route("/registered-models/alias", web::delete().to(delete_alias))
    .route(
        "/registered-models/alias",
        web::get().to(get_model_version_by_alias),
    )
    .route(
        "/model-versions/create",
        web::post().to(create_model_version),
    )
    .route(
        "/model-versions/update",
        web::patch().to(update_model_version),
    )
    .route(
        "/model-versions/transition-stage",
        web::post().to(transition_stage),
    )
    .route(
        "/model-versions/delete",
        web::delete().to(delete_model_version),
    )
    .route("/model-versions/get", web::get().to(get_model_version))
    .route(
        "/model-versions/search",
        web::get().to(search_model_versions),
    )
    .route(
        "/model-versions/get-download-uri",
        web::get().to(get_download_uri),
    )
    .route(
        "/model-versions/set-tag",
        web::post().to(set_model_version_tag),
    )
    .route(
        "/model-versions/delete-tag",
        web::delete().to(delete_model_version_tag),
    );
}

type Svc = web::Data<RegistryService>;

fn ok(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

fn empty() -> HttpResponse {
    ok(json!({}))
}

/// A version field: MLflow's protos make it a string, but numbers are accepted too.
fn version_string<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        I(i64),
    }
    Ok(Option::<V>::deserialize(d)?.map(|v| match v {
        V::S(s) => s,
        V::I(i) => i.to_string(),
    }))
}

/// `name`, required and non-empty.
fn name_of(name: Option<String>) -> Result<String> {
    required(name.filter(|n| !n.is_empty()), "name")
}

// ----- registered models -----

#[derive(Deserialize)]
struct CreateRegisteredModelRequest {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
    description: Option<String>,
}

async fn create_registered_model(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: CreateRegisteredModelRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let tags = key_values(r.tags, "tags")?;
    let model = svc
        .create_registered_model(&name, &tags, r.description.as_deref())
        .await?;
    Ok(ok(json!({ "registered_model": model })))
}

#[derive(Deserialize)]
struct NameRequest {
    name: Option<String>,
}

async fn get_registered_model(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: NameRequest = parse(&req, &body, &[])?;
    let model = svc.get_registered_model(&name_of(r.name)?).await?;
    Ok(ok(json!({ "registered_model": model })))
}

#[derive(Deserialize)]
struct RenameRequest {
    name: Option<String>,
    new_name: Option<String>,
}

async fn rename_registered_model(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: RenameRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let new_name = required(r.new_name.filter(|n| !n.is_empty()), "new_name")?;
    let model = svc.rename_registered_model(&name, &new_name).await?;
    Ok(ok(json!({ "registered_model": model })))
}

#[derive(Deserialize)]
struct UpdateRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "version_string")]
    version: Option<String>,
    description: Option<String>,
}

async fn update_registered_model(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: UpdateRequest = parse(&req, &body, &[])?;
    let model = svc
        .update_registered_model(&name_of(r.name)?, r.description.as_deref())
        .await?;
    Ok(ok(json!({ "registered_model": model })))
}

async fn delete_registered_model(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: NameRequest = parse(&req, &body, &[])?;
    svc.delete_registered_model(&name_of(r.name)?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct SearchRequest {
    filter: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

impl SearchRequest {
    fn into_search(self) -> RegistrySearch {
        RegistrySearch {
            filter: self.filter.unwrap_or_default(),
            max_results: self.max_results,
            order_by: self.order_by,
            page_token: self.page_token,
        }
    }
}

async fn search_registered_models(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: SearchRequest = parse(&req, &body, &["order_by"])?;
    page_response(
        "registered_models",
        svc.search_registered_models(&r.into_search()).await?,
    )
}

#[derive(Deserialize)]
struct LatestVersionsRequest {
    name: Option<String>,
    #[serde(default)]
    stages: Vec<String>,
}

async fn get_latest_versions(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: LatestVersionsRequest = parse(&req, &body, &["stages"])?;
    let versions = svc
        .get_latest_versions(&name_of(r.name)?, &r.stages)
        .await?;
    Ok(if versions.is_empty() {
        empty()
    } else {
        ok(json!({ "model_versions": versions }))
    })
}

#[derive(Deserialize)]
struct TagRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "version_string")]
    version: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn set_registered_model_tag(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: TagRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let key = required(r.key, "key")?;
    let value = required(r.value, "value")?;
    svc.set_registered_model_tag(&name, &key, &value).await?;
    Ok(empty())
}

async fn delete_registered_model_tag(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: TagRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    svc.delete_registered_model_tag(&name, &required(r.key, "key")?)
        .await?;
    Ok(empty())
}

// ----- aliases -----

#[derive(Deserialize)]
struct AliasRequest {
    name: Option<String>,
    alias: Option<String>,
    #[serde(default, deserialize_with = "version_string")]
    version: Option<String>,
}

async fn set_alias(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: AliasRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let alias = required(r.alias, "alias")?;
    let version = required(r.version, "version")?;
    svc.set_registered_model_alias(&name, &alias, &version)
        .await?;
    Ok(empty())
}

async fn delete_alias(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: AliasRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    svc.delete_registered_model_alias(&name, &required(r.alias, "alias")?)
        .await?;
    Ok(empty())
}

async fn get_model_version_by_alias(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: AliasRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let mv = svc
        .get_model_version_by_alias(&name, &required(r.alias, "alias")?)
        .await?;
    Ok(ok(json!({ "model_version": mv })))
}

// ----- model versions -----

#[derive(Deserialize)]
struct CreateModelVersionRequest {
    name: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValueEntry>,
    run_link: Option<String>,
    description: Option<String>,
    model_id: Option<String>,
}

async fn create_model_version(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: CreateModelVersionRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let source = required(r.source.filter(|s| !s.is_empty()), "source")?;
    let mv = svc
        .create_model_version(CreateModelVersion {
            name,
            source,
            run_id: r.run_id,
            tags: key_values(r.tags, "tags")?,
            run_link: r.run_link,
            description: r.description,
            model_id: r.model_id,
        })
        .await?;
    Ok(ok(json!({ "model_version": mv })))
}

#[derive(Deserialize)]
struct VersionRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "version_string")]
    version: Option<String>,
}

impl VersionRequest {
    fn key(self) -> Result<(String, String)> {
        Ok((name_of(self.name)?, required(self.version, "version")?))
    }
}

async fn get_model_version(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: VersionRequest = parse(&req, &body, &[])?;
    let (name, version) = r.key()?;
    let mv = svc.get_model_version(&name, &version).await?;
    Ok(ok(json!({ "model_version": mv })))
}

async fn update_model_version(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: UpdateRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let version = required(r.version, "version")?;
    let mv = svc
        .update_model_version(&name, &version, r.description.as_deref())
        .await?;
    Ok(ok(json!({ "model_version": mv })))
}

#[derive(Deserialize)]
struct TransitionRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "version_string")]
    version: Option<String>,
    stage: Option<String>,
    archive_existing_versions: Option<bool>,
}

async fn transition_stage(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: TransitionRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let version = required(r.version, "version")?;
    let stage = required(r.stage, "stage")?;
    let mv = svc
        .transition_model_version_stage(
            &name,
            &version,
            &stage,
            r.archive_existing_versions.unwrap_or(false),
        )
        .await?;
    Ok(ok(json!({ "model_version": mv })))
}

async fn delete_model_version(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: VersionRequest = parse(&req, &body, &[])?;
    let (name, version) = r.key()?;
    svc.delete_model_version(&name, &version).await?;
    Ok(empty())
}

async fn search_model_versions(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: SearchRequest = parse(&req, &body, &["order_by"])?;
    page_response(
        "model_versions",
        svc.search_model_versions(&r.into_search()).await?,
    )
}

async fn get_download_uri(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let r: VersionRequest = parse(&req, &body, &[])?;
    let (name, version) = r.key()?;
    let uri = svc.get_model_version_download_uri(&name, &version).await?;
    Ok(ok(json!({ "artifact_uri": uri })))
}

async fn set_model_version_tag(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: TagRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let version = required(r.version, "version")?;
    let key = required(r.key, "key")?;
    let value = required(r.value, "value")?;
    svc.set_model_version_tag(&name, &version, &key, &value)
        .await?;
    Ok(empty())
}

async fn delete_model_version_tag(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let r: TagRequest = parse(&req, &body, &[])?;
    let name = name_of(r.name)?;
    let version = required(r.version, "version")?;
    svc.delete_model_version_tag(&name, &version, &required(r.key, "key")?)
        .await?;
    Ok(empty())
}
