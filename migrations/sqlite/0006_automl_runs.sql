-- AutoML sweeps run as jobs: the request, where they are, what they found. Trials and the
-- summary are JSON documents the job rewrites as it goes; the MLflow runs hold the details.
CREATE TABLE automl_runs (
    id                     TEXT   NOT NULL PRIMARY KEY,
    state                  TEXT   NOT NULL,
    request                TEXT   NOT NULL,
    experiment_id          TEXT   NOT NULL,
    parent_run_id          TEXT   NOT NULL,
    progress               TEXT   NOT NULL,
    summary                TEXT,
    error                  TEXT,
    creation_timestamp     BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL
);
CREATE INDEX automl_runs_created ON automl_runs (creation_timestamp);
