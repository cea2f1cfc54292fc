//! The database handle: one SQL dialect (`$N` placeholders, portable DDL per backend) over
//! sqlx's `Any` driver, on SQLite (embedded default) or PostgreSQL.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;

use crate::{Error, Result};

/// Which SQL engine sits behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A backend store URI in the forms `mlflow server` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUri {
    /// `sqlite:///relative.db`, `sqlite:////abs/path.db` or `sqlite:///:memory:`.
    Sqlite(PathBuf),
    /// `postgresql://`, `postgres://` or `postgresql+<driver>://`; holds a libpq URL.
    Postgres(String),
}

impl Backend {
    /// The backend behind a connection of the `Any` driver.
    pub fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

impl FromStr for StoreUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self> {
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            Error::invalid(format!(
                "unsupported backend store URI '{uri}': expected sqlite:///<path> or postgresql://user@host:port/db"
            ))
        })?;
        let dialect = scheme.split('+').next().unwrap_or(scheme);
        match dialect {
            "sqlite" => {
                // SQLAlchemy form: sqlite:/// + path; a fourth slash makes the path absolute.
                let path = rest.strip_prefix('/').ok_or_else(|| {
                    Error::invalid(format!("invalid sqlite URI '{uri}': expected sqlite:///<path>"))
                })?;
                if path.is_empty() {
                    return Err(Error::invalid(format!("invalid sqlite URI '{uri}': no database path")));
                }
                Ok(StoreUri::Sqlite(PathBuf::from(path)))
            }
            "postgresql" | "postgres" => Ok(StoreUri::Postgres(format!("postgres://{rest}"))),
            "mysql" | "mariadb" => Err(Error::invalid(format!(
                "unsupported backend store URI scheme '{dialect}' in '{uri}': ferroflow stores its \
                 data in sqlite or postgresql. To bring an MLflow store on MySQL/MariaDB over, run \
                 `ferroflow import-mlflow --from {uri} --to <sqlite:///… or postgresql://…>`"
            ))),
            other => Err(Error::invalid(format!(
                "unsupported backend store URI scheme '{other}' in '{uri}': ferroflow supports sqlite and postgresql"
            ))),
        }
    }
}

impl StoreUri {
    pub fn backend(&self) -> Backend {
        match self {
            StoreUri::Sqlite(_) => Backend::Sqlite,
            StoreUri::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URI with any password replaced, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            StoreUri::Sqlite(p) => format!("sqlite:///{}", p.display()),
            StoreUri::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
                    let user_end = s + 3 + url[s + 3..at].find(':').unwrap_or(0);
                    format!("{}:***{}", &url[..user_end], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

/// Connection pools: SQLite gets one writer connection (so writers queue in-process instead of
/// spinning on "database is locked") and several readers; PostgreSQL uses one pool for both.
#[derive(Clone, Debug)]
pub struct Db {
    pub backend: Backend,
    read: AnyPool,
    write: AnyPool,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Connects, applies the backend's migrations and returns the pools.
    pub async fn connect(uri: &StoreUri, max_connections: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let db = match uri {
            StoreUri::Sqlite(path) => Self::connect_sqlite(path, max_connections).await?,
            StoreUri::Postgres(url) => {
                // One direct connection first: it fails fast with the real cause (refused,
                // unknown host, bad password) where the pool would only report a timeout.
                use sqlx::Connection;
                let probe = sqlx::AnyConnection::connect(url).await.map_err(|e| {
                    Error::internal(format!(
                        "cannot connect to backend store {}: {e}",
                        uri.redacted()
                    ))
                })?;
                let _ = probe.close().await;
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(|e| {
                        Error::internal(format!(
                            "cannot connect to backend store {}: {e}",
                            uri.redacted()
                        ))
                    })?;
                Db {
                    backend: Backend::Postgres,
                    read: pool.clone(),
                    write: pool,
                }
            }
        };
        let migrator = match db.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        // An MLflow store (alembic's table) is not ferroflow's schema: say how to move it.
        let alembic = match db.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'alembic_version'"
            }
        };
        let is_mlflow: i64 = sqlx::query_scalar(alembic)
            .fetch_one(&db.write)
            .await
            .unwrap_or(0);
        if is_mlflow > 0 {
            return Err(Error::invalid(format!(
                "backend store {} holds an MLflow store (MLflow's own schema). ferroflow keeps \
                 its own schema: copy it into a new ferroflow store with \
                 `ferroflow import-mlflow --from {} --to <new store URI>` and point \
                 --backend-store-uri at the new one",
                uri.redacted(),
                uri.redacted()
            )));
        }
        migrator.run(&db.write).await.map_err(|e| {
            Error::internal(format!(
                "migrating backend store {} failed: {e}",
                uri.redacted()
            ))
        })?;
        Ok(db)
    }

    async fn connect_sqlite(path: &Path, max_connections: u32) -> Result<Db> {
        let url = if path == Path::new(":memory:") {
            "sqlite::memory:".to_string()
        } else {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    return Err(Error::internal(format!(
                        "cannot open backend store sqlite:///{}: directory {} does not exist",
                        path.display(),
                        parent.display()
                    )));
                }
            }
            format!("sqlite://{}?mode=rwc", path.display())
        };
        let options = |n: u32| {
            AnyPoolOptions::new()
                .max_connections(n)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                // 16 KiB pages and a 64 MiB WAL between checkpoints: a metric batch dirties
                // one leaf page per key, and in a SQLite benchmark of grouped 100-key batches
                // this layout wrote 1.5x the metrics/s of 4 KiB pages with 32 MiB checkpoints.
                // page_size only takes effect on a new database (before its first table).
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA page_size = 16384; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; \
                             PRAGMA case_sensitive_like = ON; PRAGMA foreign_keys = ON; \
                             PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
                             PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 4096",
                        )
                        .await?;
                        Ok(())
                    })
                })
        };
        let open_err = |e: sqlx::Error| {
            Error::internal(format!(
                "cannot open backend store sqlite:///{}: {e}",
                path.display()
            ))
        };
        let write = options(1).connect(&url).await.map_err(open_err)?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&write)
            .await
            .map_err(open_err)?;
        let read = if url == "sqlite::memory:" {
            write.clone()
        } else {
            options(max_connections.max(2))
                .connect(&url)
                .await
                .map_err(open_err)?
        };
        Ok(Db {
            backend: Backend::Sqlite,
            read,
            write,
        })
    }

    /// Pool for queries that only read.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for statements and transactions that write.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// (open connections, idle connections) over both pools, for the pool gauges.
    pub fn pool_stats(&self) -> (u32, u32) {
        if self.backend == Backend::Postgres {
            (self.read.size(), self.read.num_idle() as u32)
        } else {
            (
                self.read.size() + self.write.size(),
                (self.read.num_idle() + self.write.num_idle()) as u32,
            )
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlalchemy_sqlite_forms() {
        assert_eq!(
            "sqlite:///mlruns.db".parse::<StoreUri>().unwrap(),
            StoreUri::Sqlite("mlruns.db".into())
        );
        assert_eq!(
            "sqlite:////abs/x.db".parse::<StoreUri>().unwrap(),
            StoreUri::Sqlite("/abs/x.db".into())
        );
    }

    #[test]
    fn parses_postgres_with_driver_suffix() {
        let uri: StoreUri = "postgresql+psycopg2://u:p@h:5432/db".parse().unwrap();
        assert_eq!(uri, StoreUri::Postgres("postgres://u:p@h:5432/db".into()));
        assert_eq!(uri.redacted(), "postgres://u:***@h:5432/db");
    }

    #[test]
    fn rejects_unsupported_schemes() {
        let err = "mysql://root@localhost/db".parse::<StoreUri>().unwrap_err();
        assert!(err
            .message
            .contains("unsupported backend store URI scheme 'mysql'"));
        assert!("./mlruns".parse::<StoreUri>().is_err());
        assert!("sqlite://".parse::<StoreUri>().is_err());
    }
}
