-- Metrics logged for MLflow 3 logged models (PostgreSQL): every point, with the run that logged it
-- and the evaluation dataset, as MLflow's logged_model_metrics. Values are stored as MLflow
-- stores them (NaN as 0 with is_nan, ±inf as ±max double).
CREATE TABLE logged_model_metrics (
    model_id            TEXT   NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    metric_name         TEXT   NOT NULL,
    metric_timestamp_ms BIGINT NOT NULL,
    metric_step         BIGINT NOT NULL,
    metric_value        DOUBLE PRECISION NOT NULL,
    is_nan              BIGINT NOT NULL DEFAULT 0,
    experiment_id       BIGINT NOT NULL,
    run_id              TEXT   NOT NULL,
    dataset_name        TEXT,
    dataset_digest      TEXT,
    PRIMARY KEY (model_id, metric_name, metric_timestamp_ms, metric_step, run_id)
);
CREATE INDEX logged_model_metrics_name_value ON logged_model_metrics (metric_name, metric_value);
