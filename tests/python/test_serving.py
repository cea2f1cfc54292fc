"""Serving endpoints end to end: ONNX models made with skl2onnx, logged with the stock mlflow
client and registered in ferroflow, served by `/serving-endpoints/{name}/invocations`.

Expected answers come from MLflow itself: the same request through
`mlflow.pyfunc.scoring_server.invocations` on the model loaded back with
`mlflow.pyfunc.load_model` (onnxruntime in Python), compared to 1e-6.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import mlflow
import mlflow.onnx
import numpy as np
import onnx
import pandas as pd
import pytest
from helpers import unique_name
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import scoring_server
from mlflow.types import Schema, TensorSpec
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

IRIS = load_iris()
COLS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X = pd.DataFrame(IRIS.data.astype(np.float32), columns=COLS)
Y = IRIS.target
ROWS = X.iloc[[0, 1, 50, 51, 100, 149]]


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("mlflow server has no serving endpoints")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _onnx(model, zipmap=True):
    options = None if zipmap else {id(model): {"zipmap": False}}
    return convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )


def _register(experiment_id, name, onnx_model, input_example=None, signature=None):
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.onnx.log_model(
            onnx_model,
            name="model",
            registered_model_name=name,
            input_example=input_example,
            signature=signature,
        )
    return info


def _create(rest, name, served, traffic=None):
    config = {"served_models": served}
    if traffic:
        config["traffic_config"] = {"routes": traffic}
    r = rest.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert r.status_code == 200, r.text
    assert r.json()["state"]["ready"] == "READY", r.text
    return r.json()


def _close(got, want, path="predictions"):
    """Recursive equality with floats to 1e-6."""
    if isinstance(want, float) or isinstance(got, float):
        assert abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(float(want))), (path, got, want)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, got, want)
        for k in want:
            _close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, f"{path}[{i}]")
    else:
        assert got == want, (path, got, want)


def _mlflow_scoring(model_uri, content_type, body):
    """(status, JSON body) of MLflow's own scoring server for this request."""
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    try:
        result = scoring_server.invocations(
            body, content_type, pyfunc, pyfunc.metadata.get_input_schema()
        )
    except MlflowException as e:
        return e.get_http_status_code(), json.loads(e.serialize_as_json())
    return result.status, json.loads(result.response)


def _mlflow_answer(model_uri, content_type, body):
    status, answer = _mlflow_scoring(model_uri, content_type, body)
    assert status == 200, answer
    return answer


def _formats(df):
    rows = df.to_numpy().tolist()
    records = [dict(zip(df.columns, r)) for r in rows]
    return {
        "dataframe_split": ("application/json", {"dataframe_split": {"columns": list(df.columns), "data": rows}}),
        "dataframe_records": ("application/json", {"dataframe_records": records}),
        # A single-input graph takes a 2-D array (a dict of columns would feed inputs by
        # name, which MLflow's onnx flavor refuses too).
        "instances": ("application/json", {"instances": rows}),
        "inputs": ("application/json", {"inputs": rows}),
        "csv": ("text/csv", df.to_csv(index=False)),
    }


@pytest.fixture(scope="module")
def iris_models(client):
    """LR (ZipMap), RF without ZipMap, an MLP and a string-label LR, each registered."""
    experiment_id = client.create_experiment(unique_name("serving"))
    made = {
        "lr": _onnx(LogisticRegression(max_iter=500).fit(X, Y)),
        "rf": _onnx(RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y), zipmap=False),
        "rf_zipmap": _onnx(RandomForestClassifier(n_estimators=10, random_state=1).fit(X, Y)),
        "mlp": _onnx(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, Y), zipmap=False),
        "labels": _onnx(LogisticRegression(max_iter=500).fit(X, IRIS.target_names[Y])),
    }
    names = {}
    for key, model in made.items():
        name = unique_name(f"iris-{key}")
        # The LR carries a column signature (schema enforcement); the others none.
        signature = infer_signature(X) if key == "lr" else None
        _register(experiment_id, name, model, input_example=X.iloc[:3], signature=signature)
        names[key] = name
    return experiment_id, names


@pytest.mark.parametrize("kind", ["lr", "rf", "rf_zipmap", "mlp", "labels"])
def test_every_input_format_matches_mlflow_scoring(rest, iris_models, kind):
    _, names = iris_models
    name = names[kind]
    endpoint = unique_name("ep")
    _create(rest, endpoint, [{"model_name": name, "model_version": "1"}])
    ok = 0
    for fmt, (content_type, body) in _formats(ROWS).items():
        text = body if isinstance(body, str) else json.dumps(body)
        r = rest.post(
            f"/serving-endpoints/{endpoint}/invocations",
            content=text,
            headers={"Content-Type": content_type},
        )
        status, want = _mlflow_scoring(f"models:/{name}/1", content_type, text)
        # MLflow cannot put a 2-D output (no ZipMap) in a DataFrame column: same 400 here.
        assert r.status_code == status, (fmt, r.text, want)
        if status == 200:
            assert r.headers["served-model-version"] == "1"
            _close(r.json(), want, f"{kind}/{fmt}")
        else:
            assert r.json()["error_code"] == want["error_code"], (fmt, r.text, want)
        ok += status == 200
    # At least the tensor formats work for every model.
    assert ok >= 2


def test_two_input_model_and_v2_infer(rest, client):
    experiment_id = client.create_experiment(unique_name("serving"))
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "two", [a, b], [s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sig = ModelSignature(inputs=Schema([
        TensorSpec(np.dtype(np.float32), (-1, 2), "a"),
        TensorSpec(np.dtype(np.float32), (-1, 2), "b"),
    ]))
    name = unique_name("two")
    _register(experiment_id, name, model, signature=sig)
    endpoint = unique_name("ep")
    _create(rest, endpoint, [{"model_name": name, "model_version": 1}])
    A = [[1.5, 2.25], [-3.0, 0.1]]
    B = [[0.5, 4.0], [2.0, 0.3]]
    body = json.dumps({"inputs": {"a": A, "b": B}})
    r = rest.post(f"/serving-endpoints/{endpoint}/invocations", content=body,
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    _close(r.json(), _mlflow_answer(f"models:/{name}/1", "application/json", body))

    meta = rest.get(f"/v2/models/{endpoint}").json()
    assert {i["name"] for i in meta["inputs"]} == {"a", "b"}
    assert meta["versions"] == ["1"]
    v2 = rest.post(f"/v2/models/{endpoint}/infer", json={
        "id": "req-1",
        "inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": sum(A, [])},
            {"name": "b", "shape": [2, 2], "datatype": "FP32", "data": sum(B, [])},
        ],
    })
    assert v2.status_code == 200, v2.text
    out = v2.json()
    assert out["id"] == "req-1" and out["model_version"] == "1"
    (summed,) = out["outputs"]
    assert summed["name"] == "sum" and summed["shape"] == [2, 2]
    _close(summed["data"], np.add(A, B).astype(np.float32).ravel().astype(float).tolist())
    bad = rest.post(f"/v2/models/{endpoint}/infer", json={
        "inputs": [{"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1.0]}],
    })
    assert bad.status_code == 400
    assert rest.get("/v2/health/live").json() == {"live": True}


def test_bad_payloads_get_400_naming_the_problem(rest, iris_models):
    _, names = iris_models
    endpoint = unique_name("ep")
    _create(rest, endpoint, [{"model_name": names["lr"], "model_version": "1"}])
    url = f"/serving-endpoints/{endpoint}/invocations"
    cases = [
        ({"dataframe_split": {"columns": ["sepal_length"], "data": [[1.0]]}}, "petal_width"),
        ({"dataframe_records": [{"sepal_length": "x", "sepal_width": 1, "petal_length": 1, "petal_width": 1}]}, "sepal_length"),
        ({"instances": [[1.0, 2.0]], "inputs": [[1.0]]}, "instances"),
        ({"inputs": [[1.0, 2.0]]}, "sepal_length"),
        ({"nothing": 1}, "dataframe_split"),
    ]
    for body, named in cases:
        r = rest.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert named in r.json()["message"], (body, r.json())
    assert rest.post(url, content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert rest.post(url, content=b"x", headers={"Content-Type": "application/xml"}).status_code == 415
    assert rest.post("/serving-endpoints/nope/invocations", json={"inputs": []}).status_code == 404


def test_endpoint_crud_and_config_errors(rest, iris_models):
    _, names = iris_models
    endpoint = unique_name("ep")
    made = _create(rest, endpoint, [{"name": "main", "model_name": names["lr"], "model_version": "1"}])
    assert made["config"]["served_models"][0]["served_version"] == "1"
    assert made["config"]["traffic_config"]["routes"] == [{"served_model_name": "main", "traffic_percentage": 100}]
    dup = rest.post("/api/2.0/serving-endpoints", json={"name": endpoint, "config": {"served_models": [{"model_name": names["lr"], "model_version": "1"}]}})
    assert dup.status_code == 400 and dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    for config, code, status in [
        ({"served_models": [{"model_name": "no-such-model", "model_version": "1"}]}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"served_models": [{"model_name": names["lr"], "model_version": "9"}]}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"served_models": [{"model_name": names["lr"]}]}, "INVALID_PARAMETER_VALUE", 400),
        ({"served_models": [{"name": "a", "model_name": names["lr"], "model_version": "1"},
                            {"name": "b", "model_name": names["rf"], "model_version": "1"}],
          "traffic_config": {"routes": [{"served_model_name": "a", "traffic_percentage": 70}]}},
         "INVALID_PARAMETER_VALUE", 400),
    ]:
        name = unique_name("bad")
        r = rest.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert r.status_code == status and r.json()["error_code"] == code, (config, r.text)
        assert rest.get(f"/api/2.0/serving-endpoints/{name}").status_code == 404
    assert any(e["name"] == endpoint for e in rest.get("/api/2.0/serving-endpoints").json()["endpoints"])
    upd = rest.put(f"/api/2.0/serving-endpoints/{endpoint}/config",
                   json={"served_models": [{"name": "main", "model_name": names["rf"], "model_version": "1"}]})
    assert upd.status_code == 200, upd.text
    assert upd.json()["config"]["served_models"][0]["model_name"] == names["rf"]
    assert rest.delete(f"/api/2.0/serving-endpoints/{endpoint}").json() == {}
    assert rest.get(f"/api/2.0/serving-endpoints/{endpoint}").status_code == 404


def test_traffic_split_90_10_over_2000_requests(rest, iris_models):
    _, names = iris_models
    endpoint = unique_name("ep")
    _create(
        rest,
        endpoint,
        [
            {"name": "main", "model_name": names["lr"], "model_version": "1"},
            {"name": "canary", "model_name": names["rf_zipmap"], "model_version": "1"},
        ],
        traffic=[
            {"served_model_name": "main", "traffic_percentage": 90},
            {"served_model_name": "canary", "traffic_percentage": 10},
        ],
    )
    body = json.dumps(_formats(ROWS.iloc[:1])["dataframe_split"][1])
    counts = {"main": 0, "canary": 0}
    for _ in range(2000):
        r = rest.post(f"/serving-endpoints/{endpoint}/invocations", content=body,
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        counts[r.headers["served-model-name"]] += 1
    share = counts["main"] / 2000
    assert 0.85 <= share <= 0.95, counts


class _Load:
    """Four clients calling an endpoint without pause; every answer's served version is kept
    in order, every non-200 answer or transport error is a failure."""

    def __init__(self, tracking_uri, endpoint, clients=4):
        self.endpoint, self.clients = endpoint, clients
        self.body = json.dumps(_formats(ROWS.iloc[:2])["inputs"][1])
        self.stop = threading.Event()
        self.seen, self.failures = [], []
        self.threads = [threading.Thread(target=self._run, args=(tracking_uri,)) for _ in range(clients)]

    def _run(self, tracking_uri):
        with httpx.Client(base_url=tracking_uri, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    r = c.post(f"/serving-endpoints/{self.endpoint}/invocations", content=self.body,
                               headers={"Content-Type": "application/json"})
                except httpx.HTTPError as exc:  # a transport failure is a failed request too
                    self.failures.append(repr(exc))
                    return
                if r.status_code != 200:
                    self.failures.append((r.status_code, r.text))
                else:
                    self.seen.append(r.headers["served-model-version"])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def wait_for(self, condition, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline and not condition() and not self.failures:
            time.sleep(0.05)

    def answers_after_first(self, version):
        seen = list(self.seen)
        return len(seen) - seen.index(version) - 1 if version in seen else 0


def _flip_under_load(tracking_uri, endpoint, old, new, flip):
    """Moves the endpoint from version `old` to `new` by calling `flip` while four clients
    call it; asserts that no request failed and that the switch is clean and stays."""
    with _Load(tracking_uri, endpoint) as load:
        # Flip only once the old version is demonstrably serving under load.
        load.wait_for(lambda: old in load.seen)
        flip()
        # Then keep the load on until enough answers came after the flip to judge it.
        load.wait_for(lambda: load.answers_after_first(new) >= 30)
    seen = load.seen
    assert load.failures == []
    assert old in seen and seen[-1] == new, seen[-5:]
    # Once flipped, it stays flipped: only requests already running (one per client
    # thread) may still answer from the old version after the first answer from the new.
    assert seen[seen.index(new):].count(old) <= load.clients, seen
    assert set(seen[-20:]) == {new}
    return seen


def _two_versions(client, name):
    experiment_id = client.create_experiment(unique_name("serving"))
    _register(experiment_id, name, _onnx(LogisticRegression(max_iter=500).fit(X, Y)), input_example=X.iloc[:3])
    _register(experiment_id, name, _onnx(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y), zipmap=False), input_example=X.iloc[:3])
    return experiment_id


def _served(rest, endpoint):
    state = rest.get(f"/api/2.0/serving-endpoints/{endpoint}").json()
    return state, state["config"]["served_models"][0]


def test_promotion_under_load_flips_with_zero_failed_requests(rest, client, tracking_uri):
    name = unique_name("promo")
    _two_versions(client, name)
    client.transition_model_version_stage(name, "1", "Production")
    endpoint = unique_name("ep")
    _create(rest, endpoint, [{"model_name": name, "model_version": "Production"}])
    _flip_under_load(
        tracking_uri, endpoint, "1", "2",
        lambda: client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True),
    )
    _, served = _served(rest, endpoint)
    assert served["served_version"] == "2"
    assert 'ferroflow_serving_requests_total{endpoint="' + endpoint in rest.get("/metrics").text


def test_endpoint_following_an_alias_moves_with_it_under_load(rest, client, tracking_uri):
    name = unique_name("alias")
    _two_versions(client, name)
    client.set_registered_model_alias(name, "champion", "1")
    endpoint = unique_name("ep")
    made = _create(rest, endpoint, [{"model_name": name, "model_alias": "champion"}])
    assert made["config"]["served_models"][0]["served_version"] == "1"
    _flip_under_load(
        tracking_uri, endpoint, "1", "2",
        lambda: client.set_registered_model_alias(name, "champion", "2"),
    )
    state, served = _served(rest, endpoint)
    assert served["served_version"] == "2" and served["model_alias"] == "champion"
    assert state["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    # Moving the alias back moves the endpoint back.
    _flip_under_load(
        tracking_uri, endpoint, "2", "1",
        lambda: client.set_registered_model_alias(name, "champion", "1"),
    )


def test_endpoint_following_latest_serves_each_new_version(rest, client, tracking_uri):
    name = unique_name("latest")
    experiment_id = _two_versions(client, name)
    endpoint = unique_name("ep")
    made = _create(rest, endpoint, [{"model_name": name, "model_version": "latest"}])
    assert made["config"]["served_models"][0]["served_version"] == "2"
    _flip_under_load(
        tracking_uri, endpoint, "2", "3",
        lambda: _register(experiment_id, name, _onnx(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, Y), zipmap=False), input_example=X.iloc[:3]),
    )


def _broken_version(client, name, experiment_id, tmp_path):
    """A new version of `name` whose MLmodel is an ONNX model's but whose model.onnx is not an
    ONNX graph: it registers fine and cannot be loaded."""
    good = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "good")))
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in good.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(broken), artifact_path="model")
    return client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    ).version


def test_a_version_that_cannot_load_leaves_the_old_one_serving(rest, client, tracking_uri, tmp_path):
    name = unique_name("broken")
    experiment_id = _two_versions(client, name)
    bad = _broken_version(client, name, experiment_id, tmp_path)
    assert bad == "3"
    client.set_registered_model_alias(name, "champion", "1")
    endpoint = unique_name("ep")
    _create(rest, endpoint, [{"model_name": name, "model_alias": "champion"}])
    with _Load(tracking_uri, endpoint) as load:
        load.wait_for(lambda: "1" in load.seen)
        client.set_registered_model_alias(name, "champion", bad)
        load.wait_for(lambda: _served(rest, endpoint)[0]["state"]["config_update"] == "UPDATE_FAILED")
        # Keep calling a while after the failed load: still version 1, nothing failed.
        mark = len(load.seen)
        load.wait_for(lambda: len(load.seen) >= mark + 50)
    assert load.failures == []
    assert set(load.seen) == {"1"}
    state, served = _served(rest, endpoint)
    assert state["state"] == {"ready": "READY", "config_update": "UPDATE_FAILED"}, state
    assert served["served_version"] == "1"
    assert served["state"]["deployment"] == "DEPLOYMENT_READY"
    message = served["state"]["deployment_state_message"]
    assert message.startswith("version 3 could not be loaded, version 1 keeps serving: "), message
    r = rest.post(f"/serving-endpoints/{endpoint}/invocations", content=load.body,
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers["served-model-version"] == "1"
    # The registry moving on to a good version clears the failure.
    _flip_under_load(
        tracking_uri, endpoint, "1", "2",
        lambda: client.set_registered_model_alias(name, "champion", "2"),
    )
    state, served = _served(rest, endpoint)
    assert state["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert served["state"] == {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary():
    root = Path(__file__).resolve().parents[2]
    return os.environ.get("FERROFLOW_BIN", str(root / "target/debug/ferroflow"))


def _wait(url, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_models_serve_standalone(iris_models, tracking_uri, server_kind):
    if server_kind != "ferroflow":
        pytest.skip("needs the ferroflow binary")
    _, names = iris_models
    port = _free_port()
    proc = subprocess.Popen(
        [_binary(), "models", "serve", "-m", f"models:/{names['mlp']}/1", "-p", str(port)],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
        content_type, body = _formats(ROWS)["inputs"]
        text = json.dumps(body)
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", content=text,
                       headers={"Content-Type": content_type}, timeout=30)
        assert r.status_code == 200, r.text
        _close(r.json(), _mlflow_answer(f"models:/{names['mlp']}/1", content_type, text))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_missing_onnxruntime_gives_503_not_a_crash(tmp_path, iris_models, tracking_uri, server_kind):
    if server_kind != "ferroflow" or os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI"):
        pytest.skip("starts its own ferroflow on SQLite")
    port = _free_port()
    env = {**os.environ, "ORT_DYLIB_PATH": str(tmp_path / "missing.so")}
    env.pop("FERROFLOW_ONNXRUNTIME_LIB", None)
    proc = subprocess.Popen(
        [_binary(), "server", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/db.sqlite",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/health", proc)
        # A model to point at, registered on this server.
        mlflow.set_tracking_uri(base)
        try:
            exp = mlflow.create_experiment(unique_name("ort"))
            _register(exp, "m", _onnx(LogisticRegression(max_iter=200).fit(X, Y)), input_example=X.iloc[:2])
        finally:
            mlflow.set_tracking_uri(tracking_uri)
        r = httpx.post(f"{base}/api/2.0/serving-endpoints", json={
            "name": "ep", "config": {"served_models": [{"model_name": "m", "model_version": "1"}]}}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["state"]["ready"] == "NOT_READY"
        inv = httpx.post(f"{base}/serving-endpoints/ep/invocations", json={"inputs": [[1, 2, 3, 4]]}, timeout=30)
        assert inv.status_code == 503
        assert "scripts/onnxruntime.sh" in inv.json()["message"]
        # "Not ready" is a 4xx in the Open Inference Protocol (Triton: 400).
        assert httpx.get(f"{base}/v2/health/ready", timeout=30).status_code == 400
        assert httpx.get(f"{base}/health", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _logged(rest, endpoint, at_least, timeout=20):
    """The endpoint's inference log as a DataFrame, once it holds `at_least` rows (bounded poll)."""
    import tempfile

    import mlflow.artifacts

    location = rest.get(f"/api/2.0/serving-endpoints/{endpoint}").json()["config"][
        "auto_capture_config"
    ]["location"]
    rel = location.split("mlflow-artifacts:/", 1)[1]
    deadline = time.time() + timeout
    while True:
        files = rest.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": rel}).json()
        if files.get("files"):
            dst = tempfile.mkdtemp()
            local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=dst)
            frame = pd.read_parquet(local)
            if len(frame) >= at_least or time.time() > deadline:
                return frame
        elif time.time() > deadline:
            return pd.DataFrame()
        time.sleep(0.1)


def test_inference_log_is_a_parquet_table_of_requests_and_answers(rest, iris_models):
    _, names = iris_models
    endpoint = unique_name("ep")
    r = rest.post("/api/2.0/serving-endpoints", json={"name": endpoint, "config": {
        "served_models": [{"model_name": names["rf_zipmap"], "model_version": "1"}],
        "auto_capture_config": {"enabled": True, "flush_interval_ms": 200},
    }})
    assert r.status_code == 200, r.text
    url = f"/serving-endpoints/{endpoint}/invocations"
    body = json.dumps(_formats(ROWS.iloc[:2])["dataframe_split"][1])
    answers = []
    for _ in range(25):
        ok = rest.post(url, content=body, headers={"Content-Type": "application/json"})
        assert ok.status_code == 200
        answers.append(ok.json())
    assert rest.post(url, json={"nothing": 1}).status_code == 400
    log = _logged(rest, endpoint, 26)
    assert len(log) == 26, log
    assert set(log.columns) >= {"request_id", "timestamp_ms", "latency_us", "status_code",
                                "served_model", "served_version", "request", "response"}
    assert sorted(log["status_code"].tolist()) == [200] * 25 + [400]
    assert set(log["served_version"]) == {"1"} and log["request_id"].is_unique
    ok_rows = log[log["status_code"] == 200]
    assert all(json.loads(t) == json.loads(body) for t in ok_rows["request"])
    assert json.loads(ok_rows["response"].iloc[0]) == answers[0]
    assert (log["latency_us"] > 0).all()
    bad = log[log["status_code"] == 400]["response"].iloc[0]
    assert json.loads(bad)["error_code"] == "BAD_REQUEST"


def test_inference_log_samples_the_configured_fraction(rest, iris_models):
    _, names = iris_models
    endpoint = unique_name("ep")
    r = rest.post("/api/2.0/serving-endpoints", json={"name": endpoint, "config": {
        "served_models": [{"model_name": names["lr"], "model_version": "1"}],
        "auto_capture_config": {"enabled": True, "sample_rate": 0.2, "flush_interval_ms": 200},
    }})
    assert r.status_code == 200, r.text
    body = json.dumps(_formats(ROWS.iloc[:1])["dataframe_split"][1])
    for _ in range(500):
        assert rest.post(f"/serving-endpoints/{endpoint}/invocations", content=body,
                         headers={"Content-Type": "application/json"}).status_code == 200
    log = _logged(rest, endpoint, 60, timeout=30)
    assert 60 <= len(log) <= 140, len(log)  # 100 expected; ±4 standard deviations
    bad = rest.post("/api/2.0/serving-endpoints", json={"name": unique_name("ep"), "config": {
        "served_models": [{"model_name": names["lr"], "model_version": "1"}],
        "auto_capture_config": {"enabled": True, "sample_rate": 2},
    }})
    assert bad.status_code == 400 and "sample_rate" in bad.json()["message"]


def _start(tmp_path, port, **env):
    proc = subprocess.Popen(
        [_binary(), "server", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path}/db.sqlite",
         "--artifacts-destination", str(tmp_path / "artifacts"),
         "--serving-poll-ms", "100"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    _wait(f"http://127.0.0.1:{port}/health", proc)
    return proc


def _until(check, timeout=15):
    """Polls `check` (bounded) until it returns a truthy value; an HTTP error counts as "not yet"."""
    deadline = time.time() + timeout
    last_error = None
    while time.time() < deadline:
        try:
            got = check()
        except httpx.HTTPError as exc:
            last_error = exc
        else:
            if got:
                return got
        time.sleep(0.05)
    raise AssertionError(f"condition not met in time (last HTTP error: {last_error!r})")


def test_replicas_sharing_a_store_see_each_others_endpoints(tmp_path, tracking_uri, server_kind):
    if server_kind != "ferroflow" or os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI"):
        pytest.skip("starts two ferroflow replicas on one SQLite file")
    a_port, b_port = _free_port(), _free_port()
    a = _start(tmp_path, a_port)
    b = _start(tmp_path, b_port)
    a_url, b_url = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"
    try:
        mlflow.set_tracking_uri(a_url)
        try:
            exp = mlflow.create_experiment(unique_name("replicas"))
            _register(exp, "m", _onnx(LogisticRegression(max_iter=200).fit(X, Y)), input_example=X.iloc[:2])
            _register(exp, "m", _onnx(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)), input_example=X.iloc[:2])
        finally:
            mlflow.set_tracking_uri(tracking_uri)
        made = httpx.post(f"{a_url}/api/2.0/serving-endpoints", json={
            "name": "shared", "config": {"served_models": [{"model_name": "m", "model_version": "1"}]}},
            timeout=30)
        assert made.status_code == 200, made.text
        body = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
        # Replica B picks the endpoint up from the store and serves it.
        r = _until(lambda: (x := httpx.post(f"{b_url}/serving-endpoints/shared/invocations", json=body, timeout=30)).status_code == 200 and x)
        assert r.headers["served-model-version"] == "1"
        # A config change on A reaches B.
        upd = httpx.put(f"{a_url}/api/2.0/serving-endpoints/shared/config",
                        json={"served_models": [{"model_name": "m", "model_version": "2"}]}, timeout=30)
        assert upd.status_code == 200, upd.text
        _until(lambda: httpx.post(f"{b_url}/serving-endpoints/shared/invocations", json=body, timeout=30)
               .headers.get("served-model-version") == "2")
        # A delete on A removes it from B.
        assert httpx.delete(f"{a_url}/api/2.0/serving-endpoints/shared", timeout=30).status_code == 200
        _until(lambda: httpx.get(f"{b_url}/api/2.0/serving-endpoints/shared", timeout=30).status_code == 404)
    finally:
        for p in (a, b):
            p.terminate()
            p.wait(timeout=10)
