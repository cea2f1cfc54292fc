//! Upgrades: a store created by the first release's migrations (tracking and registry,
//! 0001-0002), holding data, is upgraded by today's server at start-up, keeps every value, and
//! takes writes to the tables the later migrations added. On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};

use ferroflow_e2e::{postgres_admin_url, skip_unless_required, spawn_app_on, Store, TestApp};
use serde_json::{json, Value};
use sqlx::AnyPool;

/// The migrations the first release shipped (both folders hold the same names).
const FIRST_RELEASE: &[&str] = &["0001_tracking.sql", "0002_registry.sql"];

/// Their SHA-384 as released (sqlx's checksums): a store records them, so a released
/// migration edited in place would stop every upgraded server from starting.
const RELEASED_SQLITE: &[&str] = &[
    "1928509b3496449a0a20007e8195e0a53b48dfa64c8a9d465cad5386865be154158ba8ff83fb76b9fc39ca741f714bce",
    "ad456449e4cc0a8de26ecb411e293a3969c696e8608bf03644c5f346cd92b46287f7b9ce4d579dc83477d8091127fa8f",
];
const RELEASED_POSTGRES: &[&str] = &[
    "8f6882e4c1c02dae217ff20b87baed31b929fec212fe570139e25d88f059da941efd0d9329c1accad7f8b43666c00f92",
    "e9405fcc9993041cab50bd7fb54f02718d7d3512a0d20500c8a9f13d5f6175c9f1564f476e585fc856651048fe9b81df",
];

fn migrations_dir(store: Store) -> PathBuf {
    let backend = match store {
        Store::Sqlite => "sqlite",
        Store::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("migrations")
        .join(backend)
}

/// A store at the first release's schema, with its ferroflow URI, the URL sqlx opens it by and
/// the PostgreSQL database to drop afterwards.
async fn first_release_store(store: Store, dir: &Path) -> Option<(String, String, Option<String>)> {
    let (uri, url, db) = match store {
        Store::Sqlite => {
            let file = dir.join("old.db");
            (
                format!("sqlite:///{}", file.display()),
                format!("sqlite://{}?mode=rwc", file.display()),
                None,
            )
        }
        Store::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = match sqlx::PgConnection::connect(&admin).await {
                Ok(c) => c,
                Err(e) => {
                    skip_unless_required("postgres", &format!("no PostgreSQL at {admin}: {e}"));
                    return None;
                }
            };
            let name = format!("ferroflow_upgrade_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let url = format!("{base}/{name}");
            (url.clone(), url, Some(name))
        }
    };
    // Only the first release's files, byte for byte: sqlx records their checksums, and today's
    // server must accept them as its own first migrations.
    let old = dir.join("first-release-migrations");
    std::fs::create_dir_all(&old).unwrap();
    for f in FIRST_RELEASE {
        std::fs::copy(migrations_dir(store).join(f), old.join(f)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("read migrations");
    let checksums: Vec<String> = migrator
        .iter()
        .map(|m| m.checksum.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let released = match store {
        Store::Sqlite => RELEASED_SQLITE,
        Store::Postgres => RELEASED_POSTGRES,
    };
    assert_eq!(
        checksums, released,
        "a released migration was edited in place: add a new migration instead"
    );
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.expect("connect");
    migrator
        .run(&pool)
        .await
        .expect("first release's migrations");
    seed(&pool).await;
    pool.close().await;
    Some((uri, url, db))
}

/// Data as the first release wrote it: an experiment with a tag, a run with a param, a tag
/// and a metric history, a registered model with a version, a tag and an alias.
async fn seed(pool: &AnyPool) {
    let exec = |sql: &'static str| async move {
        sqlx::query(sql).execute(pool).await.expect(sql);
    };
    let experiment: i64 = sqlx::query_scalar(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
         VALUES ('old-exp', 'mlflow-artifacts:/old', 'active', 1700000000000, 1700000000000) \
         RETURNING experiment_id",
    )
    .fetch_one(pool)
    .await
    .expect("experiment");
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, 'team', 'vision')",
    )
    .bind(experiment)
    .execute(pool)
    .await
    .expect("experiment tag");
    sqlx::query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, \
         lifecycle_stage, artifact_uri) VALUES ('0123456789abcdef0123456789abcdef', $1, 'old-run', \
         'ann', 'FINISHED', 1700000001000, 1700000009000, 'active', \
         'mlflow-artifacts:/old/0123456789abcdef0123456789abcdef/artifacts')",
    )
    .bind(experiment)
    .execute(pool)
    .await
    .expect("run");
    exec("INSERT INTO params (run_uuid, key, value) VALUES ('0123456789abcdef0123456789abcdef', 'lr', '0.01')").await;
    exec("INSERT INTO tags (run_uuid, key, value) VALUES ('0123456789abcdef0123456789abcdef', 'mlflow.user', 'ann')").await;
    let series: i64 = sqlx::query_scalar(
        "INSERT INTO metric_series (run_uuid, key) VALUES ('0123456789abcdef0123456789abcdef', 'loss') \
         RETURNING series_id",
    )
    .fetch_one(pool)
    .await
    .expect("series");
    for (step, value) in [(0i64, 0.9f64), (1, 0.5), (2, 0.25)] {
        sqlx::query(
            "INSERT INTO metrics (series_id, timestamp, step, value, is_nan) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(series)
        .bind(1_700_000_002_000 + step)
        .bind(step)
        .bind(value)
        .execute(pool)
        .await
        .expect("metric");
    }
    exec(
        "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES \
          ('0123456789abcdef0123456789abcdef', 'loss', 0.25, 1700000002002, 2, 0)",
    )
    .await;
    exec("INSERT INTO registered_models (name, creation_time, last_updated_time, description, next_version) \
          VALUES ('old-model', 1700000010000, 1700000010000, 'from the first release', 2)").await;
    exec(
        "INSERT INTO registered_model_tags (name, key, value) VALUES ('old-model', 'owner', 'ann')",
    )
    .await;
    exec("INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, \
          source, run_id) VALUES ('old-model', 1, 1700000011000, 1700000011000, 'Production', \
          'mlflow-artifacts:/old/0123456789abcdef0123456789abcdef/artifacts/model', \
          '0123456789abcdef0123456789abcdef')").await;
    exec("INSERT INTO registered_model_aliases (name, alias, version) VALUES ('old-model', 'champion', 1)").await;
}

async fn check_upgraded(app: &TestApp) {
    let (status, exp) = app
        .get("experiments/get-by-name?experiment_name=old-exp")
        .await;
    assert_eq!(status, 200, "{exp}");
    let exp = &exp["experiment"];
    assert_eq!(
        exp["tags"],
        json!([{"key": "team", "value": "vision"}]),
        "{exp}"
    );
    let experiment_id = exp["experiment_id"].as_str().unwrap().to_string();

    let (status, run) = app
        .get("runs/get?run_id=0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, 200, "{run}");
    let run = &run["run"];
    assert_eq!(run["info"]["run_name"], "old-run", "{run}");
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    assert_eq!(
        run["data"]["params"],
        json!([{"key": "lr", "value": "0.01"}])
    );
    assert_eq!(
        run["data"]["metrics"],
        json!([{"key": "loss", "value": 0.25, "timestamp": 1700000002002i64, "step": 2}])
    );
    let (status, history) = app
        .get("metrics/get-history?run_id=0123456789abcdef0123456789abcdef&metric_key=loss")
        .await;
    assert_eq!(status, 200, "{history}");
    let values: Vec<f64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [0.9, 0.5, 0.25]);
    let (status, found) = app
        .post(
            "runs/search",
            json!({"experiment_ids": [experiment_id], "filter": "metrics.loss < 0.3 and params.lr = '0.01'"}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["runs"].as_array().map(Vec::len), Some(1), "{found}");

    let (status, model) = app.get("registered-models/get?name=old-model").await;
    assert_eq!(status, 200, "{model}");
    let model = &model["registered_model"];
    assert_eq!(model["description"], "from the first release");
    assert_eq!(model["tags"], json!([{"key": "owner", "value": "ann"}]));
    assert_eq!(
        model["aliases"],
        json!([{"alias": "champion", "version": "1"}])
    );
    let (status, v) = app
        .get("registered-models/alias?name=old-model&alias=champion")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model_version"]["current_stage"], "Production", "{v}");

    // Writes after the upgrade: a new version takes the next number, and the tables the
    // later migrations added (logged models, serving, AutoML, feature store) answer.
    let (status, created) = app
        .post(
            "model-versions/create",
            json!({"name": "old-model", "source": "s3://models/old-model/2"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["model_version"]["version"], "2");
    let (status, logged) = app
        .post(
            "logged-models",
            json!({"experiment_id": experiment_id, "name": "after-upgrade"}),
        )
        .await;
    assert_eq!(status, 200, "{logged}");
    let (status, tables) = app
        .raw(
            reqwest::Method::POST,
            "/api/2.0/feature-store/feature-tables/create",
            &json!({"name": "after_upgrade", "primary_keys": ["id"],
                    "schema": [{"name": "id", "type": "long"}]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{tables}");
    let (status, endpoints) = app
        .raw(reqwest::Method::GET, "/api/2.0/serving-endpoints", "")
        .await;
    assert_eq!(status, 200, "{endpoints}");
}

async fn upgrade(store: Store) {
    let dir = std::env::temp_dir().join(format!(
        "ferroflow-upgrade-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let Some((uri, _url, db)) = first_release_store(store, &dir).await else {
        return;
    };
    let app = spawn_app_on(uri.clone(), db).await;
    check_upgraded(&app).await;
    // A second start on the upgraded store applies nothing and sees the same data.
    let again = spawn_app_on(uri, None).await;
    check_readable(&again).await;
    drop(again);
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn check_readable(app: &TestApp) {
    let (status, v): (u16, Value) = app
        .get("registered-models/alias?name=old-model&alias=champion")
        .await;
    assert_eq!(
        (status, v["model_version"]["version"].as_str()),
        (200, Some("1")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_sqlite_store_upgrades_with_its_data() {
    upgrade(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_postgres_store_upgrades_with_its_data() {
    upgrade(Store::Postgres).await;
}
