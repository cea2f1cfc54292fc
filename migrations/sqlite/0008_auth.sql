-- Authentication and permissions (MLflow's basic-auth model): users, roles with resource
-- grants, role assignments, and access tokens. A user's own grants live on a hidden per-user
-- role named __user_<id>__, as MLflow 3.17.2 keeps them, so one query folds every grant.
CREATE TABLE auth_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE auth_roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    workspace   TEXT NOT NULL,
    description TEXT,
    UNIQUE (workspace, name)
);

CREATE TABLE auth_role_permissions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    role_id          INTEGER NOT NULL REFERENCES auth_roles (id) ON DELETE CASCADE,
    resource_type    TEXT    NOT NULL,
    resource_pattern TEXT    NOT NULL,
    permission       TEXT    NOT NULL,
    UNIQUE (role_id, resource_type, resource_pattern)
);

CREATE TABLE auth_user_roles (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES auth_roles (id) ON DELETE CASCADE,
    UNIQUE (user_id, role_id)
);
CREATE INDEX auth_user_roles_role ON auth_user_roles (role_id);

-- Personal access tokens: the secret is shown once; only its hash is kept.
CREATE TABLE auth_tokens (
    token_id       TEXT    NOT NULL PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    comment        TEXT    NOT NULL DEFAULT '',
    secret_hash    TEXT    NOT NULL,
    creation_time  BIGINT  NOT NULL,
    expiry_time    BIGINT  NOT NULL,
    last_used_time BIGINT
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);
