-- Model registry schema (PostgreSQL). Timestamps are BIGINT milliseconds. Renames and deletes of a
-- registered model cascade through its versions to their tags and aliases.
CREATE TABLE registered_models (
    name              TEXT   NOT NULL PRIMARY KEY,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description       TEXT,
    -- The next version number: versions are never reused after deletes.
    next_version      BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE registered_model_tags (
    name  TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX registered_model_tags_key_value ON registered_model_tags (key, value);

CREATE TABLE model_versions (
    name              TEXT   NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    version           BIGINT NOT NULL,
    creation_time     BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description       TEXT   NOT NULL DEFAULT '',
    user_id           TEXT,
    current_stage     TEXT   NOT NULL DEFAULT 'None',
    source            TEXT   NOT NULL,
    run_id            TEXT   NOT NULL DEFAULT '',
    run_link          TEXT   NOT NULL DEFAULT '',
    status            TEXT   NOT NULL DEFAULT 'READY',
    status_message    TEXT,
    model_id          TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run_id ON model_versions (run_id);

CREATE TABLE model_version_tags (
    name    TEXT   NOT NULL,
    version BIGINT NOT NULL,
    key     TEXT   NOT NULL,
    value   TEXT   NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX model_version_tags_key_value ON model_version_tags (key, value);

CREATE TABLE registered_model_aliases (
    name    TEXT   NOT NULL,
    alias   TEXT   NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
