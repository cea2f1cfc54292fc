"""`file://` artifact roots, as `mlflow server --default-artifact-root file:///…` runs them: the
client writes artifacts straight into the directory, and the server registers, lists and serves
them in place — a model version whose source is the run's own `file://` URI, a logged model's
artifacts (the UI's directory and file calls), a version made from a logged model's location
with its `model_id` — while a path outside the run's or model's directory stays refused.

A second server is started for this module (ferroflow, or `mlflow server` under
FERROFLOW_TEST_AGAINST=mlflow) with its default artifact root a local `file://` directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import httpx
import mlflow
import pytest
from conftest import FERROFLOW_START_TIMEOUT_S, MLFLOW_START_TIMEOUT_S, REPO_ROOT, _Server
from helpers import raises_mlflow_error, unique_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def file_server(server_kind):
    if server_kind == "external":
        pytest.skip("starts its own server with a file:// default artifact root")
    work = Path(tempfile.mkdtemp(prefix="ferroflow-file-root-"))
    root = work / "artifact root"  # a space: file URIs are percent-encoded
    root.mkdir()
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    if server_kind == "mlflow":
        binary = REPO_ROOT / ".venv" / "bin" / "mlflow"
        if not binary.exists():
            binary = Path(sys.executable).parent / "mlflow"
        argv = [str(binary), "server", "--workers", "1"]
        timeout = MLFLOW_START_TIMEOUT_S
    else:
        binary = Path(os.environ.get("FERROFLOW_BIN", REPO_ROOT / "target/debug/ferroflow"))
        argv = [str(binary), "server"]
        timeout = FERROFLOW_START_TIMEOUT_S
    store = os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI") if server_kind == "ferroflow" else None
    argv += [
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", store or f"sqlite:///{work / 'store.db'}",
        "--default-artifact-root", root.as_uri(),
    ]  # fmt: skip
    server = _Server(server_kind, argv, work, timeout)
    server.start(uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield {"uri": uri, "root": root, "client": mlflow.MlflowClient(uri)}
    finally:
        mlflow.set_tracking_uri(previous)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def logged(file_server, tmp_path_factory):
    """A run with a file artifact and a logged sklearn model, written by the client itself."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    client = file_server["client"]
    exp = client.create_experiment(unique_name("file-root"))
    d = tmp_path_factory.mktemp("file-root-files")
    (d / "weights.txt").write_text("w=1\n")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(d / "weights.txt"), artifact_path="raw-model")
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(np.arange(10).reshape(-1, 1), np.arange(10)), name="model"
        )
    return {"experiment_id": exp, "run": client.get_run(run.info.run_id), "model": info}


def test_roots_are_file_uris_and_the_client_writes_there(file_server, logged):
    run = logged["run"]
    assert run.info.artifact_uri.startswith(file_server["root"].as_uri())
    assert logged["model"].artifact_path.startswith(file_server["root"].as_uri())
    on_disk = Path(file_server["root"]) / logged["experiment_id"] / run.info.run_id / "artifacts" / "raw-model"
    assert (on_disk / "weights.txt").read_text() == "w=1\n"


def test_a_version_from_the_runs_own_file_uri_is_registered(file_server, logged):
    client, run = file_server["client"], logged["run"]
    name = unique_name("file-src")
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/raw-model", run_id=run.info.run_id)
    assert mv.source == f"{run.info.artifact_uri}/raw-model"
    assert mv.run_id == run.info.run_id
    # The UI reads the version's files through the server.
    resp = httpx.get(f"{file_server['uri']}/model-versions/get-artifact",
                     params={"name": name, "version": mv.version, "path": "weights.txt"})
    assert resp.status_code == 200, resp.text
    assert resp.text == "w=1\n"


def test_a_local_source_outside_the_runs_directory_is_refused(file_server, logged, tmp_path):
    client, run = file_server["client"], logged["run"]
    name = unique_name("file-bad")
    client.create_registered_model(name)
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="local path has to be contained"):
        client.create_model_version(name, tmp_path.as_uri(), run_id=run.info.run_id)
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="local path has to be contained"):
        client.create_model_version(name, f"{run.info.artifact_uri}/raw-model", run_id=None)
    other = client.create_run(logged["experiment_id"]).info.run_id
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="local path has to be contained"):
        client.create_model_version(name, f"{run.info.artifact_uri}/raw-model", run_id=other)
    assert client.search_model_versions(f"name = '{name}'") == []


def test_logged_model_artifacts_under_a_file_root_are_listed_and_served(file_server, logged):
    model_id = logged["model"].model_id
    base = f"{file_server['uri']}/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts"
    resp = httpx.get(f"{base}/directories")
    assert resp.status_code == 200, resp.text
    files = {f["path"] for f in resp.json()["files"]}
    assert {"MLmodel", "requirements.txt"} <= files, files
    resp = httpx.get(f"{base}/files", params={"artifact_file_path": "MLmodel"})
    assert resp.status_code == 200, resp.text
    assert f"model_id: {model_id}" in resp.text
    # Still no way out of the model's directory.
    resp = httpx.get(f"{base}/files", params={"artifact_file_path": "../../../../store.db"})
    assert resp.status_code == 400, resp.text


def test_a_version_from_a_logged_models_location_with_its_model_id(file_server, logged):
    client = file_server["client"]
    model = client.get_logged_model(logged["model"].model_id)
    name = unique_name("file-lm")
    client.create_registered_model(name)
    mv = client.create_model_version(name, model.artifact_location, model_id=model.model_id)
    assert mv.source == model.artifact_location
    # The stock client loads it back (it reads the file:// location itself).
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    assert loaded.predict([[3.0]])[0] == pytest.approx(3.0)
    # The same location with another model's id is not that model's.
    other = client.create_logged_model(logged["experiment_id"]).model_id
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="local path has to be contained"):
        client.create_model_version(name, model.artifact_location, model_id=other)


def test_registering_with_log_model_on_a_file_root(file_server, logged):
    name = unique_name("file-reg")
    with mlflow.start_run(experiment_id=logged["experiment_id"]):
        from sklearn.dummy import DummyRegressor

        info = mlflow.sklearn.log_model(DummyRegressor().fit([[0], [1]], [0, 1]), name="m",
                                        registered_model_name=name)
    assert file_server["client"].get_model_version(name, "1").source == f"models:/{info.model_id}"
    assert mlflow.pyfunc.load_model(f"models:/{name}/1").predict([[0]]).shape == (1,)
