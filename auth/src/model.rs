//! Users, roles, grants and tokens, serialized as MLflow 3.17.2's auth API answers them.

use serde::Serialize;

/// The workspace every role lives in (MLflow's, with workspaces off).
pub const DEFAULT_WORKSPACE: &str = "default";

/// A user, as the auth API shows one: `{id, is_admin, username}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub is_admin: bool,
    pub username: String,
}

/// A grant row of a role.
#[derive(Debug, Clone, Serialize)]
pub struct RolePermission {
    pub id: i64,
    pub permission: String,
    pub resource_pattern: String,
    pub resource_type: String,
    pub role_id: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub description: Option<String>,
    pub id: i64,
    pub name: String,
    pub permissions: Vec<RolePermission>,
    pub workspace: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub id: i64,
    pub role_id: i64,
    pub user_id: i64,
}

/// One row of `users/permissions/list`: a grant of one of the user's roles.
#[derive(Debug, Clone, Serialize)]
pub struct PermissionRow {
    pub permission: String,
    pub resource_pattern: String,
    pub resource_type: String,
    pub role_id: i64,
    pub role_name: String,
    pub workspace: String,
}

/// An access token as listed (Databricks' `token_info`); the secret is never shown again.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub token_id: String,
    pub comment: String,
    pub creation_time: i64,
    /// -1: never expires.
    pub expiry_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_time: Option<i64>,
}

/// The name of a user's hidden role that holds their direct grants.
pub fn user_role_name(user_id: i64) -> String {
    format!("__user_{user_id}__")
}
