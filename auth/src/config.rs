//! Auth configuration, read as MLflow 3.17.2 reads it: the `[mlflow]` section of the ini file
//! named by `MLFLOW_AUTH_CONFIG_PATH` (keys `default_permission`, `admin_username`,
//! `admin_password`, `database_uri`, `authorization_function`), overridden by
//! `MLFLOW_AUTH_ADMIN_USERNAME` / `MLFLOW_AUTH_ADMIN_PASSWORD`. There is no default admin
//! password.

use std::collections::HashMap;
use std::path::Path;

use ferroflow_core::access::Permission;
use ferroflow_core::{Error, Result};

/// The password older MLflow versions shipped in basic_auth.ini; refused everywhere.
pub const INSECURE_PASSWORD: &str = "password1234";
/// MLflow's minimum password length.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The only authorization function ferroflow implements (HTTP Basic, plus bearer tokens).
pub const DEFAULT_AUTHORIZATION_FUNCTION: &str =
    "mlflow.server.auth:authenticate_request_basic_auth";

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub default_permission: Permission,
    pub admin_username: String,
    pub admin_password: Option<String>,
    /// Accepted for MLflow compatibility; ferroflow keeps users and grants in the backend
    /// store so that replicas agree.
    pub database_uri: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            default_permission: Permission::Read,
            admin_username: "admin".into(),
            admin_password: None,
            database_uri: None,
        }
    }
}

/// The `[mlflow]` section of an ini file (`key = value`, `#`/`;` comments).
fn ini_section(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut in_mlflow = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            in_mlflow = &line[1..line.len() - 1] == "mlflow";
            continue;
        }
        if !in_mlflow {
            continue;
        }
        if let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

impl AuthConfig {
    /// Reads the configuration from the environment (as `mlflow server --app-name basic-auth`).
    pub fn from_env() -> Result<AuthConfig> {
        let path = std::env::var("MLFLOW_AUTH_CONFIG_PATH").ok();
        let env = |k: &str| std::env::var(k).ok();
        Self::load(
            path.as_deref().map(Path::new),
            env("MLFLOW_AUTH_ADMIN_USERNAME"),
            env("MLFLOW_AUTH_ADMIN_PASSWORD"),
        )
    }

    /// The configuration from an ini file (or MLflow's shipped defaults) and the two overrides.
    pub fn load(
        path: Option<&Path>,
        admin_username: Option<String>,
        admin_password: Option<String>,
    ) -> Result<AuthConfig> {
        let mut cfg = AuthConfig::default();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid(format!(
                    "cannot read the auth configuration MLFLOW_AUTH_CONFIG_PATH={}: {e}",
                    path.display()
                ))
            })?;
            let ini = ini_section(&text);
            let default = ini.get("default_permission").ok_or_else(|| {
                Error::invalid(format!(
                    "{}: the [mlflow] section needs default_permission",
                    path.display()
                ))
            })?;
            cfg.default_permission = Permission::parse(default).ok_or_else(|| {
                Error::invalid(format!(
                    "{}: invalid default_permission '{default}'. Valid permissions are: \
                     ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')",
                    path.display()
                ))
            })?;
            if let Some(u) = ini.get("admin_username") {
                cfg.admin_username = u.clone();
            }
            cfg.admin_password = ini.get("admin_password").cloned();
            cfg.database_uri = ini.get("database_uri").cloned();
            if let Some(f) = ini.get("authorization_function") {
                if f != DEFAULT_AUTHORIZATION_FUNCTION {
                    return Err(Error::invalid(format!(
                        "{}: authorization_function '{f}' is not supported: ferroflow \
                         authenticates with HTTP Basic and access tokens \
                         ({DEFAULT_AUTHORIZATION_FUNCTION})",
                        path.display()
                    )));
                }
            }
        }
        // As MLflow: an environment variable that is set wins, even when empty.
        if let Some(u) = admin_username {
            cfg.admin_username = u;
        }
        if let Some(p) = admin_password {
            cfg.admin_password = Some(p);
        }
        if cfg.admin_password.as_deref() == Some("") {
            cfg.admin_password = None;
        }
        if cfg.admin_username.is_empty() {
            return Err(Error::invalid(
                "MLflow Authentication needs a username for the admin user, but none is \
                 configured (or it is empty). Set the MLFLOW_AUTH_ADMIN_USERNAME environment \
                 variable, or set `admin_username` in the configuration file referenced by \
                 MLFLOW_AUTH_CONFIG_PATH, and restart the server.",
            ));
        }
        Ok(cfg)
    }
}

/// MLflow's password rule.
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(format!(
            "Password must be at least {MIN_PASSWORD_LEN} characters."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ini_file_sets_every_key_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.ini");
        std::fs::write(
            &path,
            "[mlflow]\ndefault_permission = NO_PERMISSIONS\nadmin_username = root\n\
             admin_password = from-the-file-123\ndatabase_uri = sqlite:///basic_auth.db\n",
        )
        .unwrap();
        let cfg = AuthConfig::load(Some(&path), None, None).unwrap();
        assert_eq!(cfg.default_permission, Permission::NoPermissions);
        assert_eq!(cfg.admin_username, "root");
        assert_eq!(cfg.admin_password.as_deref(), Some("from-the-file-123"));
        let cfg = AuthConfig::load(
            Some(&path),
            Some("boss".into()),
            Some("from-env-12345".into()),
        )
        .unwrap();
        assert_eq!(cfg.admin_username, "boss");
        assert_eq!(cfg.admin_password.as_deref(), Some("from-env-12345"));
    }

    #[test]
    fn an_unknown_permission_or_authorization_function_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.ini");
        std::fs::write(&path, "[mlflow]\ndefault_permission = ALL\n").unwrap();
        assert!(AuthConfig::load(Some(&path), None, None).is_err());
        std::fs::write(
            &path,
            "[mlflow]\ndefault_permission = READ\nauthorization_function = my.mod:fn\n",
        )
        .unwrap();
        assert!(AuthConfig::load(Some(&path), None, None).is_err());
    }
}
