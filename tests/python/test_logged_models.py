"""MLflow 3 logged models end to end: mlflow.sklearn.log_model with registered_model_name,
pyfunc.load_model through models:/name/version, models:/name@alias and runs:/ URIs, stage
transitions over log_model versions, and mlflow.search_logged_models."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pytest
from helpers import unique_name
from sklearn.linear_model import LinearRegression


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fit(seed: int) -> tuple[LinearRegression, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + seed
    return LinearRegression().fit(x, y), x[:7]


def _log(experiment_id: str, name: str, seed: int):
    model, x = _fit(seed)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("seed", seed)
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, input_example=x[:2]
        )
    return model, x, run.info.run_id, info


def test_log_model_register_and_load_by_every_uri(client, experiment_id):
    name = unique_name("lm")
    model, x, run_id, info = _log(experiment_id, name, 1)
    expected = model.predict(x)
    assert info.model_id.startswith("m-")
    assert str(info.registered_model_version) == "1"

    client.set_registered_model_alias(name, "champion", "1")
    for uri in (f"models:/{name}/1", f"models:/{name}@champion", f"runs:/{run_id}/model",
                f"models:/{info.model_id}"):
        got = mlflow.pyfunc.load_model(uri).predict(x)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)

    lm = client.get_logged_model(info.model_id)
    assert lm.name == "model"
    assert lm.source_run_id == run_id
    assert str(lm.status) in ("READY", "LoggedModelStatus.READY")
    assert lm.artifact_location.endswith(f"/models/{info.model_id}/artifacts")

    mv = client.get_model_version(name, "1")
    assert mv.run_id == run_id
    assert info.model_id in mv.source


def test_stage_transitions_over_logged_versions(client, experiment_id):
    name = unique_name("lm")
    _log(experiment_id, name, 1)
    model2, x, _, _ = _log(experiment_id, name, 2)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Production"
    got = mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(x)
    np.testing.assert_allclose(np.asarray(got), model2.predict(x), rtol=1e-12, atol=1e-12)


def test_search_logged_models(client, experiment_id):
    name = unique_name("lm")
    _, _, _, a = _log(experiment_id, name, 1)
    _, _, _, b = _log(experiment_id, name, 2)
    models = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert {m.model_id for m in models} == {a.model_id, b.model_id}
    # Newest first by default.
    assert [m.model_id for m in models] == [b.model_id, a.model_id]
    one = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        filter_string=f"model_id = '{a.model_id}'",
        output_format="list",
    )
    assert [m.model_id for m in one] == [a.model_id]
    asc = mlflow.search_logged_models(
        experiment_ids=[experiment_id],
        order_by=[{"field_name": "creation_timestamp", "ascending": True}],
        output_format="list",
    )
    assert [m.model_id for m in asc] == [a.model_id, b.model_id]
    page = client.search_logged_models(experiment_ids=[experiment_id], max_results=1)
    assert len(page) == 1 and page.token


def test_onnx_log_model_registers_and_loads_with_onnxruntime_predictions(client, experiment_id):
    import onnxruntime
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(clf, x[:1], options={"zipmap": False})
    name = unique_name("onnx-iris")
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.onnx.log_model(onx, name="model", registered_model_name=name)
    version = client.get_latest_versions(name)[0].version
    client.set_registered_model_alias(name, "champion", version)

    session = onnxruntime.InferenceSession(onx.SerializeToString())
    input_name = session.get_inputs()[0].name
    expected_labels, expected_proba = session.run(None, {input_name: x[:10]})
    for uri in (f"models:/{name}/{version}", f"models:/{name}@champion"):
        loaded = mlflow.pyfunc.load_model(uri)
        # A tensor input gets the graph's outputs back by name.
        out = loaded.predict(x[:10])
        assert np.asarray(out["label"]).tolist() == expected_labels.tolist(), uri
        assert np.allclose(np.asarray(out["probabilities"]), expected_proba, atol=1e-6), uri


def test_model_metrics_are_recorded_filtered_and_ordered(client, experiment_id):
    name = unique_name("lm")
    _, x, run_a, a = _log(experiment_id, name, 1)
    _, _, run_b, b = _log(experiment_id, name, 2)
    _, _, _, c = _log(experiment_id, name, 3)  # no model metrics
    holdout = mlflow.data.from_numpy(x, name="holdout")
    with mlflow.start_run(run_id=run_a):
        mlflow.log_metric("rmse", 0.9, step=0, model_id=a.model_id, dataset=holdout)
        mlflow.log_metric("rmse", 0.5, step=1, model_id=a.model_id, dataset=holdout)
    with mlflow.start_run(run_id=run_b):
        mlflow.log_metrics({"rmse": 0.7, "r2": 0.8}, model_id=b.model_id)

    got = client.get_logged_model(a.model_id)
    assert sorted((m.key, m.step, m.value) for m in got.metrics) == [
        ("rmse", 0, 0.9),
        ("rmse", 1, 0.5),
    ]
    assert {(m.run_id, m.model_id, m.dataset_name, m.dataset_digest) for m in got.metrics} == {
        (run_a, a.model_id, "holdout", holdout.digest)
    }
    # The run keeps its own history too.
    assert client.get_run(run_a).data.metrics["rmse"] == 0.5
    assert {m.key for m in client.get_logged_model(b.model_id).metrics} == {"rmse", "r2"}

    def ids(**kw):
        found = mlflow.search_logged_models(
            experiment_ids=[experiment_id], output_format="list", **kw
        )
        return [m.model_id for m in found]

    # Some point matches.
    assert ids(filter_string="metrics.rmse < 0.6") == [a.model_id]
    assert set(ids(filter_string="metrics.rmse >= 0.7")) == {a.model_id, b.model_id}
    assert ids(filter_string="metrics.r2 > 0.5 AND metrics.rmse < 0.8") == [b.model_id]
    # Latest value per model, nulls (no such metric) last.
    assert ids(order_by=[{"field_name": "metrics.rmse", "ascending": True}]) == [
        a.model_id,
        b.model_id,
        c.model_id,
    ]
    assert ids(order_by=[{"field_name": "metrics.rmse", "ascending": False}]) == [
        b.model_id,
        a.model_id,
        c.model_id,
    ]
    # Datasets narrow metric filters, and alone select models with metrics on them.
    assert ids(datasets=[{"dataset_name": "holdout"}]) == [a.model_id]
    assert ids(filter_string="metrics.rmse > 0.1", datasets=[{"dataset_name": "other"}]) == []
    assert ids(
        datasets=[{"dataset_name": "holdout", "dataset_digest": holdout.digest}],
        filter_string="metrics.rmse > 0.8",
    ) == [a.model_id]


def test_model_metric_for_unknown_model_is_refused_and_writes_nothing(client, experiment_id):
    run = client.create_run(experiment_id)
    with pytest.raises(mlflow.exceptions.MlflowException) as e:
        client.log_metric(run.info.run_id, "acc", 0.5, model_id="m-0000000000000000")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_run(run.info.run_id).data.metrics == {}


def test_logged_model_artifact_listing_and_file(rest, client, experiment_id):
    _, _, _, info = _log(experiment_id, unique_name("lm"), 4)
    r = rest.get(f"/api/2.0/mlflow/logged-models/{info.model_id}/artifacts/directories")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["root_uri"] == client.get_logged_model(info.model_id).artifact_location
    paths = {f["path"]: f for f in body["files"]}
    assert "MLmodel" in paths and paths["MLmodel"]["is_dir"] is False
    f = rest.get(
        f"/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts/files",
        params={"artifact_file_path": "MLmodel"},
    )
    assert f.status_code == 200 and b"flavors" in f.content
    missing = rest.get(f"/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts/files")
    assert missing.status_code == 400 and missing.json()["error_code"] == "BAD_REQUEST"
    unknown = rest.get("/api/2.0/mlflow/logged-models/m-404/artifacts/directories")
    assert unknown.status_code == 404
    bad = rest.get(
        f"/api/2.0/mlflow/logged-models/{info.model_id}/artifacts/directories",
        params={"artifact_directory_path": "../x"},
    )
    assert bad.status_code == 400
