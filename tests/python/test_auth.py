"""Authentication and permissions (`--app-name basic-auth`), driven by the stock client:
`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` and `MLFLOW_TRACKING_TOKEN` for tracking,
`mlflow.server.get_app_client("basic-auth", …)` (AuthServiceClient) for users, grants and roles.

A server with auth on is started for this module (on the suite's backend: SQLite, or a fresh
PostgreSQL database on the suite's PostgreSQL run). Under FERROFLOW_TEST_AGAINST=mlflow the same
tests run against `mlflow server --app-name basic-auth`; the parts that are ferroflow's own
(access tokens, JSON 401/403 bodies, throttling, feature tables) are skipped there.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import mlflow
import pytest
from conftest import FERROFLOW_START_TIMEOUT_S, MLFLOW_START_TIMEOUT_S, REPO_ROOT, _Server
from helpers import fresh_store, unique_name
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from test_ui import browser  # noqa: F401 (the module's Chromium, a fixture)

ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
BIN = Path(os.environ.get("FERROFLOW_BIN", REPO_ROOT / "target/debug/ferroflow"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _argv(kind: str, work: Path, port: int, store: str) -> list[str]:
    if kind == "mlflow":
        binary = REPO_ROOT / ".venv" / "bin" / "mlflow"
        if not binary.exists():
            binary = Path(sys.executable).parent / "mlflow"
        return [str(binary), "server", "--app-name", "basic-auth", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(port), "--backend-store-uri", store, "--artifacts-destination",
                str(work / "artifacts")]
    return [str(BIN), "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", store, "--artifacts-destination", str(work / "artifacts")]


def _env(work: Path, default_permission: str = "READ", password: str | None = ADMIN_PASSWORD) -> dict:
    ini = work / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = {default_permission}\n"
                   f"database_uri = sqlite:///{work / 'basic_auth.db'}\nadmin_username = {ADMIN}\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-secret-key"}
    if password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    return env


@pytest.fixture(scope="module")
def server(server_kind):
    if server_kind == "external":
        pytest.skip("starts its own server with auth on")
    work = Path(tempfile.mkdtemp(prefix="ferroflow-auth-"))
    store = fresh_store(work, "auth.db")
    if server_kind == "mlflow":
        store = store.replace("postgres://", "postgresql+psycopg2://", 1)
    port = _free_port()
    proc = _Server(server_kind, _argv(server_kind, work, port, store), work,
                   MLFLOW_START_TIMEOUT_S if server_kind == "mlflow" else FERROFLOW_START_TIMEOUT_S,
                   env=_env(work))
    uri = f"http://127.0.0.1:{port}"
    proc.start(uri)
    previous = mlflow.get_tracking_uri()
    yield {"uri": uri, "kind": server_kind, "work": work}
    mlflow.set_tracking_uri(previous)
    proc.stop()
    shutil.rmtree(work, ignore_errors=True)


def _basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def as_user(monkeypatch, server):
    """Switches the stock client's credentials: `as_user(name, password)` or `as_user(token=…)`."""

    def use(user: str | None = None, password: str | None = None, token: str | None = None):
        for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        if user is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        if token is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        mlflow.set_tracking_uri(server["uri"])
        return mlflow.MlflowClient(server["uri"])

    return use


@pytest.fixture
def admin(as_user, server):
    as_user(ADMIN, ADMIN_PASSWORD)
    return get_app_client("basic-auth", tracking_uri=server["uri"])


def _new_user(admin, prefix: str) -> tuple[str, str]:
    name, password = unique_name(prefix), "a-password-for-" + prefix
    admin.create_user(name, password)
    return name, password


def _denied(call) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        call()
    assert "403" in str(info.value) or info.value.error_code == "PERMISSION_DENIED", str(info.value)
    return info.value


def test_start_up_refuses_a_missing_insecure_or_short_admin_password(server_kind, tmp_path):
    if server_kind != "ferroflow":
        pytest.skip("checks ferroflow's own start-up (MLflow's words are the same: see the module doc)")
    store = f"sqlite:///{tmp_path / 'x.db'}"
    cases = [(None, "MLflow ships no default admin password"),
             ("password1234", "insecure default password"),
             ("short", "Password must be at least 12 characters.")]
    for password, words in cases:
        env = dict(os.environ, **_env(tmp_path, password=password))
        env.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None) if password is None else None
        done = subprocess.run(_argv("ferroflow", tmp_path, _free_port(), store), env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, done.stderr
        assert words in done.stderr, done.stderr


def test_anonymous_requests_get_401_with_a_basic_challenge_and_health_stays_open(server):
    uri = server["uri"]
    assert httpx.get(f"{uri}/health").status_code == 200
    for method, path in [("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0"),
                         ("POST", "/api/2.0/mlflow/experiments/search"),
                         ("GET", "/version"), ("GET", "/")]:
        resp = httpx.request(method, f"{uri}{path}", json={} if method == "POST" else None)
        assert resp.status_code == 401, (path, resp.status_code, resp.text)
        assert resp.headers["www-authenticate"] == 'Basic realm="mlflow"'
        if server["kind"] == "ferroflow":
            assert resp.json()["error_code"] == "UNAUTHENTICATED"
    wrong = httpx.get(f"{uri}/api/2.0/mlflow/experiments/get?experiment_id=0",
                      headers=_basic(ADMIN, "not-the-password"))
    assert wrong.status_code == 401


def test_the_stock_client_logs_in_with_user_and_password(as_user, admin):
    alice, password = _new_user(admin, "alice")
    client = as_user(alice, password)
    exp = client.create_experiment(unique_name("alice-exp"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "loss", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    as_user(alice, "a-wrong-password!")
    with pytest.raises(MlflowException) as info:
        mlflow.MlflowClient().get_experiment(exp)
    assert "401" in str(info.value) or info.value.error_code == "UNAUTHENTICATED"


def test_auth_service_client_manages_users(admin, as_user, server):
    name, password = unique_name("bob"), "bob-password-123"
    user = admin.create_user(name, password)
    assert user.username == name and user.is_admin is False
    assert admin.get_user(name).id == user.id
    with pytest.raises(MlflowException) as dup:
        admin.create_user(name, password)
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as short:
        admin.create_user(unique_name("carol"), "short")
    assert short.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Password must be at least 12 characters." in short.value.message
    admin.update_user_password(name, "bob-new-password-1")
    admin.update_user_admin(name, True)
    assert admin.get_user(name).is_admin is True
    # The old password no longer works; the new one does.
    assert httpx.get(f"{server['uri']}/api/2.0/mlflow/users/current",
                     headers=_basic(name, password)).status_code == 401
    current = httpx.get(f"{server['uri']}/api/2.0/mlflow/users/current",
                        headers=_basic(name, "bob-new-password-1"))
    assert current.status_code == 200 and current.json()["user"]["username"] == name
    admin.delete_user(name)
    with pytest.raises(MlflowException) as gone:
        admin.get_user(name)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # A non-admin cannot create users or read others.
    alice, alice_password = _new_user(admin, "alice")
    as_user(alice, alice_password)
    alice_client = get_app_client("basic-auth", tracking_uri=server["uri"])
    _denied(lambda: alice_client.create_user(unique_name("mallory"), "mallory-password"))
    _denied(lambda: alice_client.get_user(ADMIN))


def test_grants_decide_reads_and_writes_and_deny_wins(admin, as_user, server):
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    shared = owner.create_experiment(unique_name("shared"))
    secret = owner.create_experiment(unique_name("secret"))
    run = owner.create_run(shared)
    bob, bob_password = _new_user(admin, "bob")
    client = as_user(bob, bob_password)
    # default_permission READ: bob reads, cannot write.
    assert client.get_experiment(shared).experiment_id == shared
    _denied(lambda: client.log_metric(run.info.run_id, "loss", 1.0))
    _denied(lambda: client.set_experiment_tag(shared, "k", "v"))
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.grant_user_permission(bob, "experiment", shared, "EDIT")
    admin.grant_user_permission(bob, "experiment", secret, "DENY")
    assert admin.get_user_permission(bob, "experiment", shared).permission == "EDIT"
    client = as_user(bob, bob_password)
    client.log_metric(run.info.run_id, "loss", 1.0)
    client.set_experiment_tag(shared, "k", "v")
    _denied(lambda: client.delete_experiment(shared))
    _denied(lambda: client.get_experiment(secret))
    seen = {e.experiment_id for e in client.search_experiments()}
    assert shared in seen and secret not in seen
    # runs/search over both experiments answers only the readable one's runs.
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    owner.create_run(secret)
    client = as_user(bob, bob_password)
    runs = client.search_runs([shared, secret])
    assert {r.info.experiment_id for r in runs} == {shared}
    # Revoking the grant takes EDIT away again.
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.revoke_user_permission(bob, "experiment", shared)
    client = as_user(bob, bob_password)
    _denied(lambda: client.log_metric(run.info.run_id, "loss", 2.0))


def test_creators_manage_what_they_create(admin, as_user):
    alice, alice_password = _new_user(admin, "alice")
    bob, bob_password = _new_user(admin, "bob")
    alice_client = as_user(alice, alice_password)
    exp = alice_client.create_experiment(unique_name("alice-own"))
    model = unique_name("alice-model")
    alice_client.create_registered_model(model)
    bob_client = as_user(bob, bob_password)
    _denied(lambda: bob_client.delete_experiment(exp))
    _denied(lambda: bob_client.update_registered_model(model, description="bob was here"))
    alice_client = as_user(alice, alice_password)
    alice_client.update_registered_model(model, description="mine")
    renamed = model + "-renamed"
    alice_client.rename_registered_model(model, renamed)
    # The grant follows the rename.
    alice_client.set_registered_model_tag(renamed, "k", "v")
    alice_client.delete_experiment(exp)


def test_roles_grant_through_assignment(admin, as_user):
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    exp = owner.create_experiment(unique_name("team"))
    run = owner.create_run(exp)
    carol, carol_password = _new_user(admin, "carol")
    role = admin.create_role("default", unique_name("editors"), description="can edit")
    assert role.name.startswith("editors")
    permission = admin.add_role_permission(role.id, "experiment", exp, "EDIT")
    assert permission.permission == "EDIT"
    client = as_user(carol, carol_password)
    _denied(lambda: client.log_param(run.info.run_id, "p", "1"))
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.assign_role(carol, role.id)
    assert [r.id for r in admin.list_user_roles(carol)] == [role.id]
    client = as_user(carol, carol_password)
    client.log_param(run.info.run_id, "p", "1")
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.unassign_role(carol, role.id)
    admin.delete_role(role.id)
    client = as_user(carol, carol_password)
    _denied(lambda: client.log_param(run.info.run_id, "q", "2"))


def test_current_user_and_permissions_as_the_ui_reads_them(admin, as_user, server):
    alice, alice_password = _new_user(admin, "alice")
    as_user(alice, alice_password).create_experiment(unique_name("ui"))
    headers = _basic(alice, alice_password)
    me = httpx.get(f"{server['uri']}/ajax-api/2.0/mlflow/users/current", headers=headers).json()
    assert me["user"]["username"] == alice and me["is_basic_auth"] is True
    perms = httpx.get(f"{server['uri']}/ajax-api/3.0/mlflow/users/current/permissions", headers=headers).json()
    assert perms["is_admin"] is False
    assert [(p["resource_type"], p["permission"]) for p in perms["permissions"]] == [("experiment", "MANAGE")]


def test_access_tokens_log_in_the_stock_client_and_can_be_revoked(admin, as_user, server):
    if server["kind"] != "ferroflow":
        pytest.skip("access tokens are ferroflow's (MLflow's basic-auth answers Bearer with 401)")
    alice, alice_password = _new_user(admin, "alice")
    uri, headers = server["uri"], _basic(alice, alice_password)
    made = httpx.post(f"{uri}/api/2.0/token/create", json={"comment": "ci", "lifetime_seconds": 3600},
                      headers=headers).json()
    token, info = made["token_value"], made["token_info"]
    assert token.startswith("ffpat_") and info["comment"] == "ci" and info["expiry_time"] > info["creation_time"]
    client = as_user(token=token)
    exp = client.create_experiment(unique_name("by-token"))
    assert client.get_experiment(exp).name.startswith("by-token")
    listed = httpx.get(f"{uri}/api/2.0/token/list", headers=headers).json()["token_infos"]
    assert [t["token_id"] for t in listed] == [info["token_id"]]
    assert token not in str(listed)
    deleted = httpx.post(f"{uri}/api/2.0/token/delete", json={"token_id": info["token_id"]}, headers=headers)
    assert deleted.status_code == 200
    assert httpx.get(f"{uri}/api/2.0/mlflow/experiments/get?experiment_id={exp}",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # An expired token is refused too.
    short = httpx.post(f"{uri}/api/2.0/token/create", json={"lifetime_seconds": 1}, headers=headers).json()
    import time

    time.sleep(1.2)
    assert httpx.get(f"{uri}/api/2.0/mlflow/experiments/get?experiment_id={exp}",
                     headers={"Authorization": f"Bearer {short['token_value']}"}).status_code == 401


def test_refusals_have_mlflows_error_shape(admin, as_user, server):
    if server["kind"] != "ferroflow":
        pytest.skip("MLflow answers 401/403 as plain text; ferroflow with its JSON error shape")
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    exp = owner.create_experiment(unique_name("shape"))
    bob, bob_password = _new_user(admin, "bob")
    resp = httpx.post(f"{server['uri']}/api/2.0/mlflow/experiments/update",
                      json={"experiment_id": exp, "new_name": "x"}, headers=_basic(bob, bob_password))
    assert resp.status_code == 403
    assert resp.json() == {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}


def test_failed_logins_are_throttled_per_user_and_address(admin, server):
    if server["kind"] != "ferroflow":
        pytest.skip("throttling is ferroflow's")
    dave, dave_password = _new_user(admin, "dave")
    url = f"{server['uri']}/api/2.0/mlflow/users/current"
    for _ in range(10):
        assert httpx.get(url, headers=_basic(dave, "wrong-password!")).status_code == 401
    resp = httpx.get(url, headers=_basic(dave, dave_password))
    assert resp.status_code == 429, resp.text
    assert resp.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert dave_password not in resp.text
    # Another user from the same address is not affected.
    assert httpx.get(url, headers=_basic(ADMIN, ADMIN_PASSWORD)).status_code == 200


def test_proxied_artifacts_follow_the_experiment(admin, as_user, server, tmp_path):
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    exp = owner.create_experiment(unique_name("arts"))
    run = owner.create_run(exp)
    f = tmp_path / "a.txt"
    f.write_text("hello")
    owner.log_artifact(run.info.run_id, str(f))
    eve, eve_password = _new_user(admin, "eve")
    admin.grant_user_permission(eve, "experiment", exp, "DENY")
    path = f"{exp}/{run.info.run_id}/artifacts/a.txt"
    url = f"{server['uri']}/api/2.0/mlflow-artifacts/artifacts/{path}"
    assert httpx.get(url, headers=_basic(ADMIN, ADMIN_PASSWORD)).text == "hello"
    assert httpx.get(url, headers=_basic(eve, eve_password)).status_code == 403
    assert httpx.put(url, content=b"x", headers=_basic(eve, eve_password)).status_code == 403


def test_the_ui_shows_a_logged_in_user_only_what_they_may_read(admin, as_user, server, browser):
    from test_ui import Page

    owner = as_user(ADMIN, ADMIN_PASSWORD)
    seen_name, hidden_name = unique_name("ui-visible"), unique_name("ui-hidden")
    seen = owner.create_experiment(seen_name)
    hidden = owner.create_experiment(hidden_name)
    run = owner.create_run(seen, run_name="visible-run")
    owner.log_metric(run.info.run_id, "loss", 0.25)
    owner.create_run(hidden, run_name="hidden-run")
    viewer, password = _new_user(admin, "viewer")
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.grant_user_permission(viewer, "experiment", hidden, "DENY")
    page = Page(browser, server["uri"], http_credentials={"username": viewer, "password": password})
    try:
        page.open("experiments", seen_name)
        assert page.page.get_by_text(hidden_name).count() == 0
        page.shot("auth-experiments-list")
        page.open(f"experiments/{seen}/runs", "visible-run")
        page.shot("auth-experiment-runs")
        page.open(f"experiments/{seen}/runs/{run.info.run_id}", "visible-run", "loss")
        page.shot("auth-run")
        page.no_failed_requests()
    finally:
        page.close()



def test_graphql_fields_the_caller_may_not_read_resolve_to_null(admin, as_user, server):
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    seen = owner.create_experiment(unique_name("gql-seen"))
    hidden = owner.create_experiment(unique_name("gql-hidden"))
    hidden_run = owner.create_run(hidden)
    frank, password = _new_user(admin, "frank")
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.grant_user_permission(frank, "experiment", hidden, "DENY")
    query = ("query q($a: String, $b: String, $r: String) { "
             "a: mlflowGetExperiment(input: {experimentId: $a}) { experiment { experimentId } } "
             "b: mlflowGetExperiment(input: {experimentId: $b}) { experiment { experimentId } } "
             "r: mlflowGetRun(input: {runId: $r}) { run { info { runUuid } } } }")
    resp = httpx.post(f"{server['uri']}/graphql", headers=_basic(frank, password), json={
        "query": query, "variables": {"a": seen, "b": hidden, "r": hidden_run.info.run_id}})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["a"]["experiment"]["experimentId"] == seen
    assert data["b"] is None and data["r"] is None


def test_every_role_call_of_the_auth_client(admin, as_user, server):
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    exp = owner.create_experiment(unique_name("roles"))
    gina, _ = _new_user(admin, "gina")
    as_user(ADMIN, ADMIN_PASSWORD)
    name = unique_name("readers")
    role = admin.create_role("default", name)
    assert admin.get_role(role.id).name == name
    assert role.id in [r.id for r in admin.list_roles("default")]
    assert role.id in [r.id for r in admin.list_all_roles()]
    updated = admin.update_role(role.id, name=name + "-2", description="renamed")
    assert (updated.name, updated.description) == (name + "-2", "renamed")
    rp = admin.add_role_permission(role.id, "experiment", exp, "READ")
    assert [(p.resource_type, p.resource_pattern, p.permission) for p in admin.list_role_permissions(role.id)] == [
        ("experiment", exp, "READ")]
    assert admin.update_role_permission(rp.id, "MANAGE").permission == "MANAGE"
    with pytest.raises(MlflowException) as bad:
        admin.add_role_permission(role.id, "experiment", exp, "EVERYTHING")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as reserved:
        admin.create_role("default", "__user_999__")
    assert reserved.value.error_code == "INVALID_PARAMETER_VALUE"
    admin.assign_role(gina, role.id)
    assert [a.role_id for a in admin.list_role_users(role.id)] == [role.id]
    admin.remove_role_permission(rp.id)
    assert admin.list_role_permissions(role.id) == []
    with pytest.raises(MlflowException) as gone:
        admin.remove_role_permission(rp.id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    admin.delete_role(role.id)
    with pytest.raises(MlflowException) as missing:
        admin.get_role(role.id)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_run_without_an_experiment_id_cannot_land_in_a_denied_default_experiment(admin, as_user, server):
    hank, password = _new_user(admin, "hank")
    as_user(ADMIN, ADMIN_PASSWORD)
    admin.grant_user_permission(hank, "experiment", "0", "DENY")
    resp = httpx.post(f"{server['uri']}/api/2.0/mlflow/runs/create", json={"run_name": "sneaky"},
                      headers=_basic(hank, password))
    assert resp.status_code in (400, 403), resp.text
    owner = as_user(ADMIN, ADMIN_PASSWORD)
    assert not [r for r in owner.search_runs(["0"]) if r.info.run_name == "sneaky"]


def test_only_admins_place_a_feature_table_with_a_location(admin, as_user, server):
    if server["kind"] != "ferroflow":
        pytest.skip("the feature store is ferroflow's")
    ivy, password = _new_user(admin, "ivy")
    body = {"name": unique_name("t").replace("-", "_"), "primary_keys": ["k"],
            "schema": [{"name": "k", "type": "long"}], "location": str(server["work"] / "artifacts" / "x")}
    url = f"{server['uri']}/api/2.0/feature-store/feature-tables/create"
    assert httpx.post(url, json=body, headers=_basic(ivy, password)).status_code == 403
    assert httpx.post(url, params={"location": "/tmp"}, json={k: v for k, v in body.items() if k != "location"},
                      headers=_basic(ivy, password)).status_code == 403
    assert httpx.post(url, json=body, headers=_basic(ADMIN, ADMIN_PASSWORD)).status_code == 200


def test_a_body_too_large_for_the_gate_is_mlflows_413(admin, as_user, server):
    if server["kind"] != "ferroflow":
        pytest.skip("ferroflow's body limit")
    jack, password = _new_user(admin, "jack")
    mine = as_user(jack, password)
    run = mine.create_run(mine.create_experiment(unique_name("big")))
    body = b'{"run_id": "' + run.info.run_id.encode() + b'", "params": [], "pad": "' + b"x" * (65 << 20) + b'"}'
    resp = httpx.post(f"{server['uri']}/api/2.0/mlflow/runs/log-batch", content=body, timeout=120,
                      headers={**_basic(jack, password), "Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text[:300]
    assert resp.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
