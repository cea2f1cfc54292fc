-- Feature store: feature tables are Delta tables in the artifact store; their metadata, the
-- online store (latest row per primary key) and lineage (runs that read a table version) live here.
CREATE TABLE feature_tables (
    name              TEXT   NOT NULL PRIMARY KEY,
    primary_keys      TEXT   NOT NULL,
    timestamp_key     TEXT,
    description       TEXT   NOT NULL DEFAULT '',
    table_schema      TEXT   NOT NULL,
    location          TEXT   NOT NULL,
    managed           BIGINT NOT NULL,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    created_by        TEXT   NOT NULL DEFAULT '',
    last_updated_by   TEXT   NOT NULL DEFAULT '',
    online_version    BIGINT,
    online_published_time BIGINT
);

CREATE TABLE feature_table_tags (
    table_name TEXT NOT NULL REFERENCES feature_tables (name) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (table_name, key)
);

CREATE TABLE online_features (
    table_name TEXT   NOT NULL,
    entity_key TEXT   NOT NULL,
    event_time BIGINT NOT NULL,
    features   TEXT   NOT NULL,
    PRIMARY KEY (table_name, entity_key)
);

CREATE TABLE feature_lineage (
    table_name    TEXT   NOT NULL,
    table_version BIGINT NOT NULL,
    run_id        TEXT   NOT NULL,
    creation_time BIGINT NOT NULL,
    PRIMARY KEY (table_name, table_version, run_id)
);
CREATE INDEX feature_lineage_run_id ON feature_lineage (run_id);
