"""Run lifecycle and logging: fluent API, MlflowClient, and the wire format of values."""

from __future__ import annotations

import math
import re
import time

import mlflow
import pandas as pd
import pytest
from helpers import error_body, raises_mlflow_error, unique_name
from mlflow.entities import LifecycleStage, Metric, Param, RunTag

MAX_DOUBLE = 1.7976931348623157e308


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


# --------------------------------------------------------------------------- fluent API


def test_fluent_run_logs_params_metrics_and_tags_that_get_run_returns(client):
    name = unique_name("fluent")
    exp = mlflow.set_experiment(name)
    assert client.get_experiment_by_name(name).experiment_id == exp.experiment_id
    with mlflow.start_run(run_name="fluent-run") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"optimizer": "adam", "layers": 3})
        mlflow.log_metric("loss", 0.5)
        mlflow.log_metrics({"acc": 0.75, "f1": 0.6})
        mlflow.set_tag("team", "core")
        mlflow.set_tags({"stage": "dev", "owner": "ann"})
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.experiment_id == exp.experiment_id
    assert fetched.info.run_name == "fluent-run"
    assert fetched.data.params == {"lr": "0.01", "optimizer": "adam", "layers": "3"}
    assert fetched.data.metrics == {"loss": 0.5, "acc": 0.75, "f1": 0.6}
    tags = fetched.data.tags
    assert tags["team"] == "core" and tags["stage"] == "dev" and tags["owner"] == "ann"
    assert tags["mlflow.runName"] == "fluent-run"
    # The fluent client adds its own system tags; the server must keep them verbatim.
    assert "mlflow.user" in tags and "mlflow.source.type" in tags


def test_set_experiment_reuses_an_existing_experiment(client):
    name = unique_name("reuse")
    exp_id = client.create_experiment(name)
    assert mlflow.set_experiment(name).experiment_id == exp_id
    assert mlflow.set_experiment(experiment_id=exp_id).name == name


def test_end_run_marks_run_finished_with_end_time(client):
    mlflow.set_experiment(unique_name("end"))
    run = mlflow.start_run()
    run_id = run.info.run_id
    assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(run_id).info.end_time is None
    before = _now_ms()
    mlflow.end_run()
    info = client.get_run(run_id).info
    assert info.status == "FINISHED"
    assert info.end_time is not None
    assert info.start_time <= info.end_time
    assert before - 5000 <= info.end_time <= _now_ms() + 5000


def test_end_run_with_failed_status_is_recorded(client):
    mlflow.set_experiment(unique_name("failed"))
    run = mlflow.start_run()
    mlflow.end_run(status="FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_exception_inside_start_run_context_marks_run_failed(client):
    mlflow.set_experiment(unique_name("boom"))
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            raise RuntimeError("boom")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_nested_run_records_parent_run_id_tag(client):
    mlflow.set_experiment(unique_name("nested"))
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child_run.info.run_name == "child"
    assert "mlflow.parentRunId" not in client.get_run(parent.info.run_id).data.tags
    assert client.get_run(child.info.run_id).info.status == "FINISHED"
    found = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]


# --------------------------------------------------------------------------- run info / naming


def test_create_run_without_name_gets_a_generated_name_mirrored_in_tag(client, experiment_id):
    run = client.create_run(experiment_id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", run.info.run_name), run.info.run_name
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_name == run.info.run_name
    assert fetched.data.tags["mlflow.runName"] == run.info.run_name


def test_create_run_fills_in_run_info_fields(client, experiment_id):
    before = _now_ms()
    run = client.create_run(experiment_id, run_name="info-check", tags={"k": "v"})
    info = client.get_run(run.info.run_id).info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.experiment_id == experiment_id
    assert info.status == "RUNNING"
    assert info.lifecycle_stage == LifecycleStage.ACTIVE
    assert before - 5000 <= info.start_time <= _now_ms() + 5000
    assert info.end_time is None
    assert info.artifact_uri and info.run_id in info.artifact_uri
    assert client.get_run(run.info.run_id).data.tags == {"k": "v", "mlflow.runName": "info-check"}


def test_update_run_renames_the_run_and_its_run_name_tag(client, run_id):
    client.update_run(run_id, name="renamed")
    run = client.get_run(run_id)
    assert run.info.run_name == "renamed"
    assert run.data.tags["mlflow.runName"] == "renamed"


def test_setting_the_run_name_tag_renames_the_run(client, run_id):
    client.set_tag(run_id, "mlflow.runName", "via-tag")
    assert client.get_run(run_id).info.run_name == "via-tag"


def test_set_terminated_sets_status_and_end_time(client, run_id):
    client.set_terminated(run_id, status="KILLED", end_time=1_700_000_000_000)
    info = client.get_run(run_id).info
    assert info.status == "KILLED"
    assert info.end_time == 1_700_000_000_000


def test_get_run_with_unknown_id_is_resource_does_not_exist(client):
    missing = "0" * 32
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST", match=f"Run with id={missing} not found"):
        client.get_run(missing)


def test_logging_to_unknown_run_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.log_param("f" * 32, "k", "v")


def test_create_run_in_unknown_experiment_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST", match="No Experiment with id=987654321"):
        client.create_run("987654321")


# --------------------------------------------------------------------------- params


def test_param_can_be_relogged_with_the_same_value(client, run_id):
    client.log_param(run_id, "p", "same")
    client.log_param(run_id, "p", "same")
    client.log_batch(run_id, params=[Param("p", "same")])
    assert client.get_run(run_id).data.params == {"p": "same"}


def test_param_cannot_be_changed_once_logged(client, run_id):
    client.log_param(run_id, "p", "first")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Changing param values is not allowed"):
        client.log_param(run_id, "p", "second")
    assert client.get_run(run_id).data.params == {"p": "first"}


def test_param_cannot_be_changed_through_log_batch(client, run_id):
    client.log_param(run_id, "p", "first")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Changing param values is not allowed"):
        client.log_batch(run_id, params=[Param("p", "second")])
    assert client.get_run(run_id).data.params == {"p": "first"}


def test_duplicate_param_keys_in_one_batch_are_rejected(rest, run_id):
    resp = rest.post(
        "/api/2.0/mlflow/runs/log-batch",
        json={"run_id": run_id, "params": [{"key": "d", "value": "1"}, {"key": "d", "value": "1"}]},
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    # MLflow: "Duplicate parameter keys have been submitted: ['d']. Please ensure ..."
    assert "Duplicate parameter keys have been submitted" in body["message"]
    assert "d" in body["message"].split("submitted", 1)[1]


def test_overlong_param_value_is_truncated_to_6000_chars(client, rest, run_id):
    # MLFLOW_TRUNCATE_LONG_VALUES defaults to true on the server.
    resp = rest.post(
        "/api/2.0/mlflow/runs/log-parameter",
        json={"run_id": run_id, "key": "long", "value": "x" * 6001},
    )
    assert resp.status_code == 200, resp.text
    assert client.get_run(run_id).data.params["long"] == "x" * 6000


def test_param_key_that_is_a_path_traversal_is_rejected(rest, run_id):
    resp = rest.post(
        "/api/2.0/mlflow/runs/log-parameter",
        json={"run_id": run_id, "key": "../x", "value": "1"},
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "../x" in body["message"]


# --------------------------------------------------------------------------- tags


def test_set_tag_overwrites_and_delete_tag_removes(client, run_id):
    client.set_tag(run_id, "t", "1")
    client.set_tag(run_id, "t", "2")
    client.set_tag(run_id, "keep", "yes")
    assert client.get_run(run_id).data.tags["t"] == "2"
    client.delete_tag(run_id, "t")
    tags = client.get_run(run_id).data.tags
    assert "t" not in tags
    assert tags["keep"] == "yes"


def test_delete_missing_tag_is_resource_does_not_exist(client, run_id):
    with raises_mlflow_error(
        "RESOURCE_DOES_NOT_EXIST", match=f"No tag with name: nope in run with id {run_id}"
    ):
        client.delete_tag(run_id, "nope")


def test_overlong_tag_value_is_truncated_to_8000_chars(client, rest, run_id):
    resp = rest.post(
        "/api/2.0/mlflow/runs/set-tag",
        json={"run_id": run_id, "key": "long", "value": "y" * 8001},
    )
    assert resp.status_code == 200, resp.text
    assert client.get_run(run_id).data.tags["long"] == "y" * 8000


# --------------------------------------------------------------------------- metrics


def test_metric_with_invalid_name_is_rejected(rest, run_id):
    resp = rest.post(
        "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run_id, "key": "bad!name", "value": 1, "timestamp": 1},
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "Names may only contain alphanumerics" in body["message"]


def test_metric_without_timestamp_is_rejected(rest, run_id):
    resp = rest.post(
        "/api/2.0/mlflow/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1}
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "Missing value for required parameter 'timestamp'" in body["message"]


def test_nan_metric_round_trips_as_nan(client, rest, run_id):
    client.log_metric(run_id, "n", float("nan"), timestamp=10, step=0)
    assert math.isnan(client.get_run(run_id).data.metrics["n"])
    history = client.get_metric_history(run_id, "n")
    assert len(history) == 1 and math.isnan(history[0].value)
    # On the wire NaN is the JSON string "NaN" (protobuf JSON mapping).
    wire = rest.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()
    [metric] = [m for m in wire["run"]["data"]["metrics"] if m["key"] == "n"]
    assert metric["value"] == "NaN"


def test_infinite_metrics_come_back_clamped_to_max_double(client, rest, run_id):
    # The SQL store stores +/-inf as +/-1.7976931348623157e308 and returns that, not inf.
    client.log_metric(run_id, "pinf", float("inf"), timestamp=10, step=0)
    client.log_metric(run_id, "ninf", float("-inf"), timestamp=10, step=0)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["pinf"] == MAX_DOUBLE
    assert metrics["ninf"] == -MAX_DOUBLE
    assert [m.value for m in client.get_metric_history(run_id, "pinf")] == [MAX_DOUBLE]
    wire = rest.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()
    values = {m["key"]: m["value"] for m in wire["run"]["data"]["metrics"]}
    assert values["pinf"] == MAX_DOUBLE and values["ninf"] == -MAX_DOUBLE


def test_metric_values_sent_as_json_strings_nan_and_infinity_are_accepted(client, rest, run_id):
    for key, value in [("s_nan", "NaN"), ("s_inf", "Infinity"), ("s_ninf", "-Infinity")]:
        resp = rest.post(
            "/api/2.0/mlflow/runs/log-metric",
            json={"run_id": run_id, "key": key, "value": value, "timestamp": 1},
        )
        assert resp.status_code == 200, resp.text
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["s_nan"])
    assert metrics["s_inf"] == MAX_DOUBLE
    assert metrics["s_ninf"] == -MAX_DOUBLE


def test_latest_metric_prefers_max_step_then_max_timestamp_then_max_value(client, run_id):
    def log(value, step, ts):
        client.log_metric(run_id, "m", value, timestamp=ts, step=step)
        return client.get_run(run_id).data.metrics["m"]

    assert log(5.0, step=2, ts=100) == 5.0
    # Higher step wins even with an older timestamp and lower value.
    assert log(1.0, step=3, ts=50) == 1.0
    # Lower step loses even with a newer timestamp and higher value.
    assert log(10.0, step=1, ts=1000) == 1.0
    # Same step: newer timestamp wins, even with a lower value.
    assert log(0.5, step=3, ts=60) == 0.5
    # Same step: older timestamp loses.
    assert log(99.0, step=3, ts=55) == 0.5
    # Same step and timestamp: larger value wins.
    assert log(7.0, step=3, ts=60) == 7.0
    assert log(-1.0, step=3, ts=60) == 7.0


def test_metric_history_is_ordered_by_timestamp_then_step_then_value(client, run_id):
    points = [(3.0, 30, 0), (1.0, 10, 2), (2.0, 20, 1), (0.5, 10, 1), (4.0, 10, 1)]
    for value, ts, step in points:
        client.log_metric(run_id, "h", value, timestamp=ts, step=step)
    history = client.get_metric_history(run_id, "h")
    assert [(m.timestamp, m.step, m.value) for m in history] == [
        (10, 1, 0.5),
        (10, 1, 4.0),
        (10, 2, 1.0),
        (20, 1, 2.0),
        (30, 0, 3.0),
    ]
    assert all(m.key == "h" for m in history)


def test_metric_history_of_unlogged_key_is_empty(client, run_id):
    assert list(client.get_metric_history(run_id, "never-logged")) == []


def test_metric_history_pages_over_rest(client, rest, run_id):
    client.log_batch(run_id, metrics=[Metric("p", float(i), 1000 + i, i) for i in range(5)])
    values, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "p", "max_results": 2}
        if token:
            params["page_token"] = token
        resp = rest.get("/api/2.0/mlflow/metrics/get-history", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["metrics"]) <= 2
        values.extend(m["value"] for m in body["metrics"])
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
        assert pages < 10
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert pages == 3


def test_identical_metric_logged_twice_is_stored_once(client, run_id):
    client.log_metric(run_id, "dup", 1.0, timestamp=5, step=1)
    client.log_metric(run_id, "dup", 1.0, timestamp=5, step=1)
    assert len(client.get_metric_history(run_id, "dup")) == 1


# --------------------------------------------------------------------------- log_batch


def test_log_batch_with_1000_metrics_stores_them_all(client, run_id):
    ts = _now_ms()
    metrics = [Metric(f"m{i}", float(i), ts, 0) for i in range(1000)]
    client.log_batch(run_id, metrics=metrics)
    logged = client.get_run(run_id).data.metrics
    assert len(logged) == 1000
    assert logged["m0"] == 0.0 and logged["m999"] == 999.0


def test_log_batch_with_1000_steps_of_one_metric_keeps_full_history(client, run_id):
    metrics = [Metric("curve", i * 0.5, 1000 + i, i) for i in range(1000)]
    client.log_batch(run_id, metrics=metrics)
    history = client.get_metric_history(run_id, "curve")
    assert [m.step for m in history] == list(range(1000))
    assert client.get_run(run_id).data.metrics["curve"] == 999 * 0.5


def test_log_batch_mixing_metrics_params_and_tags_stores_each(client, run_id):
    client.log_batch(
        run_id,
        metrics=[Metric("a", 1.0, 1, 0), Metric("b", 2.0, 1, 0)],
        params=[Param("p1", "x"), Param("p2", "y")],
        tags=[RunTag("t1", "u"), RunTag("t2", "v")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"a": 1.0, "b": 2.0}
    assert run.data.params == {"p1": "x", "p2": "y"}
    assert run.data.tags["t1"] == "u" and run.data.tags["t2"] == "v"


def test_client_log_batch_splits_more_than_1000_metrics_into_requests(client, run_id):
    client.log_batch(run_id, metrics=[Metric(f"k{i}", 1.0, 1, 0) for i in range(1500)])
    assert len(client.get_run(run_id).data.metrics) == 1500


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"metrics": [{"key": "k", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]},
            "A batch logging request can contain at most 1000 metrics. Got 1001 metrics.",
        ),
        (
            {"params": [{"key": f"k{i}", "value": "1"} for i in range(101)]},
            "A batch logging request can contain at most 100 params. Got 101 params.",
        ),
        (
            {"tags": [{"key": f"k{i}", "value": "1"} for i in range(101)]},
            "A batch logging request can contain at most 100 tags. Got 101 tags.",
        ),
        (
            {
                "metrics": [
                    {"key": "k", "value": 1, "timestamp": 1, "step": i} for i in range(950)
                ],
                "params": [{"key": f"k{i}", "value": "1"} for i in range(51)],
            },
            "A batch logging request can contain at most 1000 metrics, params, and tags. "
            "Got 1001 metrics, params, and tags.",
        ),
    ],
    ids=["1001-metrics", "101-params", "101-tags", "1001-entities"],
)
def test_log_batch_over_the_limits_is_rejected_and_logs_nothing(
    client, rest, run_id, payload, message
):
    # MlflowClient.log_batch chunks automatically, so send the oversized batch raw.
    resp = rest.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, **payload})
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert message in body["message"]
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {}
    assert set(run.data.tags) == {"mlflow.runName"}


def test_empty_log_batch_is_accepted(rest, run_id):
    resp = rest.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id})
    assert resp.status_code == 200
    assert resp.json() == {}


# --------------------------------------------------------------------------- delete / restore


def test_delete_run_and_restore_run_flip_lifecycle_stage(client, run_id):
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


def test_deleting_or_restoring_twice_is_idempotent(client, run_id):
    client.delete_run(run_id)
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    client.restore_run(run_id)
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


def test_logging_to_a_deleted_run_is_invalid_parameter_value(client, run_id):
    client.delete_run(run_id)
    with raises_mlflow_error(
        "INVALID_PARAMETER_VALUE",
        match=f"The run {run_id} must be in the 'active' state. Current state is deleted.",
    ):
        client.log_param(run_id, "after", "1")


def test_delete_unknown_run_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.delete_run("e" * 32)


# --------------------------------------------------------------------------- datasets / inputs


def test_log_input_records_a_pandas_dataset_with_context_tag(client):
    mlflow.set_experiment(unique_name("datasets"))
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.1, 0.2, 0.3]})
    dataset = mlflow.data.from_pandas(df, source="s3://bucket/train.csv", name="train-set")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "v1"})
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    ds = inputs[0].dataset
    assert ds.name == "train-set"
    assert ds.digest == dataset.digest
    assert ds.source_type == "s3"
    assert ds.source == '{"uri": "s3://bucket/train.csv"}'
    assert '"name": "a"' in ds.schema and '"name": "b"' in ds.schema
    assert ds.profile == '{"num_rows": 3, "num_elements": 6}'
    assert {t.key: t.value for t in inputs[0].tags} == {
        "mlflow.data.context": "training",
        "split": "v1",
    }


def test_logging_the_same_dataset_twice_keeps_one_input(client):
    mlflow.set_experiment(unique_name("datasets-dup"))
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0]}), name="once")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="eval")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("once", dataset.digest)]
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}


def test_two_different_datasets_are_both_recorded(client):
    mlflow.set_experiment(unique_name("datasets-two"))
    train = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0]}), name="train")
    test = mlflow.data.from_pandas(pd.DataFrame({"x": [3.0]}), name="test")
    with mlflow.start_run() as run:
        mlflow.log_input(train, context="training")
        mlflow.log_input(test, context="testing")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    got = {
        i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs
    }
    assert got == {"train": "training", "test": "testing"}


def test_run_without_inputs_has_no_dataset_inputs(client, run_id):
    assert client.get_run(run_id).inputs.dataset_inputs == []
