"""AutoML end to end: sweeps started over REST on scikit-learn's bundled data sets (exported to
CSV), followed to the end, then checked with the stock mlflow client (child runs, artifacts,
the logged and registered model), served by `/serving-endpoints/{name}/invocations` and loaded
back with `mlflow.pyfunc.load_model` (onnxruntime in Python).

The reference for every answer is `native_predictions.json` on the summary run: the native Rust
model's predictions on the held-out test rows. The served ONNX export and the pyfunc model must
agree with it to 1e-5.

AutoML is ferroflow-only: every test is skipped against the reference mlflow server.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from helpers import error_body, unique_name
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

PROB_TOL = 1e-5
# How far past its budget a finished job may have taken (summary.elapsed_seconds), and how long
# past the budget the poll waits before calling a job hung (a little more: polling and start-up).
OVERRUN_S = 20.0
POLL_SLACK_S = OVERRUN_S + 25.0
CLASSIFIERS = {"logistic_regression", "decision_tree", "random_forest", "gradient_boosting", "knn", "gaussian_nb", "svm"}
REGRESSORS = {"linear_regression", "elastic_net", "decision_tree", "random_forest", "gradient_boosting", "knn"}


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("mlflow server has no AutoML")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------


def _iris_frame() -> pd.DataFrame:
    """Iris with string species, a categorical `color` column and a few missing values."""
    iris = load_iris()
    frame = pd.DataFrame(
        iris.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"]
    )
    rng = np.random.default_rng(0)
    frame["color"] = rng.choice(["red", "green", "blue"], size=len(frame))
    frame["species"] = iris.target_names[iris.target]
    for row, col in [(3, "sepal_length"), (17, "sepal_width"), (60, "petal_length"),
                     (88, "sepal_width"), (120, "petal_width"), (140, "sepal_length")]:
        frame.loc[row, col] = np.nan
    frame.loc[[25, 110], "color"] = None
    return frame


def _sklearn_frame(loader, target="target") -> pd.DataFrame:
    bunch = loader()
    frame = pd.DataFrame(bunch.data, columns=list(bunch.feature_names))
    frame[target] = bunch.target
    return frame


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("automl-data")
    _iris_frame().to_csv(d / "iris.csv", index=False)
    _sklearn_frame(load_wine).to_csv(d / "wine.csv", index=False)
    _sklearn_frame(load_breast_cancer).to_csv(d / "breast_cancer.csv", index=False)
    _sklearn_frame(load_diabetes).to_csv(d / "diabetes.csv", index=False)
    one_class = _iris_frame().drop(columns=["species"])
    one_class["label"] = "only"
    one_class.to_csv(d / "one_class.csv", index=False)
    (d / "header_only.csv").write_text("sepal_length,sepal_width,species\n")
    _iris_frame().to_parquet(d / "iris.parquet", index=False)
    return d


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _upload(rest, path: Path) -> str:
    r = rest.post(
        "/api/2.0/automl/datasets", params={"name": path.name}, content=path.read_bytes()
    )
    assert r.status_code == 200, r.text
    uri = r.json()["dataset"]
    assert uri.startswith("mlflow-artifacts:/automl/datasets/") and uri.endswith(f"/{path.name}"), uri
    return uri


def _start(rest, **body) -> dict:
    r = rest.post("/api/2.0/automl/runs", json=body)
    assert r.status_code == 200, (body, r.text)
    run = r.json()["automl_run"]
    assert run["state"] == "RUNNING", run
    for key in ("id", "experiment_id", "parent_run_id", "progress"):
        assert run.get(key) not in (None, ""), (key, run)
    return run


def _get(rest, automl_id: str) -> dict:
    r = rest.get(f"/api/2.0/automl/runs/{automl_id}")
    assert r.status_code == 200, r.text
    return r.json()["automl_run"]


def _wait_done(rest, automl_id: str, timeout_s: float) -> dict:
    """Polls (bounded) until the job leaves RUNNING; returns the final record."""
    deadline = time.monotonic() + timeout_s
    run = _get(rest, automl_id)
    while run["state"] == "RUNNING":
        if time.monotonic() > deadline:
            raise AssertionError(
                f"AutoML run {automl_id} still RUNNING after {timeout_s:.0f}s: "
                f"{json.dumps(run['progress'])[:2000]}"
            )
        time.sleep(0.5)
        run = _get(rest, automl_id)
    return run


def _sweep(rest, data_dir, file, timeout_minutes, **body) -> dict:
    dataset = _upload(rest, data_dir / file)
    started = _start(
        rest,
        dataset=dataset,
        timeout_minutes=timeout_minutes,
        experiment_name=unique_name("automl"),
        **body,
    )
    done = _wait_done(rest, started["id"], timeout_minutes * 60 + POLL_SLACK_S)
    assert done["state"] == "SUCCEEDED", json.dumps(
        {k: done.get(k) for k in ("state", "error", "progress")}
    )[:4000]
    assert done["id"] == started["id"]
    assert done["parent_run_id"] == started["parent_run_id"]
    assert done["experiment_id"] == started["experiment_id"]
    assert not done.get("error"), done.get("error")
    return done


def _native(client, parent_run_id: str) -> dict:
    dst = tempfile.mkdtemp()
    local = client.download_artifacts(parent_run_id, "native_predictions.json", dst)
    native = json.loads(Path(local).read_text())
    assert set(native) >= {"columns", "data", "predictions"}, native.keys()
    assert native["data"] and all(len(r) == len(native["columns"]) for r in native["data"])
    return native


def _create_endpoint(rest, model_name: str, version: str) -> str:
    endpoint = unique_name("automl-ep")
    r = rest.post(
        "/api/2.0/serving-endpoints",
        json={
            "name": endpoint,
            "config": {"served_models": [{"model_name": model_name, "model_version": version}]},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"]["ready"] == "READY", r.text
    return endpoint


def _serve(rest, endpoint: str, native: dict) -> dict:
    body = {"dataframe_split": {"columns": native["columns"], "data": native["data"]}}
    r = rest.post(f"/serving-endpoints/{endpoint}/invocations", json=body)
    assert r.status_code == 200, (r.status_code, r.text[:4000])
    answer = r.json()
    assert isinstance(answer, dict) and isinstance(answer.get("predictions"), dict), answer
    return answer["predictions"]


def _assert_classes_match(got: dict, want: dict, where: str) -> None:
    """Labels equal, probabilities within PROB_TOL (got / want: {label, probabilities})."""
    labels = list(got["label"])
    assert len(labels) == len(want["label"]), (where, got, want)
    assert labels == list(want["label"]), (where, labels, want["label"])
    probs = np.asarray(got["probabilities"], dtype=float)
    expected = np.asarray(want["probabilities"], dtype=float)
    assert probs.shape == expected.shape, (where, probs.shape, expected.shape, got)
    diff = float(np.max(np.abs(probs - expected)))
    assert diff <= PROB_TOL, (where, diff, got, want)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4), (where, probs)


def _assert_values_match(got, want, where: str) -> None:
    values = np.asarray(got, dtype=float).reshape(-1)
    expected = np.asarray(want, dtype=float).reshape(-1)
    assert values.shape == expected.shape, (where, values.shape, expected.shape, got)
    for i, (g, w) in enumerate(zip(values, expected)):
        assert abs(g - w) <= max(1e-3, 1e-5 * abs(w)), (where, i, g, w)


def _automl_count(rest) -> int:
    r = rest.get("/api/2.0/automl/runs", params={"max_results": 1000})
    assert r.status_code == 200, r.text
    return len(r.json()["automl_runs"])


def _check_summary_common(summary: dict, problem_metrics: set[str], n_rows: int) -> None:
    assert summary["trials"] >= 1
    assert summary["best_trial"]["run_id"]
    assert set(summary["best_trial"]) >= {"trial", "run_id", "estimator", "library", "params", "validation"}
    assert set(summary["test_metrics"]) >= problem_metrics, summary["test_metrics"]
    assert all(math.isfinite(v) for v in summary["test_metrics"].values()), summary["test_metrics"]
    rows = summary["rows"]
    assert rows["train"] > 0 and rows["test"] > 0, rows
    assert rows["train"] + rows["validation"] + rows["test"] == n_rows, rows
    model = summary["model"]
    assert model["model_id"].startswith("m-"), model
    assert model["model_uri"] == f"models:/{model['model_id']}", model
    assert model["artifact_uri"], model
    assert summary["feature_importance"], summary
    for item in summary["feature_importance"]:
        assert set(item) >= {"column", "importance", "std"}, item
    assert summary["leaderboard_top"], summary
    assert summary["stop_reason"], summary
    # The budget holds: the sweep stops at the budget less its reserve, and exporting, checking
    # in ONNX Runtime and logging fit in the reserve plus OVERRUN_S (a debug build on a loaded
    # 2-core machine).
    assert 0 < summary["elapsed_seconds"] <= summary["budget_seconds"] + OVERRUN_S, summary


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_classification_sweep_end_to_end(rest, client, data_dir):
    model_name = unique_name("automl-iris")
    done = _sweep(
        rest, data_dir, "iris.csv", 0.25,
        target_col="species", problem_type="classification",
        register_model_name=model_name, seed=7,
    )  # fmt: skip
    summary = done["summary"]
    parent = done["parent_run_id"]
    _check_summary_common(summary, {"accuracy", "f1", "precision", "recall", "log_loss", "roc_auc"}, 150)
    assert summary["trials"] >= 2, summary["trials"]
    assert summary["primary_metric"] == "f1"
    assert summary["best_trial"]["estimator"] in CLASSIFIERS
    assert "f1" in summary["best_trial"]["validation"]
    assert summary["test_metrics"]["accuracy"] >= 0.8, summary["test_metrics"]
    assert {f["column"] for f in summary["feature_importance"]} == {
        "sepal_length", "sepal_width", "petal_length", "petal_width", "color"
    }, summary["feature_importance"]  # fmt: skip
    assert set(summary["plots"]) >= {
        "plots/confusion_matrix.png", "plots/roc_curve.png", "plots/feature_importance.png"
    }, summary["plots"]  # fmt: skip
    agreement = summary["model"]["onnx_vs_native"]
    assert agreement["max_abs_probability_diff"] <= PROB_TOL, agreement
    assert agreement["labels_differ"] == 0, agreement
    assert agreement["rows"] == summary["rows"]["test"], agreement
    assert summary["registered_model"] == {"name": model_name, "version": "1"}, summary["registered_model"]

    # Progress: every trial accounted for, each with its child run.
    progress = done["progress"]
    assert progress["trials_completed"] + progress["trials_failed"] == summary["trials"], progress
    assert len(progress["trials"]) == summary["trials"]
    assert progress["best_trial"] is not None
    for t in progress["trials"]:
        assert set(t) >= {"trial", "run_id", "estimator", "exportable", "params", "validation",
                          "primary_metric", "duration_seconds", "error"}, t  # fmt: skip
        assert t["run_id"], t

    # The job is listed.
    listed = rest.get("/api/2.0/automl/runs").json()["automl_runs"]
    assert done["id"] in {r["id"] for r in listed}

    # Child runs, one per trial, found with the stock client.
    children = client.search_runs(
        [done["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
        max_results=1000,
    )
    assert len(children) == summary["trials"], (len(children), summary["trials"])
    assert {c.info.run_id for c in children} == {t["run_id"] for t in progress["trials"]}
    assert summary["best_trial"]["run_id"] in {c.info.run_id for c in children}
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert len(finished) >= 2, [c.info.status for c in children]
    for child in finished:
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.data.params["estimator"] in CLASSIFIERS, child.data.params
        assert len(child.data.params) >= 1
        assert {"val_f1", "train_f1", "val_accuracy", "duration_seconds"} <= set(child.data.metrics), (
            child.data.metrics
        )
    # At least one estimator carries hyperparameters beyond its name.
    assert any(len(c.data.params) > 1 for c in finished), [c.data.params for c in finished]

    # Artifacts of the summary run, as the client lists them.
    top = {a.path for a in client.list_artifacts(parent)}
    assert top >= {"summary.json", "leaderboard.csv", "leaderboard.json", "data_preparation.json",
                   "native_predictions.json", "plots"}, top  # fmt: skip
    plots = {a.path for a in client.list_artifacts(parent, "plots")}
    assert plots >= {"plots/confusion_matrix.png", "plots/roc_curve.png",
                     "plots/feature_importance.png"}, plots  # fmt: skip
    png = Path(client.download_artifacts(parent, "plots/confusion_matrix.png", tempfile.mkdtemp()))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leaderboard = Path(client.download_artifacts(parent, "leaderboard.csv", tempfile.mkdtemp()))
    board = pd.read_csv(leaderboard)
    assert "val_f1" in board.columns and len(board) >= 2, board

    # The logged model and the registered version pointing at it.
    model = summary["model"]
    logged = client.get_logged_model(model["model_id"])
    assert logged.model_id == model["model_id"]
    version = client.get_model_version(model_name, "1")
    assert version.source == model["model_uri"], (version.source, model)
    assert version.run_id == summary["best_trial"]["run_id"], (version.run_id, summary["best_trial"])

    # Served answers equal the native model's.
    native = _native(client, parent)
    assert native["columns"] == ["sepal_length", "sepal_width", "petal_length", "petal_width", "color"], native["columns"]
    want = native["predictions"]
    assert set(want["label"]) <= {"setosa", "versicolor", "virginica"}, want["label"]
    assert len(want["label"]) == summary["rows"]["test"]
    endpoint = _create_endpoint(rest, model_name, "1")
    served = _serve(rest, endpoint, native)
    _assert_classes_match(served, want, "served")

    # mlflow.pyfunc (onnxruntime in Python) on the same rows.
    frame = pd.DataFrame(native["data"], columns=native["columns"])
    for col in ["sepal_length", "sepal_width", "petal_length", "petal_width"]:
        frame[col] = frame[col].astype("float32")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name}/1")
    out = pyfunc.predict(frame)
    if isinstance(out, pd.DataFrame):
        out = {c: out[c].tolist() for c in out.columns}
    assert isinstance(out, dict) and set(out) >= {"label", "probabilities"}, out
    labels = [x.decode() if isinstance(x, bytes) else x for x in np.asarray(out["label"]).reshape(-1).tolist()]
    _assert_classes_match({"label": labels, "probabilities": np.asarray(out["probabilities"]).tolist()}, want, "pyfunc")


def test_binary_classification_roc_auc_served_equals_native(rest, client, data_dir):
    model_name = unique_name("automl-cancer")
    done = _sweep(
        rest, data_dir, "breast_cancer.csv", 0.2,
        target_col="target", problem_type="classification", primary_metric="roc_auc",
        register_model_name=model_name,
    )  # fmt: skip
    summary = done["summary"]
    _check_summary_common(summary, {"accuracy", "f1", "roc_auc", "log_loss"}, 569)
    assert summary["primary_metric"] == "roc_auc"
    assert "roc_auc" in summary["best_trial"]["validation"]
    assert summary["test_metrics"]["roc_auc"] >= 0.9, summary["test_metrics"]
    agreement = summary["model"]["onnx_vs_native"]
    assert agreement["max_abs_probability_diff"] <= PROB_TOL and agreement["labels_differ"] == 0, agreement
    assert summary["registered_model"] == {"name": model_name, "version": "1"}
    native = _native(client, done["parent_run_id"])
    want = native["predictions"]
    assert set(want["label"]) <= {0, 1}, want["label"]
    assert all(len(p) == 2 for p in want["probabilities"])
    served = _serve(rest, _create_endpoint(rest, model_name, "1"), native)
    _assert_classes_match(served, want, "served")


def test_regression_sweep_served_equals_native(rest, client, data_dir):
    model_name = unique_name("automl-diabetes")
    done = _sweep(
        rest, data_dir, "diabetes.csv", 0.2,
        target_col="target", problem_type="regression", register_model_name=model_name,
    )  # fmt: skip
    summary = done["summary"]
    parent = done["parent_run_id"]
    _check_summary_common(summary, {"r2", "rmse", "mae"}, 442)
    assert summary["primary_metric"] == "r2"
    assert summary["best_trial"]["estimator"] in REGRESSORS
    assert summary["test_metrics"]["r2"] > 0.2, summary["test_metrics"]
    assert summary["test_metrics"]["rmse"] > 0 and summary["test_metrics"]["mae"] > 0
    assert set(summary["plots"]) >= {"plots/predicted_vs_actual.png", "plots/feature_importance.png"}, summary["plots"]
    agreement = summary["model"]["onnx_vs_native"]
    assert agreement["max_rel_diff"] <= 1e-5, agreement
    assert summary["registered_model"] == {"name": model_name, "version": "1"}
    plots = {a.path for a in client.list_artifacts(parent, "plots")}
    assert plots >= {"plots/predicted_vs_actual.png", "plots/feature_importance.png"}, plots
    children = client.search_runs(
        [done["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=1000
    )
    assert len(children) == summary["trials"]
    for child in children:
        if child.info.status == "FINISHED":
            assert child.data.params["estimator"] in REGRESSORS
            assert {"val_r2", "train_r2", "duration_seconds"} <= set(child.data.metrics), child.data.metrics
    native = _native(client, parent)
    want = native["predictions"]["variable"]
    assert len(want) == summary["rows"]["test"]
    served = _serve(rest, _create_endpoint(rest, model_name, "1"), native)
    assert set(served) == {"variable"}, served
    _assert_values_match(served["variable"], want, "served")


def test_parquet_dataset(rest, data_dir):
    done = _sweep(
        rest, data_dir, "iris.parquet", 0.1,
        target_col="species", problem_type="classification", primary_metric="accuracy",
    )  # fmt: skip
    summary = done["summary"]
    assert summary["rows"]["test"] == 30, summary["rows"]
    assert summary["test_metrics"]["accuracy"] > 0.8, summary["test_metrics"]
    agreement = summary["model"]["onnx_vs_native"]
    assert agreement["labels_differ"] == 0, agreement


def test_bad_inputs_are_400_and_leave_nothing_behind(rest, data_dir):
    iris = _upload(rest, data_dir / "iris.csv")
    one_class = _upload(rest, data_dir / "one_class.csv")
    header_only = _upload(rest, data_dir / "header_only.csv")
    before = _automl_count(rest)

    # An empty upload is refused outright.
    empty = rest.post("/api/2.0/automl/datasets", params={"name": "empty.csv"}, content=b"")
    body = error_body(empty, "INVALID_PARAMETER_VALUE", 400)
    assert "empty" in body["message"].lower(), body

    base = {"dataset": iris, "target_col": "species", "problem_type": "classification", "timeout_minutes": 0.2}
    cases = [
        ({"target_col": "no_such_column"}, 400, "INVALID_PARAMETER_VALUE", "no_such_column"),
        ({"dataset": one_class, "target_col": "label"}, 400, "INVALID_PARAMETER_VALUE", "one class"),
        ({"dataset": header_only}, 400, "INVALID_PARAMETER_VALUE", "no rows"),
        ({"problem_type": "regression"}, 400, "INVALID_PARAMETER_VALUE", "numeric"),
        ({"timeout_minutes": 0}, 400, "INVALID_PARAMETER_VALUE", "timeout_minutes"),
        ({"problem_type": "clustering"}, 400, "INVALID_PARAMETER_VALUE", "clustering"),
        ({"primary_metric": "bogus_metric"}, 400, "INVALID_PARAMETER_VALUE", "bogus_metric"),
        ({"exclude_algorithms": ["xgboost_turbo"]}, 400, "INVALID_PARAMETER_VALUE", "xgboost_turbo"),
        ({"dataset": "mlflow-artifacts:/automl/datasets/0123456789abcdef/missing.csv"}, 404,
         "RESOURCE_DOES_NOT_EXIST", "missing.csv"),
    ]  # fmt: skip
    for change, status, code, named in cases:
        model_name = unique_name("automl-bad")
        experiment = unique_name("automl-bad")
        request = {**base, **change, "register_model_name": model_name, "experiment_name": experiment}
        r = rest.post("/api/2.0/automl/runs", json=request)
        assert r.status_code == status, (change, r.status_code, r.text)
        body = error_body(r, code, status)
        assert named.lower() in body["message"].lower(), (change, body)
        got = rest.get("/api/2.0/mlflow/registered-models/get", params={"name": model_name})
        assert got.status_code == 404, (change, got.text)
        exp = rest.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": experiment})
        assert exp.status_code == 404, (change, exp.text)
    assert _automl_count(rest) == before


def test_cancel_keeps_the_best_model_so_far(rest, data_dir):
    # Large enough that the sweep is still running when the cancel arrives.
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=20000, n_features=20, n_informative=8, random_state=1)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
    frame["target"] = y
    path = data_dir / "synthetic_cancel.csv"
    frame.to_csv(path, index=False)
    dataset = _upload(rest, path)
    started = _start(
        rest, dataset=dataset, target_col="target", problem_type="classification",
        timeout_minutes=10, experiment_name=unique_name("automl-cancel"),
    )  # fmt: skip
    automl_id = started["id"]
    # Cancel once a trial has finished (there is then a model to keep), however busy the machine.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        progress = _get(rest, automl_id)["progress"]
        if progress["trials_completed"] >= 1:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no trial finished in 90 s: {json.dumps(progress)[:2000]}")
    r = rest.post(f"/api/2.0/automl/runs/{automl_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["automl_run"]["id"] == automl_id
    # Far less than the 10 min budget: a cancel that were ignored would time out here.
    done = _wait_done(rest, automl_id, 120)
    assert done["state"] == "CANCELLED", json.dumps(done)[:3000]
    summary = done.get("summary")
    assert summary, done
    assert summary["stop_reason"] == "cancelled", summary["stop_reason"]
    assert summary["trials"] >= 1
    assert summary["elapsed_seconds"] < summary["budget_seconds"] / 2, summary  # stopped early
    assert summary["model"]["model_uri"].startswith("models:/m-"), summary["model"]
    assert summary["best_trial"]["run_id"], summary["best_trial"]

    again = rest.post(f"/api/2.0/automl/runs/{automl_id}/cancel")
    error_body(again, "BAD_REQUEST", 400)
    assert _get(rest, automl_id)["state"] == "CANCELLED"

    missing = rest.get("/api/2.0/automl/runs/nope")
    error_body(missing, "RESOURCE_DOES_NOT_EXIST", 404)
    missing_cancel = rest.post("/api/2.0/automl/runs/nope/cancel")
    error_body(missing_cancel, "RESOURCE_DOES_NOT_EXIST", 404)


def _binary() -> str:
    root = Path(__file__).resolve().parents[2]
    return os.environ.get("FERROFLOW_BIN", str(root / "target/debug/ferroflow"))


def test_cli_regress_registers_the_best_model(rest, data_dir, tracking_uri, tmp_path):
    binary = _binary()
    if not Path(binary).exists():
        pytest.skip(f"no ferroflow binary at {binary}")
    model_name = unique_name("automl-cli")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    proc = subprocess.run(
        [binary, "automl", "regress", "--data", str(data_dir / "diabetes.csv"), "--target", "target",
         "--timeout", "10s", "--register", model_name, "--tracking-uri", tracking_uri],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, output
    assert "rank" in proc.stdout and "val_r2" in proc.stdout, output
    assert any(est in proc.stdout for est in REGRESSORS), output
    assert "best exportable:" in proc.stdout, output
    assert f"registered: models:/{model_name}/1" in proc.stdout, output
    got = rest.get(
        "/api/2.0/mlflow/model-versions/get", params={"name": model_name, "version": "1"}
    )
    assert got.status_code == 200, got.text
    assert got.json()["model_version"]["source"].startswith("models:/m-"), got.text


def _yes_no_frame() -> pd.DataFrame:
    """Yes/no and Y/N text columns that decide the class, and a column of logarithms written
    with six decimals (6.907755 and the like: exact in the file, noise once widened from f32)."""
    rng = np.random.default_rng(3)
    n = 300
    idp = rng.choice(["yes", "no"], size=n)
    smoker = rng.choice(["Y", "N"], size=n)
    x = np.round(rng.normal(size=n), 3)
    dose = np.round(np.log(rng.integers(1, 2000, size=n).astype(float)), 6)
    score = (idp == "yes") * 2.0 + (smoker == "Y") * 1.0 + x
    return pd.DataFrame(
        {"idp": idp, "smoker": smoker, "x": x, "dose": dose, "risk": np.where(score > 1.5, "high", "low")}
    )


def test_boolean_text_columns_take_the_raw_values_everywhere(rest, client, data_dir):
    frame = _yes_no_frame()
    frame.to_csv(data_dir / "yes_no.csv", index=False)
    model_name = unique_name("automl-yes-no")
    done = _sweep(
        rest, data_dir, "yes_no.csv", 0.15,
        target_col="risk", problem_type="classification", register_model_name=model_name, seed=5,
    )  # fmt: skip
    summary = done["summary"]
    checked = summary["model"]["onnx_vs_native"]
    assert checked["checked_with"].startswith("onnxruntime "), checked
    assert checked["labels_differ"] == 0, checked

    local = Path(mlflow.artifacts.download_artifacts(f"models:/{model_name}/1", dst_path=tempfile.mkdtemp()))
    # The signature takes the text columns as text.
    meta = mlflow.models.Model.load(str(local / "MLmodel"))
    specs = {s.name: s for s in meta.signature.inputs.inputs}
    assert specs["idp"].type == np.dtype("O") and specs["smoker"].type == np.dtype("O"), specs
    assert specs["x"].type == np.dtype("float32"), specs

    # The input example holds rows of the file as written: the words, and 6.907755, not
    # 6.907754898071289.
    example = json.loads((local / "input_example.json").read_text())
    assert example["columns"] == ["idp", "smoker", "x", "dose"], example
    file_rows = {tuple(r) for r in frame[["idp", "smoker", "x", "dose"]].itertuples(index=False)}
    assert example["data"], example
    for row in example["data"]:
        assert tuple(row) in file_rows, (row, example)

    # Only what scoring needs, as ranges: no exact pins, no onnx package.
    requirements = [r.strip() for r in (local / "requirements.txt").read_text().splitlines() if r.strip()]
    assert requirements, requirements
    for r in requirements:
        assert "==" not in r, requirements
        assert not r.startswith("onnx") or r.startswith("onnxruntime"), requirements
    assert any(r.startswith("onnxruntime") for r in requirements), requirements

    native = _native(client, done["parent_run_id"])
    want = native["predictions"]
    rows = pd.DataFrame(native["data"], columns=native["columns"])
    assert set(rows["idp"]) <= {"yes", "no"} and set(rows["smoker"]) <= {"Y", "N"}, rows

    # onnxruntime in Python, fed the raw words.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(local / "model.onnx"), providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in session.get_inputs()}
    assert types == {"idp": "tensor(string)", "smoker": "tensor(string)", "x": "tensor(float)",
                     "dose": "tensor(float)"}, types  # fmt: skip
    feeds = {
        name: rows[[name]].to_numpy(dtype=object if kind == "tensor(string)" else np.float32)
        for name, kind in types.items()
    }
    labels, probabilities = session.run(["label", "probabilities"], feeds)
    _assert_classes_match({"label": labels.tolist(), "probabilities": probabilities.tolist()}, want, "onnxruntime")

    # mlflow.pyfunc on the frame as pandas reads it, with no dependency-mismatch warning (the
    # "mlflow" logger does not propagate, so its records are collected on it).
    warnings_seen: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            warnings_seen.append(record.getMessage())

    collect = _Collect(level=logging.WARNING)
    logging.getLogger("mlflow").addHandler(collect)
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name}/1")
    finally:
        logging.getLogger("mlflow").removeHandler(collect)
    assert not [w for w in warnings_seen if "mismatch" in w.lower()], warnings_seen
    out = pyfunc.predict(rows)
    if isinstance(out, pd.DataFrame):
        out = {c: out[c].tolist() for c in out.columns}
    got_labels = [x.decode() if isinstance(x, bytes) else x for x in np.asarray(out["label"]).reshape(-1).tolist()]
    _assert_classes_match({"label": got_labels, "probabilities": np.asarray(out["probabilities"]).tolist()}, want, "pyfunc")

    # Scoring needs onnxruntime, not the onnx package.
    script = (
        "import sys; sys.modules['onnx'] = None\n"
        "import json, mlflow.pyfunc, numpy as np, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model({str(local)!r})\n"
        f"rows = pd.DataFrame({native['data']!r}, columns={native['columns']!r})\n"
        "labels = np.asarray(m.predict(rows)['label']).reshape(-1).tolist()\n"
        "print(json.dumps([v.decode() if isinstance(v, bytes) else str(v) for v in labels]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [str(v) for v in want["label"]], proc.stdout

    # /invocations of a serving endpoint, given the raw rows.
    served = _serve(rest, _create_endpoint(rest, model_name, "1"), native)
    _assert_classes_match(served, want, "served")
