-- MLflow 3 logged models (SQLite). Timestamps are BIGINT milliseconds. Deletes are soft
-- (lifecycle_stage = 'deleted'), as MLflow's; tags and params cascade with their model.
CREATE TABLE logged_models (
    model_id                  TEXT   NOT NULL PRIMARY KEY,
    experiment_id             BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name                      TEXT   NOT NULL,
    artifact_location         TEXT   NOT NULL,
    creation_timestamp_ms     BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    status                    TEXT   NOT NULL,
    lifecycle_stage           TEXT   NOT NULL DEFAULT 'active',
    model_type                TEXT,
    source_run_id             TEXT,
    status_message            TEXT
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_timestamp_ms);

CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE INDEX logged_model_tags_key_value ON logged_model_tags (key, value);

CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE INDEX logged_model_params_key_value ON logged_model_params (key, value);
