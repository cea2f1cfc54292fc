//! MLflow 3.17.2's auth REST API (users, the unified per-user permission API, roles) and
//! Databricks-style access tokens (`/api/2.0/token/…`). The server's auth gate has already
//! authenticated the caller (a [`User`] in the request's extensions); each handler checks who
//! may do what, as MLflow's validators do.

use actix_web::http::Method;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use ferroflow_core::access::{takes_ids, Need, Permission, RouteRule, Rule};
use ferroflow_core::http::missing_value;
use ferroflow_core::{Error, ErrorCode, Result};
use serde_json::{json, Map, Value};

use crate::config::validate_password;
use crate::model::User;
use crate::service::AuthService;

/// Every auth route and its gate rule: each handler does its own finer checks.
pub const ROUTES: &[RouteRule] = &[
    ("POST", "/api/2.0/mlflow/users/create", Rule::Authenticated),
    ("GET", "/api/2.0/mlflow/users/get", Rule::Authenticated),
    ("GET", "/api/2.0/mlflow/users/list", Rule::Authenticated),
    ("GET", "/api/2.0/mlflow/users/current", Rule::Authenticated),
    (
        "PATCH",
        "/api/2.0/mlflow/users/update-password",
        Rule::Authenticated,
    ),
    ("PATCH", "/api/2.0/mlflow/users/update-admin", Rule::Admin),
    ("DELETE", "/api/2.0/mlflow/users/delete", Rule::Admin),
    (
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        Rule::Authenticated,
    ),
    (
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/users/permissions/get",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/users/permissions/list",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/users/current/permissions",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/users/roles/list",
        Rule::Authenticated,
    ),
    ("POST", "/api/3.0/mlflow/roles/create", Rule::Authenticated),
    ("GET", "/api/3.0/mlflow/roles/get", Rule::Authenticated),
    ("GET", "/api/3.0/mlflow/roles/list", Rule::Authenticated),
    ("PATCH", "/api/3.0/mlflow/roles/update", Rule::Authenticated),
    (
        "DELETE",
        "/api/3.0/mlflow/roles/delete",
        Rule::Authenticated,
    ),
    (
        "POST",
        "/api/3.0/mlflow/roles/permissions/add",
        Rule::Authenticated,
    ),
    (
        "DELETE",
        "/api/3.0/mlflow/roles/permissions/remove",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/roles/permissions/list",
        Rule::Authenticated,
    ),
    (
        "PATCH",
        "/api/3.0/mlflow/roles/permissions/update",
        Rule::Authenticated,
    ),
    ("POST", "/api/3.0/mlflow/roles/assign", Rule::Authenticated),
    (
        "DELETE",
        "/api/3.0/mlflow/roles/unassign",
        Rule::Authenticated,
    ),
    (
        "GET",
        "/api/3.0/mlflow/roles/users/list",
        Rule::Authenticated,
    ),
    ("POST", "/api/2.0/token/create", Rule::Authenticated),
    ("GET", "/api/2.0/token/list", Rule::Authenticated),
    ("POST", "/api/2.0/token/delete", Rule::Authenticated),
];

/// Mounts the routes (each also under `/ajax-api/`, which the UI calls).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (method, path, _) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        cfg.route(path, handler(path).method(method.clone()));
        if let Some(rest) = path.strip_prefix("/api/") {
            if !rest.starts_with("2.0/token/") {
                cfg.route(&format!("/ajax-api/{rest}"), handler(path).method(method));
            }
        }
    }
}

fn handler(path: &str) -> actix_web::Route {
    match path {
        "/api/2.0/mlflow/users/create" => web::to(create_user),
        "/api/2.0/mlflow/users/get" => web::to(get_user),
        "/api/2.0/mlflow/users/list" => web::to(list_users),
        "/api/2.0/mlflow/users/current" => web::to(current_user),
        "/api/2.0/mlflow/users/update-password" => web::to(update_password),
        "/api/2.0/mlflow/users/update-admin" => web::to(update_admin),
        "/api/2.0/mlflow/users/delete" => web::to(delete_user),
        "/api/3.0/mlflow/users/permissions/grant" => web::to(grant),
        "/api/3.0/mlflow/users/permissions/revoke" => web::to(revoke),
        "/api/3.0/mlflow/users/permissions/get" => web::to(get_permission),
        "/api/3.0/mlflow/users/permissions/list" => web::to(list_permissions),
        "/api/3.0/mlflow/users/current/permissions" => web::to(current_permissions),
        "/api/3.0/mlflow/users/roles/list" => web::to(user_roles),
        "/api/3.0/mlflow/roles/create" => web::to(create_role),
        "/api/3.0/mlflow/roles/get" => web::to(get_role),
        "/api/3.0/mlflow/roles/list" => web::to(list_roles),
        "/api/3.0/mlflow/roles/update" => web::to(update_role),
        "/api/3.0/mlflow/roles/delete" => web::to(delete_role),
        "/api/3.0/mlflow/roles/permissions/add" => web::to(add_role_permission),
        "/api/3.0/mlflow/roles/permissions/remove" => web::to(remove_role_permission),
        "/api/3.0/mlflow/roles/permissions/list" => web::to(list_role_permissions),
        "/api/3.0/mlflow/roles/permissions/update" => web::to(update_role_permission),
        "/api/3.0/mlflow/roles/assign" => web::to(assign_role),
        "/api/3.0/mlflow/roles/unassign" => web::to(unassign_role),
        "/api/3.0/mlflow/roles/users/list" => web::to(role_users),
        "/api/2.0/token/create" => web::to(create_token),
        "/api/2.0/token/list" => web::to(list_tokens),
        "/api/2.0/token/delete" => web::to(delete_token),
        other => unreachable!("auth route {other} has no handler"),
    }
}

type Svc = web::Data<AuthService>;

/// The authenticated caller (put there by the gate).
fn caller(req: &HttpRequest) -> Result<User> {
    req.extensions()
        .get::<User>()
        .cloned()
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, crate::service::UNAUTHENTICATED))
}

fn denied() -> Error {
    Error::new(ErrorCode::PermissionDenied, "Permission denied")
}

/// MLflow's `param()`: the query string for GET, else the JSON body (a DELETE without a JSON
/// body: the query string).
fn params(req: &HttpRequest, body: &[u8]) -> Map<String, Value> {
    let json_body = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let from_query = req.method() == Method::GET || (req.method() == Method::DELETE && !json_body);
    if from_query {
        let mut out = Map::new();
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
        {
            out.entry(k).or_insert(Value::String(v));
        }
        return out;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn text(p: &Map<String, Value>, name: &str) -> Result<String> {
    match p.get(name) {
        None | Some(Value::Null) => Err(missing_value(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
}

fn int(p: &Map<String, Value>, name: &str) -> Result<i64> {
    match p.get(name) {
        None | Some(Value::Null) => Err(missing_value(name)),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().parse().unwrap_or_default())
        }
        Some(v) => Err(Error::invalid(format!(
            "Parameter '{name}' must be an integer. Got: {}",
            match v {
                Value::String(s) => ferroflow_core::py_repr(s),
                other => other.to_string(),
            }
        ))),
    }
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

async fn user_named(svc: &Svc, username: &str) -> Result<User> {
    svc.store
        .user_by_name(username)
        .await?
        .map(|(u, _)| u)
        .ok_or_else(|| Error::not_found(format!("User with username={username} not found")))
}

/// Admins and workspace admins manage roles and wildcard grants.
async fn manages_roles(svc: &Svc, user: &User) -> Result<bool> {
    Ok(user.is_admin || svc.grants(user).await?.workspace_admin())
}

// ---- users ----

async fn create_user(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let json_body = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        return Err(Error::invalid(
            "Invalid content type. Must be application/json",
        ));
    }
    let p = params(&req, &body);
    let (username, password) = (text(&p, "username")?, text(&p, "password")?);
    if username.is_empty() || password.is_empty() {
        return Err(Error::invalid("Username and password cannot be empty."));
    }
    validate_password(&password)?;
    let hash = svc.hash(&password).await?;
    let user = svc.store.create_user(&username, &hash, false).await?;
    Ok(ok(json!({ "user": user })))
}

async fn get_user(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let username = text(&params(&req, &body), "username")?;
    if !me.is_admin && me.username != username {
        return Err(denied());
    }
    Ok(ok(json!({ "user": user_named(&svc, &username).await? })))
}

async fn list_users(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let mut out = Vec::new();
    for u in svc.store.list_users().await? {
        // Others' roles are shown to admins only.
        let roles = if me.is_admin || me.id == u.id {
            svc.store.roles(&[], Some(u.id)).await?
        } else {
            Vec::new()
        };
        out.push(
            json!({"id": u.id, "is_admin": u.is_admin, "roles": roles, "username": u.username}),
        );
    }
    Ok(ok(json!({ "users": out })))
}

async fn current_user(req: HttpRequest) -> Result<HttpResponse> {
    Ok(ok(json!({"is_basic_auth": true, "user": caller(&req)?})))
}

async fn update_password(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let username = text(&p, "username")?;
    if !me.is_admin && me.username != username {
        return Err(denied());
    }
    let password = text(&p, "password")?;
    if username == me.username {
        let current = match p.get("current_password") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(Error::invalid(
                    "Current password is required when changing your own password.",
                ))
            }
        };
        let (_, hash) =
            svc.store.user_by_name(&username).await?.ok_or_else(|| {
                Error::not_found(format!("User with username={username} not found"))
            })?;
        if !svc.verify(&current, &hash).await? {
            return Err(Error::invalid("Current password does not match."));
        }
        if current == password {
            return Err(Error::invalid(
                "New password must differ from the current password.",
            ));
        }
    }
    validate_password(&password)?;
    let user = user_named(&svc, &username).await?;
    let hash = svc.hash(&password).await?;
    svc.store.set_password(user.id, &hash).await?;
    svc.forget(user.id);
    Ok(ok(json!({})))
}

async fn update_admin(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let p = params(&req, &body);
    let username = text(&p, "username")?;
    let is_admin = match p.get("is_admin") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        None | Some(Value::Null) => return Err(missing_value("is_admin")),
        Some(v) => return Err(ferroflow_core::http::invalid_value("is_admin", v)),
    };
    let user = user_named(&svc, &username).await?;
    svc.store.set_admin(user.id, is_admin).await?;
    svc.forget(user.id);
    Ok(ok(json!({})))
}

async fn delete_user(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let username = text(&params(&req, &body), "username")?;
    if username == me.username {
        return Err(Error::new(
            ErrorCode::BadRequest,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        ));
    }
    let user = user_named(&svc, &username).await?;
    svc.store.delete_user(user.id).await?;
    svc.forget(user.id);
    Ok(ok(json!({})))
}

// ---- per-user permissions ----

fn valid_type(resource_type: &str) -> Result<bool> {
    takes_ids(resource_type).ok_or_else(|| {
        let mut names: Vec<&str> = ferroflow_core::access::RESOURCE_TYPES
            .iter()
            .map(|(t, _)| *t)
            .collect();
        names.sort();
        Error::invalid(format!(
            "Invalid resource type '{resource_type}'. Valid resource types are: ({})",
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// A permission a grant may carry on `resource_type`.
fn grantable(resource_type: &str, permission: &str) -> Result<Permission> {
    let p = Permission::parse(permission).ok_or_else(|| {
        Error::invalid(format!(
            "Invalid permission '{permission}'. Valid permissions are: ('READ', 'USE', 'EDIT', \
             'MANAGE', 'NO_PERMISSIONS', 'DENY')"
        ))
    })?;
    valid_type(resource_type)?;
    if resource_type == "workspace" {
        if !matches!(p, Permission::Use | Permission::Manage) {
            return Err(Error::invalid(format!(
                "Invalid permission '{permission}' for resource_type='workspace'. Workspace-wide \
                 grants accept only: ('MANAGE', 'USE')."
            )));
        }
    } else if p == Permission::NoPermissions {
        return Err(Error::invalid(format!(
            "Invalid permission '{permission}' for resource_type='{resource_type}'. \
             Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE')."
        )));
    }
    Ok(p)
}

fn check_pattern(resource_type: &str, pattern: &str) -> Result<()> {
    if pattern != "*" && !valid_type(resource_type)? {
        return Err(Error::invalid(format!(
            "Invalid resource_pattern '{pattern}' for resource_type='{resource_type}'. This \
             resource type supports only wildcard ('*') grants."
        )));
    }
    if pattern.is_empty() {
        return Err(Error::invalid("resource_pattern cannot be empty."));
    }
    Ok(())
}

fn no_workspace(resource_type: &str) -> Result<()> {
    if resource_type == "workspace" {
        return Err(Error::invalid(
            "resource_type 'workspace' is not supported by the per-user permission convenience \
             APIs. Use set_workspace_permission / delete_workspace_permission for workspace-wide \
             grants.",
        ));
    }
    Ok(())
}

/// Who may grant or revoke on a resource: admins, workspace admins, or whoever MANAGEs it.
async fn may_manage(svc: &Svc, me: &User, resource_type: &str, id: &str) -> Result<bool> {
    if me.is_admin {
        return Ok(true);
    }
    let g = svc.grants(me).await?;
    Ok(g.workspace_admin() || (id != "*" && g.point(resource_type, id).allows(Need::Manage)))
}

async fn grant(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let username = text(&p, "username")?;
    let resource_type = text(&p, "resource_type")?;
    let resource_id = text(&p, "resource_id")?;
    let permission = text(&p, "permission")?;
    no_workspace(&resource_type)?;
    check_pattern(&resource_type, &resource_id)?;
    let permission = grantable(&resource_type, &permission)?;
    if !may_manage(&svc, &me, &resource_type, &resource_id).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &username).await?;
    let role = svc.store.user_role(user.id).await?;
    if svc
        .store
        .role_grant(role, &resource_type, &resource_id)
        .await?
        .is_some()
    {
        return Err(Error::already_exists(format!(
            "Permission for user={username} on resource_type={resource_type}, \
             resource_id={resource_id} already exists."
        )));
    }
    svc.store
        .add_role_permission(role, &resource_type, &resource_id, permission)
        .await?;
    Ok(ok(json!({})))
}

async fn revoke(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let username = text(&p, "username")?;
    let resource_type = text(&p, "resource_type")?;
    let resource_id = text(&p, "resource_id")?;
    no_workspace(&resource_type)?;
    check_pattern(&resource_type, &resource_id)?;
    if !may_manage(&svc, &me, &resource_type, &resource_id).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &username).await?;
    let role = svc.store.user_role(user.id).await?;
    let not_found = || {
        Error::not_found(format!(
            "Permission for user={username} on resource_type={resource_type}, \
             resource_id={resource_id} not found."
        ))
    };
    let row = svc
        .store
        .role_grant(role, &resource_type, &resource_id)
        .await?
        .ok_or_else(not_found)?;
    svc.store.remove_role_permission(row.id).await?;
    Ok(ok(json!({})))
}

async fn get_permission(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let username = text(&p, "username")?;
    let resource_type = text(&p, "resource_type")?;
    let resource_id = text(&p, "resource_id")?;
    no_workspace(&resource_type)?;
    if !valid_type(&resource_type)? && resource_id != "*" {
        return Err(Error::invalid(format!(
            "resource_type '{resource_type}' is not supported by the per-user permission \
             convenience APIs."
        )));
    }
    if !me.is_admin && me.username != username && !svc.grants(&me).await?.workspace_admin() {
        return Err(denied());
    }
    let user = user_named(&svc, &username).await?;
    let grants = svc.grants(&user).await?;
    let perm = grants.point(&resource_type, &resource_id);
    Ok(ok(
        json!({"allowed": perm.allows(Need::Use), "permission": perm.name()}),
    ))
}

async fn permissions_of(svc: &Svc, user: &User) -> Result<HttpResponse> {
    Ok(ok(json!({
        "is_admin": user.is_admin,
        "permissions": svc.store.permission_rows(user.id).await?,
    })))
}

async fn list_permissions(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let username = text(&params(&req, &body), "username")?;
    if !me.is_admin && me.username != username && !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &username).await?;
    permissions_of(&svc, &user).await
}

async fn current_permissions(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let me = caller(&req)?;
    permissions_of(&svc, &me).await
}

// ---- roles ----

async fn role_or_404(svc: &Svc, id: i64) -> Result<crate::model::Role> {
    svc.store
        .role(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("Role with id={id} not found")))
}

fn role_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("Role name cannot be empty."));
    }
    if name.starts_with("__user_") {
        return Err(Error::invalid(format!(
            "Role name '{name}' uses the reserved '__user_' prefix, which is held for the per-user \
             permission representation. Choose a different name."
        )));
    }
    Ok(())
}

async fn create_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let p = params(&req, &body);
    let name = text(&p, "name")?;
    let workspace = text(&p, "workspace")?;
    role_name(&name)?;
    if workspace.trim().is_empty() {
        return Err(Error::invalid("Workspace cannot be empty."));
    }
    let description = match p.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::invalid("Role description must be a string or null.")),
    };
    let id = svc
        .store
        .create_role(&name, &workspace, description.as_deref())
        .await?;
    Ok(ok(json!({ "role": role_or_404(&svc, id).await? })))
}

/// Admins, workspace admins, and users holding some role may read roles.
async fn views_roles(svc: &Svc, me: &User) -> Result<bool> {
    Ok(manages_roles(svc, me).await? || !svc.store.roles(&[], Some(me.id)).await?.is_empty())
}

async fn get_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = int(&params(&req, &body), "role_id")?;
    if !views_roles(&svc, &me).await? {
        return Err(denied());
    }
    Ok(ok(json!({ "role": role_or_404(&svc, id).await? })))
}

async fn list_roles(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let workspaces: Vec<String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k == "workspace")
            .map(|(_, v)| v)
            .collect();
    if workspaces.iter().any(|w| w.trim().is_empty()) {
        return Err(Error::invalid(
            "Parameter 'workspace' must be a non-empty string when provided.",
        ));
    }
    if !manages_roles(&svc, &me).await? {
        let mine = svc.store.roles(&[], Some(me.id)).await?;
        let member = |w: &String| mine.iter().any(|r| &r.workspace == w);
        if workspaces.is_empty() || !workspaces.iter().all(member) {
            return Err(denied());
        }
    }
    Ok(ok(
        json!({ "roles": svc.store.roles(&workspaces, None).await? }),
    ))
}

async fn update_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let id = int(&p, "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let name = match p.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().unwrap_or_default().to_string()),
    };
    let description = match p.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::invalid("Role description must be a string.")),
    };
    if name.is_none() && description.is_none() {
        return Err(Error::invalid(
            "At least one of 'name' or 'description' must be provided to update a role.",
        ));
    }
    if let Some(n) = &name {
        role_name(n)?;
    }
    role_or_404(&svc, id).await?;
    svc.store
        .update_role(id, name.as_deref(), description.as_deref())
        .await?;
    Ok(ok(json!({ "role": role_or_404(&svc, id).await? })))
}

async fn delete_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = int(&params(&req, &body), "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    role_or_404(&svc, id).await?;
    svc.store.delete_role(id).await?;
    Ok(ok(json!({})))
}

async fn add_role_permission(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let id = int(&p, "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let resource_type = text(&p, "resource_type")?;
    let pattern = text(&p, "resource_pattern")?;
    let permission = grantable(&resource_type, &text(&p, "permission")?)?;
    check_pattern(&resource_type, &pattern)?;
    role_or_404(&svc, id).await?;
    let rp = svc
        .store
        .add_role_permission(id, &resource_type, &pattern, permission)
        .await?;
    Ok(ok(json!({ "role_permission": rp })))
}

async fn remove_role_permission(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = int(&params(&req, &body), "role_permission_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    if svc.store.remove_role_permission(id).await? == 0 {
        return Err(Error::not_found(format!(
            "Role permission with id={id} not found"
        )));
    }
    Ok(ok(json!({})))
}

async fn list_role_permissions(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = int(&params(&req, &body), "role_id")?;
    if !views_roles(&svc, &me).await? {
        return Err(denied());
    }
    let role = role_or_404(&svc, id).await?;
    Ok(ok(json!({ "role_permissions": role.permissions })))
}

async fn update_role_permission(
    svc: Svc,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let id = int(&p, "role_permission_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let permission = text(&p, "permission")?;
    let row = svc
        .store
        .role_permission(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("Role permission with id={id} not found")))?;
    let permission = grantable(&row.resource_type, &permission)?;
    svc.store.set_role_permission(id, permission).await?;
    let row = svc.store.role_permission(id).await?;
    Ok(ok(json!({ "role_permission": row })))
}

async fn assign_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let id = int(&p, "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &text(&p, "username")?).await?;
    role_or_404(&svc, id).await?;
    let a = svc.store.assign(user.id, id).await?;
    Ok(ok(json!({ "assignment": a })))
}

async fn unassign_role(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let id = int(&p, "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &text(&p, "username")?).await?;
    if svc.store.unassign(user.id, id).await? == 0 {
        return Err(Error::not_found(format!(
            "User role assignment (user_id={}, role_id={id}) not found",
            user.id
        )));
    }
    Ok(ok(json!({})))
}

async fn user_roles(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let username = text(&params(&req, &body), "username")?;
    if !me.is_admin && me.username != username && !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    let user = user_named(&svc, &username).await?;
    Ok(ok(
        json!({ "roles": svc.store.roles(&[], Some(user.id)).await? }),
    ))
}

async fn role_users(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = int(&params(&req, &body), "role_id")?;
    if !manages_roles(&svc, &me).await? {
        return Err(denied());
    }
    role_or_404(&svc, id).await?;
    Ok(ok(
        json!({ "assignments": svc.store.assignments_of_role(id).await? }),
    ))
}

// ---- access tokens (Databricks' Token API shapes) ----

async fn create_token(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let p = params(&req, &body);
    let comment = match p.get("comment") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(ferroflow_core::http::invalid_value("comment", v)),
    };
    let lifetime = match p.get("lifetime_seconds") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => s.parse().ok(),
        Some(v) => return Err(ferroflow_core::http::invalid_value("lifetime_seconds", v)),
    };
    let (value, info) = svc.create_token(&me, comment, lifetime).await?;
    Ok(ok(json!({"token_value": value, "token_info": info})))
}

async fn list_tokens(svc: Svc, req: HttpRequest) -> Result<HttpResponse> {
    let me = caller(&req)?;
    Ok(ok(
        json!({ "token_infos": svc.store.tokens_of(me.id).await? }),
    ))
}

async fn delete_token(svc: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse> {
    let me = caller(&req)?;
    let id = text(&params(&req, &body), "token_id")?;
    if svc.store.delete_token(me.id, &id).await? == 0 {
        return Err(Error::not_found(format!("Token with id={id} not found")));
    }
    // Cached verifications of the token age out; drop this user's at once.
    svc.forget(me.id);
    Ok(ok(json!({})))
}
