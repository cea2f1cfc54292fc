//! Who is calling and what they may do: credential checks (HTTP Basic and access tokens) with a
//! verified-credential cache and failed-login throttling, users, roles, grants and tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use ferroflow_core::access::{Grants, Permission};
use ferroflow_core::{Db, Error, ErrorCode, Result};
use sha2::{Digest, Sha256};

use crate::config::{validate_password, AuthConfig, INSECURE_PASSWORD};
use crate::model::{TokenInfo, User};
use crate::store::AuthStore;

/// Failed logins allowed per (user, address) in one window before further tries are refused.
pub const MAX_FAILED_LOGINS: u32 = 10;
/// The throttling window.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified credential is trusted without hashing it again. A password change or
/// user deletion on this replica drops the entry at once; on another replica it ages out.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

/// The message of a 401, as MLflow's basic-auth app words it.
pub const UNAUTHENTICATED: &str = "You are not authenticated. Please see \
    https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.";

/// Why a request could not be authenticated.
#[derive(Debug)]
pub enum Refusal {
    /// No credentials, or wrong ones: 401.
    Unauthenticated,
    /// Too many failed logins from this address for this user: 429.
    Throttled(Duration),
    /// The store failed.
    Error(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::Unauthenticated => Error::new(ErrorCode::Unauthenticated, UNAUTHENTICATED),
            Refusal::Throttled(wait) => Error::new(
                ErrorCode::RequestLimitExceeded,
                format!(
                    "Too many failed logins for this user from this address; try again in {} s.",
                    wait.as_secs().max(1)
                ),
            ),
            Refusal::Error(e) => e,
        }
    }
}

#[derive(Default)]
struct Throttle {
    failures: HashMap<(String, IpAddr), (u32, Instant)>,
}

/// Verified credentials: sha256(pepper, credential) → (user, verified at).
type CredentialCache = Arc<Mutex<HashMap<[u8; 32], (User, Instant)>>>;

#[derive(Clone)]
pub struct AuthService {
    pub store: AuthStore,
    pub config: Arc<AuthConfig>,
    cache_ttl: Duration,
    cache: CredentialCache,
    pepper: Arc<[u8; 32]>,
    throttle: Arc<Mutex<Throttle>>,
}

fn hash_secret(secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("failed to hash a credential: {e}")))
}

fn verify_secret(secret: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        // argon2's verifier compares in constant time.
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashing is CPU work: off the async executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("credential check failed: {e}")))
}

/// A new access token: `ffpat_<token id>_<secret>`.
fn new_token() -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (id, secret)
}

fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("ffpat_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && !secret.is_empty()).then_some((id, secret))
}

impl AuthService {
    pub fn new(db: Db, config: AuthConfig, cache_ttl: Duration) -> Self {
        let mut pepper = [0u8; 32];
        pepper[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        pepper[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        AuthService {
            store: AuthStore::new(db),
            config: Arc::new(config),
            cache_ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
            pepper: Arc::new(pepper),
            throttle: Arc::new(Mutex::new(Throttle::default())),
        }
    }

    /// Creates the configured admin on first start, as MLflow 3.17.2 does: there is no default
    /// password, the old insecure one is refused, and passwords are at least 12 characters.
    pub async fn bootstrap(&self) -> Result<()> {
        let name = self.config.admin_username.clone();
        let configured = self.config.admin_password.clone();
        match self.store.user_by_name(&name).await? {
            None => {
                let Some(password) = configured else {
                    return Err(Error::invalid(format!(
                        "MLflow Authentication needs a password to create the admin user '{name}', \
                         but none is configured (or it is empty). MLflow ships no default admin \
                         password. Set the MLFLOW_AUTH_ADMIN_PASSWORD environment variable, or set \
                         `admin_password` in the configuration file referenced by \
                         MLFLOW_AUTH_CONFIG_PATH, and restart the server."
                    )));
                };
                if password == INSECURE_PASSWORD {
                    return Err(Error::invalid(format!(
                        "Refusing to use the insecure default password that older MLflow versions \
                         shipped in basic_auth.ini for the admin user '{name}' \
                         (https://github.com/advisories/GHSA-gq3w-7jj3-x7gr). Set \
                         MLFLOW_AUTH_ADMIN_PASSWORD or `admin_password` in the configuration file \
                         referenced by MLFLOW_AUTH_CONFIG_PATH to a different password."
                    )));
                }
                if let Err(e) = validate_password(&password) {
                    return Err(Error::invalid(format!(
                        "The configured password for the admin user '{name}' is invalid: {} Set \
                         MLFLOW_AUTH_ADMIN_PASSWORD or `admin_password` in the configuration file \
                         referenced by MLFLOW_AUTH_CONFIG_PATH to a valid password.",
                        e.message
                    )));
                }
                let hash = blocking(move || hash_secret(&password)).await??;
                match self.store.create_user(&name, &hash, true).await {
                    // Another replica created it first.
                    Err(e) if e.code == ErrorCode::ResourceAlreadyExists => Ok(()),
                    other => other.map(|_| ()),
                }
            }
            Some((user, hash)) => {
                let insecure = blocking({
                    let hash = hash.clone();
                    move || verify_secret(INSECURE_PASSWORD, &hash)
                })
                .await?;
                match configured {
                    Some(p) if insecure && p != INSECURE_PASSWORD && validate_password(&p).is_ok() => {
                        let new = blocking(move || hash_secret(&p)).await??;
                        self.store.set_password(user.id, &new).await?;
                        tracing::warn!(
                            "the admin user '{name}' still had the insecure default password; \
                             it was rotated to the configured one"
                        );
                    }
                    _ if insecure => tracing::warn!(
                        "the admin user '{name}' has the insecure default password; it cannot log in \
                         until it is changed"
                    ),
                    _ => {}
                }
                Ok(())
            }
        }
    }

    fn cache_key(&self, kind: u8, user: &str, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(*self.pepper);
        h.update([kind]);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<User> {
        let cache = self.cache.lock().ok()?;
        let (user, at) = cache.get(key)?;
        (at.elapsed() < self.cache_ttl).then(|| user.clone())
    }

    fn remember(&self, key: [u8; 32], user: &User) {
        if self.cache_ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                let ttl = self.cache_ttl;
                cache.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            cache.insert(key, (user.clone(), Instant::now()));
        }
    }

    /// Drops every cached credential of a user (password, admin flag or deletion changed).
    pub fn forget(&self, user_id: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (u, _)| u.id != user_id);
        }
    }

    fn throttled(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let addr = addr?;
        let t = self.throttle.lock().ok()?;
        let (count, since) = t.failures.get(&(user.to_string(), addr))?;
        let left = FAILED_LOGIN_WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILED_LOGINS).then_some(left)
    }

    fn failed(&self, user: &str, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        if let Ok(mut t) = self.throttle.lock() {
            if t.failures.len() > 100_000 {
                t.failures
                    .retain(|_, (_, since)| since.elapsed() < FAILED_LOGIN_WINDOW);
            }
            let e = t
                .failures
                .entry((user.to_string(), addr))
                .or_insert((0, Instant::now()));
            if e.1.elapsed() >= FAILED_LOGIN_WINDOW {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
    }

    /// The caller named by an `Authorization` header: `Basic` (user and password, or user and
    /// an access token) or `Bearer` (an access token).
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        addr: Option<IpAddr>,
    ) -> std::result::Result<User, Refusal> {
        let header = header.ok_or(Refusal::Unauthenticated)?.trim();
        let (scheme, value) = header.split_once(' ').ok_or(Refusal::Unauthenticated)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.authenticate_token(value, None, addr).await;
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Refusal::Unauthenticated);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| Refusal::Unauthenticated)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Refusal::Unauthenticated)?;
        let (username, password) = decoded.split_once(':').ok_or(Refusal::Unauthenticated)?;
        if parse_token(password).is_some() {
            return self
                .authenticate_token(password, Some(username), addr)
                .await;
        }
        if let Some(wait) = self.throttled(username, addr) {
            return Err(Refusal::Throttled(wait));
        }
        let key = self.cache_key(b'p', username, password);
        if let Some(user) = self.cached(&key) {
            return Ok(user);
        }
        let found = self.store.user_by_name(username).await?;
        let ok = match &found {
            Some((user, hash)) => {
                // As MLflow: an admin can never log in with the old insecure default.
                !(user.is_admin && password == INSECURE_PASSWORD) && {
                    let (p, h) = (password.to_string(), hash.clone());
                    blocking(move || verify_secret(&p, &h)).await?
                }
            }
            None => {
                // Same work for an unknown user as for a wrong password.
                let p = password.to_string();
                blocking(move || {
                    let _ = hash_secret(&p);
                })
                .await?;
                false
            }
        };
        match found {
            Some((user, _)) if ok => {
                self.remember(key, &user);
                Ok(user)
            }
            _ => {
                self.failed(username, addr);
                Err(Refusal::Unauthenticated)
            }
        }
    }

    async fn authenticate_token(
        &self,
        token: &str,
        username: Option<&str>,
        addr: Option<IpAddr>,
    ) -> std::result::Result<User, Refusal> {
        let (id, secret) = parse_token(token).ok_or(Refusal::Unauthenticated)?;
        let throttle_key = format!("token:{id}");
        if let Some(wait) = self.throttled(&throttle_key, addr) {
            return Err(Refusal::Throttled(wait));
        }
        let now = ferroflow_core::now_millis();
        let key = self.cache_key(b't', id, secret);
        // The row is read on every use, cached or not: a revoked or expired token stops at once.
        let live = self
            .store
            .token(id)
            .await?
            .filter(|(_, _, expiry)| *expiry < 0 || *expiry > now);
        let user = match live {
            None => None,
            Some((user_id, _, _)) if self.cached(&key).is_some_and(|u| u.id == user_id) => {
                self.cached(&key)
            }
            Some((user_id, hash, _)) => {
                let s = secret.to_string();
                if blocking(move || verify_secret(&s, &hash)).await? {
                    let user = self.store.user_by_id(user_id).await?;
                    if let Some(u) = &user {
                        self.remember(key, u);
                        let _ = self.store.touch_token(id, now).await;
                    }
                    user
                } else {
                    None
                }
            }
        };
        match user {
            Some(u) if username.is_none_or(|n| n == u.username || n == "token") => Ok(u),
            _ => {
                self.failed(&throttle_key, addr);
                Err(Refusal::Unauthenticated)
            }
        }
    }

    /// The caller's grants, folded by [`Grants`].
    pub async fn grants(&self, user: &User) -> Result<Grants> {
        Ok(Grants {
            rows: self.store.grants_of(user.id).await?,
            default: self.config.default_permission,
        })
    }

    pub async fn hash(&self, secret: &str) -> Result<String> {
        let s = secret.to_string();
        blocking(move || hash_secret(&s)).await?
    }

    pub async fn verify(&self, secret: &str, hash: &str) -> Result<bool> {
        let (s, h) = (secret.to_string(), hash.to_string());
        blocking(move || verify_secret(&s, &h)).await
    }

    /// Gives `user` MANAGE on a resource they created (their hidden role; an upsert).
    pub async fn grant_owner(&self, user: &User, resource_type: &str, id: &str) -> Result<()> {
        let role = self.store.user_role(user.id).await?;
        self.store
            .upsert_grant(role, resource_type, id, Permission::Manage)
            .await
    }

    /// A new access token for `user`; the secret is in the returned value only.
    pub async fn create_token(
        &self,
        user: &User,
        comment: String,
        lifetime_seconds: Option<i64>,
    ) -> Result<(String, TokenInfo)> {
        let (id, secret) = new_token();
        let now = ferroflow_core::now_millis();
        let info = TokenInfo {
            token_id: id.clone(),
            comment,
            creation_time: now,
            expiry_time: match lifetime_seconds {
                Some(s) if s > 0 => now.saturating_add(s.saturating_mul(1000)),
                _ => -1,
            },
            last_used_time: None,
        };
        let hash = self.hash(&secret).await?;
        self.store.create_token(user.id, &info, &hash).await?;
        Ok((format!("ffpat_{id}_{secret}"), info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_secret_verifies_and_a_wrong_one_does_not() {
        let h = hash_secret("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("correct horse battery", &h));
        assert!(!verify_secret("correct horse batterz", &h));
        assert!(!verify_secret("x", "not a hash"));
    }

    #[test]
    fn tokens_parse_back_into_id_and_secret() {
        let (id, secret) = new_token();
        let token = format!("ffpat_{id}_{secret}");
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        assert_eq!(parse_token("dapi123"), None);
        assert_eq!(parse_token("ffpat_short_x"), None);
    }
}
