//! SQL over the auth tables (migration 0008). Both backends take `$n` placeholders through
//! sqlx's Any driver.

use ferroflow_core::access::{Grant, Permission};
use ferroflow_core::{Db, Error, Result, StorageContext};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{
    user_role_name, Assignment, PermissionRow, Role, RolePermission, TokenInfo, User,
    DEFAULT_WORKSPACE,
};

#[derive(Clone)]
pub struct AuthStore {
    db: Db,
}

fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn user_of(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get(0).context("failed to read a user")?,
        username: row.try_get(1).context("failed to read a user")?,
        is_admin: row.try_get::<i64, _>(2).context("failed to read a user")? != 0,
    })
}

fn role_permission_of(row: &AnyRow) -> Result<RolePermission> {
    let ctx = "failed to read a role permission";
    Ok(RolePermission {
        id: row.try_get(0).context(ctx)?,
        role_id: row.try_get(1).context(ctx)?,
        resource_type: row.try_get(2).context(ctx)?,
        resource_pattern: row.try_get(3).context(ctx)?,
        permission: row.try_get(4).context(ctx)?,
    })
}

const RP_COLUMNS: &str = "id, role_id, resource_type, resource_pattern, permission";

impl AuthStore {
    pub fn new(db: Db) -> Self {
        AuthStore { db }
    }

    // ---- users ----

    /// A user and their password hash.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, username, is_admin, password_hash FROM auth_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.db.reader())
        .await
        .context("failed to read a user")?;
        match row {
            Some(r) => Ok(Some((
                user_of(&r)?,
                r.try_get(3).context("failed to read a user")?,
            ))),
            None => Ok(None),
        }
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, is_admin FROM auth_users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
            .context("failed to read a user")?;
        row.as_ref().map(user_of).transpose()
    }

    pub async fn create_user(&self, username: &str, hash: &str, is_admin: bool) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO auth_users (username, password_hash, is_admin) VALUES ($1, $2, $3) \
             RETURNING id, username, is_admin",
        )
        .bind(username)
        .bind(hash)
        .bind(is_admin as i64)
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::already_exists(format!("User (username={username}) already exists."))
            } else {
                Error::storage("failed to create a user", e)
            }
        })?;
        user_of(&row)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT id, username, is_admin FROM auth_users ORDER BY id")
            .fetch_all(self.db.reader())
            .await
            .context("failed to list users")?;
        rows.iter().map(user_of).collect()
    }

    pub async fn set_password(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE auth_users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(self.db.writer())
            .await
            .context("failed to update a password")?;
        Ok(())
    }

    pub async fn set_admin(&self, user_id: i64, is_admin: bool) -> Result<()> {
        sqlx::query("UPDATE auth_users SET is_admin = $1 WHERE id = $2")
            .bind(is_admin as i64)
            .bind(user_id)
            .execute(self.db.writer())
            .await
            .context("failed to update a user")?;
        Ok(())
    }

    /// Deletes a user, their hidden grant role, assignments and tokens, in one transaction.
    pub async fn delete_user(&self, user_id: i64) -> Result<()> {
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin a transaction")?;
        let role = user_role_name(user_id);
        for sql in [
            "DELETE FROM auth_role_permissions WHERE role_id IN \
             (SELECT id FROM auth_roles WHERE name = $1)",
            "DELETE FROM auth_user_roles WHERE role_id IN \
             (SELECT id FROM auth_roles WHERE name = $1)",
            "DELETE FROM auth_roles WHERE name = $1",
        ] {
            sqlx::query(sql)
                .bind(&role)
                .execute(&mut *tx)
                .await
                .context("failed to delete a user's grants")?;
        }
        for sql in [
            "DELETE FROM auth_user_roles WHERE user_id = $1",
            "DELETE FROM auth_tokens WHERE user_id = $1",
            "DELETE FROM auth_users WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .context("failed to delete a user")?;
        }
        tx.commit().await.context("failed to delete a user")?;
        Ok(())
    }

    // ---- grants ----

    /// Every grant of every role the user holds (workspace `default`).
    pub async fn grants_of(&self, user_id: i64) -> Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT p.resource_type, p.resource_pattern, p.permission FROM auth_role_permissions p \
             JOIN auth_user_roles u ON u.role_id = p.role_id \
             JOIN auth_roles r ON r.id = p.role_id \
             WHERE u.user_id = $1 AND r.workspace = $2",
        )
        .bind(user_id)
        .bind(DEFAULT_WORKSPACE)
        .fetch_all(self.db.reader())
        .await
        .context("failed to read grants")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let permission: String = r.try_get(2).context("failed to read grants")?;
            out.push(Grant {
                resource_type: r.try_get(0).context("failed to read grants")?,
                pattern: r.try_get(1).context("failed to read grants")?,
                permission: Permission::parse(&permission).unwrap_or(Permission::NoPermissions),
            });
        }
        Ok(out)
    }

    /// The rows of `users/permissions/list`.
    pub async fn permission_rows(&self, user_id: i64) -> Result<Vec<PermissionRow>> {
        let rows = sqlx::query(
            "SELECT p.permission, p.resource_pattern, p.resource_type, r.id, r.name, r.workspace \
             FROM auth_role_permissions p JOIN auth_user_roles u ON u.role_id = p.role_id \
             JOIN auth_roles r ON r.id = p.role_id WHERE u.user_id = $1 ORDER BY r.id, p.id",
        )
        .bind(user_id)
        .fetch_all(self.db.reader())
        .await
        .context("failed to list permissions")?;
        let ctx = "failed to list permissions";
        rows.iter()
            .map(|r| {
                Ok(PermissionRow {
                    permission: r.try_get(0).context(ctx)?,
                    resource_pattern: r.try_get(1).context(ctx)?,
                    resource_type: r.try_get(2).context(ctx)?,
                    role_id: r.try_get(3).context(ctx)?,
                    role_name: r.try_get(4).context(ctx)?,
                    workspace: r.try_get(5).context(ctx)?,
                })
            })
            .collect()
    }

    /// The user's hidden grant role, created and assigned on first use.
    pub async fn user_role(&self, user_id: i64) -> Result<i64> {
        let name = user_role_name(user_id);
        sqlx::query(
            "INSERT INTO auth_roles (name, workspace) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&name)
        .bind(DEFAULT_WORKSPACE)
        .execute(self.db.writer())
        .await
        .context("failed to create a user's grant role")?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM auth_roles WHERE name = $1 AND workspace = $2")
                .bind(&name)
                .bind(DEFAULT_WORKSPACE)
                .fetch_one(self.db.writer())
                .await
                .context("failed to read a user's grant role")?;
        sqlx::query(
            "INSERT INTO auth_user_roles (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(id)
        .execute(self.db.writer())
        .await
        .context("failed to assign a user's grant role")?;
        Ok(id)
    }

    /// The grant on one key of a role, if any.
    pub async fn role_grant(
        &self,
        role_id: i64,
        resource_type: &str,
        pattern: &str,
    ) -> Result<Option<RolePermission>> {
        let row = sqlx::query(&format!(
            "SELECT {RP_COLUMNS} FROM auth_role_permissions WHERE role_id = $1 \
             AND resource_type = $2 AND resource_pattern = $3"
        ))
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern)
        .fetch_optional(self.db.reader())
        .await
        .context("failed to read a grant")?;
        row.as_ref().map(role_permission_of).transpose()
    }

    /// Sets a grant on a role (insert, or replace the permission of an existing key).
    pub async fn upsert_grant(
        &self,
        role_id: i64,
        resource_type: &str,
        pattern: &str,
        permission: Permission,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_role_permissions (role_id, resource_type, resource_pattern, permission) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (role_id, resource_type, resource_pattern) \
             DO UPDATE SET permission = excluded.permission",
        )
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern)
        .bind(permission.name())
        .execute(self.db.writer())
        .await
        .context("failed to write a grant")?;
        Ok(())
    }

    /// Renames a resource in every hidden per-user role (a registered model's rename).
    pub async fn rename_pattern(&self, resource_type: &str, old: &str, new: &str) -> Result<()> {
        sqlx::query(
            "UPDATE auth_role_permissions SET resource_pattern = $1 WHERE resource_type = $2 \
             AND resource_pattern = $3 AND role_id IN (SELECT id FROM auth_roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\')",
        )
        .bind(new)
        .bind(resource_type)
        .bind(old)
        .execute(self.db.writer())
        .await
        .context("failed to rename grants")?;
        Ok(())
    }

    /// Drops a deleted resource's grants from every hidden per-user role.
    pub async fn delete_pattern(&self, resource_type: &str, pattern: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM auth_role_permissions WHERE resource_type = $1 AND resource_pattern = $2 \
             AND role_id IN (SELECT id FROM auth_roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\')",
        )
        .bind(resource_type)
        .bind(pattern)
        .execute(self.db.writer())
        .await
        .context("failed to delete grants")?;
        Ok(())
    }

    // ---- roles ----

    pub async fn create_role(
        &self,
        name: &str,
        workspace: &str,
        description: Option<&str>,
    ) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO auth_roles (name, workspace, description) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(workspace)
        .bind(description.map(str::to_string))
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::already_exists(format!(
                    "Role (name={name}, workspace={workspace}) already exists."
                ))
            } else {
                Error::storage("failed to create a role", e)
            }
        })
    }

    pub async fn role(&self, id: i64) -> Result<Option<Role>> {
        let row =
            sqlx::query("SELECT id, name, workspace, description FROM auth_roles WHERE id = $1")
                .bind(id)
                .fetch_optional(self.db.reader())
                .await
                .context("failed to read a role")?;
        let Some(row) = row else { return Ok(None) };
        let mut role = Self::role_of(&row)?;
        role.permissions = self.role_permissions(id).await?;
        Ok(Some(role))
    }

    fn role_of(row: &AnyRow) -> Result<Role> {
        let ctx = "failed to read a role";
        Ok(Role {
            id: row.try_get(0).context(ctx)?,
            name: row.try_get(1).context(ctx)?,
            workspace: row.try_get(2).context(ctx)?,
            description: row.try_get(3).context(ctx)?,
            permissions: Vec::new(),
        })
    }

    /// Roles (with their grants), optionally only of some workspaces or of one user.
    pub async fn roles(&self, workspaces: &[String], user_id: Option<i64>) -> Result<Vec<Role>> {
        let mut sql =
            String::from("SELECT r.id, r.name, r.workspace, r.description FROM auth_roles r");
        if user_id.is_some() {
            sql.push_str(" JOIN auth_user_roles u ON u.role_id = r.id AND u.user_id = $1");
        }
        sql.push_str(" ORDER BY r.id");
        let mut q = sqlx::query(&sql);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        let rows = q
            .fetch_all(self.db.reader())
            .await
            .context("failed to list roles")?;
        let mut out = Vec::new();
        for row in &rows {
            let mut role = Self::role_of(row)?;
            if !workspaces.is_empty() && !workspaces.contains(&role.workspace) {
                continue;
            }
            role.permissions = self.role_permissions(role.id).await?;
            out.push(role);
        }
        Ok(out)
    }

    pub async fn update_role(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        if let Some(name) = name {
            sqlx::query("UPDATE auth_roles SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(|e| {
                    if unique_violation(&e) {
                        Error::already_exists(format!(
                            "Role with name={name} already exists in workspace={DEFAULT_WORKSPACE}"
                        ))
                    } else {
                        Error::storage("failed to update a role", e)
                    }
                })?;
        }
        if let Some(d) = description {
            sqlx::query("UPDATE auth_roles SET description = $1 WHERE id = $2")
                .bind(d)
                .bind(id)
                .execute(self.db.writer())
                .await
                .context("failed to update a role")?;
        }
        Ok(())
    }

    pub async fn delete_role(&self, id: i64) -> Result<()> {
        let mut tx = self
            .db
            .writer()
            .begin()
            .await
            .context("failed to begin a transaction")?;
        for sql in [
            "DELETE FROM auth_role_permissions WHERE role_id = $1",
            "DELETE FROM auth_user_roles WHERE role_id = $1",
            "DELETE FROM auth_roles WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("failed to delete a role")?;
        }
        tx.commit().await.context("failed to delete a role")?;
        Ok(())
    }

    pub async fn role_permissions(&self, role_id: i64) -> Result<Vec<RolePermission>> {
        let rows = sqlx::query(&format!(
            "SELECT {RP_COLUMNS} FROM auth_role_permissions WHERE role_id = $1 ORDER BY id"
        ))
        .bind(role_id)
        .fetch_all(self.db.reader())
        .await
        .context("failed to list role permissions")?;
        rows.iter().map(role_permission_of).collect()
    }

    pub async fn role_permission(&self, id: i64) -> Result<Option<RolePermission>> {
        let row = sqlx::query(&format!(
            "SELECT {RP_COLUMNS} FROM auth_role_permissions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await
        .context("failed to read a role permission")?;
        row.as_ref().map(role_permission_of).transpose()
    }

    pub async fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        pattern: &str,
        permission: Permission,
    ) -> Result<RolePermission> {
        let row = sqlx::query(&format!(
            "INSERT INTO auth_role_permissions (role_id, resource_type, resource_pattern, permission) \
             VALUES ($1, $2, $3, $4) RETURNING {RP_COLUMNS}"
        ))
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern)
        .bind(permission.name())
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::already_exists(format!(
                    "Role permission (role_id={role_id}, resource_type={resource_type}, \
                     resource_pattern={pattern}) already exists."
                ))
            } else {
                Error::storage("failed to add a role permission", e)
            }
        })?;
        role_permission_of(&row)
    }

    pub async fn set_role_permission(&self, id: i64, permission: Permission) -> Result<()> {
        sqlx::query("UPDATE auth_role_permissions SET permission = $1 WHERE id = $2")
            .bind(permission.name())
            .bind(id)
            .execute(self.db.writer())
            .await
            .context("failed to update a role permission")?;
        Ok(())
    }

    pub async fn remove_role_permission(&self, id: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_role_permissions WHERE id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await
            .context("failed to remove a role permission")?;
        Ok(done.rows_affected())
    }

    pub async fn assign(&self, user_id: i64, role_id: i64) -> Result<Assignment> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO auth_user_roles (user_id, role_id) VALUES ($1, $2) RETURNING id",
        )
        .bind(user_id)
        .bind(role_id)
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::already_exists(format!(
                    "User role assignment (user_id={user_id}, role_id={role_id}) already exists"
                ))
            } else {
                Error::storage("failed to assign a role", e)
            }
        })?;
        Ok(Assignment {
            id,
            role_id,
            user_id,
        })
    }

    pub async fn unassign(&self, user_id: i64, role_id: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_user_roles WHERE user_id = $1 AND role_id = $2")
            .bind(user_id)
            .bind(role_id)
            .execute(self.db.writer())
            .await
            .context("failed to unassign a role")?;
        Ok(done.rows_affected())
    }

    pub async fn assignments_of_role(&self, role_id: i64) -> Result<Vec<Assignment>> {
        let rows = sqlx::query(
            "SELECT id, user_id, role_id FROM auth_user_roles WHERE role_id = $1 ORDER BY id",
        )
        .bind(role_id)
        .fetch_all(self.db.reader())
        .await
        .context("failed to list assignments")?;
        let ctx = "failed to list assignments";
        rows.iter()
            .map(|r| {
                Ok(Assignment {
                    id: r.try_get(0).context(ctx)?,
                    user_id: r.try_get(1).context(ctx)?,
                    role_id: r.try_get(2).context(ctx)?,
                })
            })
            .collect()
    }

    // ---- tokens ----

    pub async fn create_token(&self, user_id: i64, info: &TokenInfo, hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_tokens (token_id, user_id, comment, secret_hash, creation_time, \
             expiry_time) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.token_id)
        .bind(user_id)
        .bind(&info.comment)
        .bind(hash)
        .bind(info.creation_time)
        .bind(info.expiry_time)
        .execute(self.db.writer())
        .await
        .context("failed to create a token")?;
        Ok(())
    }

    /// A token's owner, hash and expiry.
    pub async fn token(&self, token_id: &str) -> Result<Option<(i64, String, i64)>> {
        let row = sqlx::query(
            "SELECT user_id, secret_hash, expiry_time FROM auth_tokens WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(self.db.reader())
        .await
        .context("failed to read a token")?;
        let ctx = "failed to read a token";
        row.map(|r| {
            Ok((
                r.try_get(0).context(ctx)?,
                r.try_get(1).context(ctx)?,
                r.try_get(2).context(ctx)?,
            ))
        })
        .transpose()
    }

    pub async fn tokens_of(&self, user_id: i64) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT token_id, comment, creation_time, expiry_time, last_used_time FROM auth_tokens \
             WHERE user_id = $1 ORDER BY creation_time, token_id",
        )
        .bind(user_id)
        .fetch_all(self.db.reader())
        .await
        .context("failed to list tokens")?;
        let ctx = "failed to list tokens";
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    token_id: r.try_get(0).context(ctx)?,
                    comment: r.try_get(1).context(ctx)?,
                    creation_time: r.try_get(2).context(ctx)?,
                    expiry_time: r.try_get(3).context(ctx)?,
                    last_used_time: r.try_get(4).context(ctx)?,
                })
            })
            .collect()
    }

    pub async fn delete_token(&self, user_id: i64, token_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_tokens WHERE token_id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(self.db.writer())
            .await
            .context("failed to delete a token")?;
        Ok(done.rows_affected())
    }

    pub async fn touch_token(&self, token_id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE auth_tokens SET last_used_time = $1 WHERE token_id = $2")
            .bind(now)
            .bind(token_id)
            .execute(self.db.writer())
            .await
            .context("failed to update a token")?;
        Ok(())
    }
}
