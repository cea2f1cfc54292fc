"""`ferroflow import-mlflow`: a store written by a real `mlflow server` 3.17.2 with the stock
client is copied into a ferroflow store, and every entity read back through the client from
ferroflow equals what MLflow answers from the original: experiments (deleted too) and their
tags, runs (deleted, nested) with params, tags, latest metrics and every metric point (NaN and
±inf included), dataset inputs, logged models with params, tags and metrics, registered models
with tags, versions (stage, tags, description), aliases. A second import adds nothing; an import
killed half-way and run again ends with the same counts; a ferroflow server pointed at the
MLflow store itself refuses to start and names the importer.

Every test runs twice, once per source store: the suite's own backend (SQLite files, or on the
suite's PostgreSQL run (FERROFLOW_TEST_BACKEND_STORE_URI) fresh databases on that PostgreSQL
server), and a fresh MySQL/MariaDB database (FERROFLOW_TEST_MYSQL_URL, default
mysql+pymysql://root@127.0.0.1:3306; on the SQLite run only, to keep the suite short). The
target is a fresh store of the suite's backend. Scale knobs for a bigger store:
FERROFLOW_IMPORT_RUNS, FERROFLOW_IMPORT_POINTS (`bench/import_mlflow.py --client` runs this
module with 10,000 and 1,000,000).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from conftest import FERROFLOW_START_TIMEOUT_S, MLFLOW_START_TIMEOUT_S, REPO_ROOT, _Server
from helpers import fresh_store, unique_name
from mlflow.entities import Metric, Param, RunTag, ViewType

RUNS = int(os.environ.get("FERROFLOW_IMPORT_RUNS", "300"))
POINTS = int(os.environ.get("FERROFLOW_IMPORT_POINTS", "30000"))
BIN = Path(os.environ.get("FERROFLOW_BIN", REPO_ROOT / "target/debug/ferroflow"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_server(work: Path, store: str) -> tuple[_Server, str]:
    port = _free_port()
    binary = REPO_ROOT / ".venv" / "bin" / "mlflow"
    if not binary.exists():
        binary = Path(sys.executable).parent / "mlflow"
    argv = [str(binary), "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", store, "--artifacts-destination", str(work / "artifacts")]
    server = _Server("mlflow", argv, work, MLFLOW_START_TIMEOUT_S)
    uri = f"http://127.0.0.1:{port}"
    server.start(uri)
    return server, uri


def _ferroflow_server(work: Path, store: str) -> tuple[_Server, str]:
    port = _free_port()
    argv = [str(BIN), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", store,
            "--artifacts-destination", str(work / "artifacts")]
    server = _Server("ferroflow", argv, work, FERROFLOW_START_TIMEOUT_S)
    uri = f"http://127.0.0.1:{port}"
    server.start(uri)
    return server, uri


def _populate(uri: str) -> dict:
    """What a team's MLflow store holds, written with the stock client."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("import-main", tags={"team": "vision"})
    gone = client.create_experiment("import-deleted")
    client.create_run(gone, run_name="in-deleted")
    client.delete_experiment(gone)
    # A run with a long history (NaN and ±inf among the points) and a nested child.
    big = client.create_run(exp, run_name="long-history", tags={"kind": "big"})
    rid = big.info.run_id
    t0 = 1_700_000_000_000
    for start in range(0, POINTS, 1000):
        batch = []
        for s in range(start, min(start + 1000, POINTS)):
            value = 1.0 / (s + 1)
            if s == 7:
                value = float("nan")
            elif s == 8:
                value = float("inf")
            elif s == 9:
                value = float("-inf")
            batch.append(Metric("loss", value, t0 + s, s))
        client.log_batch(rid, metrics=batch)
    client.log_batch(rid, params=[Param("lr", "0.01"), Param("layers", "3")], tags=[RunTag("note", "x" * 100)])
    child = client.create_run(exp, run_name="child", tags={"mlflow.parentRunId": rid})
    client.log_metric(child.info.run_id, "acc", 0.5, timestamp=t0, step=0)
    client.set_terminated(child.info.run_id, "FAILED")
    client.set_terminated(rid)
    # Many small runs (the search experiment of the benchmark, smaller).
    with mlflow.start_run(experiment_id=exp, run_name="dataset-run") as r:
        import pandas as pd

        df = pd.DataFrame({"a": [1, 2, 3], "y": [0, 1, 0]})
        mlflow.log_input(mlflow.data.from_pandas(df, name="train-set", targets="y"), context="training")
        X = np.linspace(0, 1, 20).reshape(-1, 1)
        y = (X[:, 0] > 0.5).astype(int)
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                        registered_model_name="import-model", params={"C": "1.0"})
        mlflow.log_metric("val_acc", 0.9, model_id=info.model_id)
        mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit(X, y), name="model2",
                                 registered_model_name="import-model")
        mlflow.sklearn.log_model(LogisticRegression(C=0.2).fit(X, y), name="model3",
                                 registered_model_name="import-model")
    for i in range(RUNS):
        run = client.create_run(exp, run_name=f"r{i}", start_time=t0 + i)
        client.log_batch(run.info.run_id, metrics=[Metric("acc", i / RUNS, t0, 0)],
                         params=[Param("i", str(i))], tags=[RunTag("group", f"g{i % 10}")])
    deleted_run = client.create_run(exp, run_name="deleted-run")
    client.delete_run(deleted_run.info.run_id)
    # Registry: stages, aliases, tags, descriptions, a deleted version.
    client.set_registered_model_tag("import-model", "owner", "alice")
    client.update_registered_model("import-model", description="the model")
    client.transition_model_version_stage("import-model", "1", "Production")
    client.transition_model_version_stage("import-model", "2", "Staging")
    client.set_registered_model_alias("import-model", "champion", "1")
    client.set_model_version_tag("import-model", "1", "validated", "yes")
    client.update_model_version("import-model", "1", description="first")
    client.delete_model_version("import-model", "3")
    client.create_registered_model("import-empty")
    return {"experiment_id": exp, "big": rid, "model_id": info.model_id}


def _snapshot(uri: str, data: dict) -> dict:
    """Everything a client can read back, in comparable form."""
    client = mlflow.MlflowClient(uri)
    out = {}
    exps = client.search_experiments(view_type=ViewType.ALL, filter_string="name LIKE 'import-%'")
    out["experiments"] = sorted(
        (e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location, e.creation_time, e.last_update_time,
         tuple(sorted(e.tags.items())))
        for e in exps
    )
    runs = client.search_runs([e.experiment_id for e in exps], run_view_type=ViewType.ALL, max_results=50000)
    out["runs"] = sorted(
        (r.info.run_id, r.info.experiment_id, r.info.run_name, r.info.status, r.info.start_time, r.info.end_time,
         r.info.lifecycle_stage, r.info.artifact_uri, tuple(sorted(r.data.params.items())),
         tuple(sorted(r.data.tags.items())),
         tuple(sorted((k, repr(v)) for k, v in r.data.metrics.items())),
         tuple(sorted((d.dataset.name, d.dataset.digest, d.dataset.source_type,
                       tuple(sorted((t.key, t.value) for t in d.tags))) for d in r.inputs.dataset_inputs)))
        for r in runs
    )
    hist = client.get_metric_history(data["big"], "loss")
    out["history"] = sorted((m.step, m.timestamp, repr(m.value)) for m in hist)
    model = client.get_logged_model(data["model_id"])
    out["logged_model"] = (model.model_id, model.name, model.experiment_id, model.artifact_location,
                           model.status, model.source_run_id, tuple(sorted(model.params.items())),
                           tuple(sorted(model.tags.items())),
                           tuple(sorted((m.key, m.value, m.step) for m in model.metrics)))
    rms = client.search_registered_models("name LIKE 'import-%'")
    out["registered_models"] = sorted(
        (m.name, m.description, m.creation_timestamp, m.last_updated_timestamp, tuple(sorted(m.tags.items())),
         tuple(sorted(m.aliases.items())))
        for m in rms
    )
    versions = client.search_model_versions("name = 'import-model'")
    out["versions"] = sorted(
        (v.name, v.version, v.current_stage, v.description, v.source, v.run_id, v.status, v.creation_timestamp,
         v.last_updated_timestamp, tuple(sorted(v.tags.items())), tuple(sorted(v.aliases)))
        for v in versions
    )
    out["by_alias"] = client.get_model_version_by_alias("import-model", "champion").version
    out["latest"] = sorted((v.version, v.current_stage) for v in client.get_latest_versions("import-model"))
    return out


def _import(source: str, target: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "import-mlflow", "--from", source, "--to", target],
                          capture_output=True, text=True, timeout=timeout)


def _counts(stdout: str) -> dict[str, tuple[int, int, int]]:
    rows = {}
    for line in stdout.splitlines()[1:]:
        parts = line.rsplit(None, 3)
        if len(parts) == 4 and parts[1].isdigit():
            rows[parts[0].strip()] = tuple(int(p) for p in parts[1:])
    return rows


MYSQL_URL = os.environ.get("FERROFLOW_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
ON_POSTGRES = os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI", "").startswith("postgres")


def _fresh_mysql_store() -> str:
    """A new database on the machine's MySQL/MariaDB server, as MLflow's URI."""
    from urllib.parse import urlsplit

    import pymysql

    url = urlsplit(MYSQL_URL)
    db = f"mlflow_import_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    con = pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                          password=url.password or "")
    try:
        con.cursor().execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    finally:
        con.close()
    return f"{MYSQL_URL.rstrip('/')}/{db}"


@pytest.fixture(scope="module", params=["native", "mysql"])
def source(request, server_kind):
    if server_kind != "ferroflow":
        pytest.skip("imports into ferroflow (the reference server is the source here)")
    if request.param == "mysql" and ON_POSTGRES:
        pytest.skip("the MySQL source is imported on the suite's SQLite run")
    work = Path(tempfile.mkdtemp(prefix="ferroflow-import-"))
    if request.param == "mysql":
        store = _fresh_mysql_store()
    else:
        # On the suite's PostgreSQL run MLflow's store is a PostgreSQL database too.
        store = _fresh_store(work, "mlflow.db").replace("postgres://", "postgresql+psycopg2://", 1)
    server, uri = _mlflow_server(work, store)
    previous = mlflow.get_tracking_uri()
    try:
        data = _populate(uri)
        expected = _snapshot(uri, data)
    finally:
        mlflow.set_tracking_uri(previous)
        server.stop()
    yield {"work": work, "store": store, "data": data, "expected": expected, "kind": request.param}
    shutil.rmtree(work, ignore_errors=True)


def _fresh_store(work: Path, name: str) -> str:
    return fresh_store(work, f"import_{name}")


def test_import_copies_everything_the_client_can_read(source):
    target = _fresh_store(source["work"], "ferroflow.db")
    done = _import(source["store"], target)
    assert done.returncode == 0, done.stderr + done.stdout
    counts = _counts(done.stdout)
    for label in ("experiments", "runs", "metric points", "params", "run tags", "registered models",
                  "model versions", "aliases", "logged models", "datasets", "inputs"):
        assert label in counts, done.stdout
        src, added, have = counts[label]
        assert src == added == have, (label, counts[label], done.stdout)
    # Deleted versions stay deleted: two live versions of import-model.
    assert counts["model versions"][0] == 2
    server, uri = _ferroflow_server(source["work"], target)
    try:
        got = _snapshot(uri, source["data"])
        for key, want in source["expected"].items():
            assert got[key] == want, key
        assert len(got["history"]) == POINTS
        assert dict((s, v) for s, _, v in got["history"])[7] == "nan"
        # New work continues after the imported ids.
        client = mlflow.MlflowClient(uri)
        new_exp = client.create_experiment(unique_name("after-import"))
        assert int(new_exp) > int(source["data"]["experiment_id"])
        assert client.create_model_version("import-model", "s3://b/new").version == "4"
    finally:
        server.stop()


def test_a_second_import_adds_nothing(source):
    target = _fresh_store(source["work"], "twice.db")
    assert _import(source["store"], target).returncode == 0
    again = _import(source["store"], target)
    assert again.returncode == 0, again.stderr
    counts = _counts(again.stdout)
    assert counts and all(added == 0 and have == src for src, added, have in counts.values()), again.stdout


def test_an_import_killed_half_way_resumes(source):
    target = _fresh_store(source["work"], "killed.db")
    proc = subprocess.Popen([str(BIN), "import-mlflow", "--from", source["store"], "--to", target,
                             "--batch", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Kill it while it copies the long metric history.
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()
        seen += line
        if "metric points" in line:
            time.sleep(0.3)
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _import(source["store"], target)
    assert done.returncode == 0, done.stderr
    counts = _counts(done.stdout)
    assert all(have == src for src, _, have in counts.values()), done.stdout


def test_server_on_an_mlflow_store_names_the_importer(source):
    port = _free_port()
    proc = subprocess.run([str(BIN), "server", "--port", str(port), "--backend-store-uri", source["store"]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "ferroflow import-mlflow" in proc.stderr, proc.stderr


def test_a_store_that_is_not_mlflows_is_refused(tmp_path):
    plain = tmp_path / "plain.db"
    import sqlite3

    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    done = _import(f"sqlite:///{plain}", f"sqlite:///{tmp_path / 'out.db'}")
    assert done.returncode != 0
    assert "not an MLflow store" in done.stderr


def test_an_unreachable_store_is_refused_before_anything_is_written(tmp_path):
    port = _free_port()
    done = _import(f"mysql+pymysql://root@127.0.0.1:{port}/mlflow", f"sqlite:///{tmp_path / 'out.db'}")
    assert done.returncode != 0
    assert "cannot open the MLflow store" in done.stderr, done.stderr
    assert not (tmp_path / "out.db").exists()
