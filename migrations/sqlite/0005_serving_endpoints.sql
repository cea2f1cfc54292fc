-- Serving endpoints (Databricks Model Serving shape): the accepted config as JSON; which
-- versions are loaded is runtime state, re-resolved from the registry at start-up.
CREATE TABLE serving_endpoints (
    name                   TEXT   NOT NULL PRIMARY KEY,
    config                 TEXT   NOT NULL,
    creation_timestamp     BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL
);
