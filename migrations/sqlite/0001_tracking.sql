-- Tracking schema (SQLite). Timestamps are BIGINT milliseconds; booleans are INTEGER 0/1.
CREATE TABLE experiments (
    experiment_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    artifact_location TEXT    NOT NULL,
    lifecycle_stage   TEXT    NOT NULL DEFAULT 'active',
    creation_time     BIGINT  NOT NULL,
    last_update_time  BIGINT  NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_uuid        TEXT    NOT NULL PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    start_time      BIGINT,
    end_time        BIGINT,
    deleted_time    BIGINT,
    lifecycle_stage TEXT    NOT NULL DEFAULT 'active',
    artifact_uri    TEXT    NOT NULL
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, lifecycle_stage, start_time DESC, run_uuid);

-- One row per (run, metric key): the metric history below is keyed by this integer id so
-- that a batch touching many keys writes short rows and compares integers, not strings.
CREATE TABLE metric_series (
    series_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_uuid  TEXT    NOT NULL REFERENCES runs (run_uuid),
    key       TEXT    NOT NULL,
    UNIQUE (run_uuid, key)
);

-- Every logged point, in MLflow's history order (timestamp, step, value).
CREATE TABLE metrics (
    series_id INTEGER NOT NULL REFERENCES metric_series (series_id),
    timestamp BIGINT  NOT NULL,
    step      BIGINT  NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (series_id, timestamp, step, value, is_nan)
) WITHOUT ROWID;

-- Points not yet merged into `metrics`. On SQLite, new points land here and the writer
-- moves them into `metrics` in series order every ~100k rows: a point appended to a long
-- series dirties one page of `metrics`, so writing them one batch at a time costs a page per
-- point, while a merge writes each series' tail page once. Readers see both tables.
CREATE TABLE metrics_recent (
    series_id INTEGER NOT NULL REFERENCES metric_series (series_id),
    timestamp BIGINT  NOT NULL,
    step      BIGINT  NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (series_id, timestamp, step, value, is_nan)
) WITHOUT ROWID;

CREATE TABLE latest_metrics (
    run_uuid  TEXT    NOT NULL REFERENCES runs (run_uuid),
    key       TEXT    NOT NULL,
    value     REAL    NOT NULL,
    timestamp BIGINT  NOT NULL,
    step      BIGINT  NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_key_value ON latest_metrics (key, is_nan, value, run_uuid);

CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX params_key_value ON params (key, value);

CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
) WITHOUT ROWID;
CREATE INDEX tags_key_value ON tags (key, value);

CREATE TABLE datasets (
    dataset_uuid        TEXT    NOT NULL PRIMARY KEY,
    experiment_id       INTEGER NOT NULL REFERENCES experiments (experiment_id),
    name                TEXT    NOT NULL,
    digest              TEXT    NOT NULL,
    dataset_source_type TEXT    NOT NULL,
    dataset_source      TEXT    NOT NULL,
    dataset_schema      TEXT,
    dataset_profile     TEXT,
    UNIQUE (experiment_id, name, digest)
);

-- Run inputs (datasets, logged models) and run outputs (logged models), as MLflow's `inputs`.
CREATE TABLE inputs (
    input_uuid       TEXT   NOT NULL PRIMARY KEY,
    source_type      TEXT   NOT NULL,
    source_id        TEXT   NOT NULL,
    destination_type TEXT   NOT NULL,
    destination_id   TEXT   NOT NULL,
    step             BIGINT NOT NULL DEFAULT 0,
    UNIQUE (source_type, source_id, destination_type, destination_id)
);
CREATE INDEX inputs_destination ON inputs (destination_type, destination_id);

CREATE TABLE input_tags (
    input_uuid TEXT NOT NULL REFERENCES inputs (input_uuid),
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (input_uuid, name)
);
