"""Request validation in MLflow's exact words: a field of the wrong type, a missing required
field, an out-of-range `max_results` — each answered 400 INVALID_PARAMETER_VALUE with the message
MLflow 3.17.2's handlers give (scripts and MLflow's own server tests match on these texts).

Every expected message below was read off a real `mlflow server` 3.17.2; the suite runs against
one too (FERROFLOW_TEST_AGAINST=mlflow).
"""

from __future__ import annotations

import pytest
from helpers import unique_name

API = "/api/2.0/mlflow"
DOCS = " See the API docs for more information about request parameters."


def hint(value: str, param: str, kind: str) -> str:
    return f"Invalid value {value} for parameter '{param}' supplied:  Hint: Value was of type '{kind}'.{DOCS}"


def missing(param: str) -> str:
    return f"Missing value for required parameter '{param}'.{DOCS}"


@pytest.fixture(scope="module")
def ids(rest):
    exp = rest.post(f"{API}/experiments/create", json={"name": unique_name("wording")}).json()["experiment_id"]
    run = rest.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    return {"EXP": exp, "RID": run}


def fill(body, ids):
    if isinstance(body, dict):
        return {k: fill(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [fill(v, ids) for v in body]
    return ids.get(body, body) if isinstance(body, str) else body


POST_CASES = [
    ("runs/log-metric", {"run_id": 31, "key": "m", "value": 41, "timestamp": 59, "step": 26}, hint("31", "run_id", "int")),
    ("runs/log-metric", {"run_id": "RID", "key": 31, "value": 41, "timestamp": 59}, hint("31", "key", "int")),
    ("runs/log-metric", {"run_id": "RID", "key": "m", "value": 31, "timestamp": 59, "step": "foo"}, hint('"foo"', "step", "str")),
    ("runs/log-metric", {"run_id": "RID", "key": "m", "value": 31, "timestamp": "foo"}, hint('"foo"', "timestamp", "str")),
    ("runs/log-metric", {"run_id": "RID", "key": "m", "value": "abc", "timestamp": 5}, hint('"abc"', "value", "str")),
    ("runs/log-metric", {"run_id": None, "key": "m", "value": 31, "timestamp": 59}, missing("run_id")),
    ("runs/log-metric", {"run_id": "RID", "value": 31, "timestamp": 59}, missing("key")),
    ("runs/log-metric", {"run_id": "RID", "key": "m", "timestamp": 59}, missing("value")),
    ("runs/log-metric", {"run_id": "RID", "key": "m", "value": 1}, missing("timestamp")),
    ("runs/log-parameter", {"run_id": 31, "key": "p", "value": 41}, hint("31", "run_id", "int")),
    ("runs/log-parameter", {"run_id": "RID", "key": 31, "value": "x"}, hint("31", "key", "int")),
    ("runs/log-parameter", {"run_id": "RID", "key": "p", "value": 41}, hint("41", "value", "int")),
    ("runs/log-parameter", {"run_id": "RID", "key": "p", "value": {"b": 1, "a": None}}, hint('{"a":null,"b":1}', "value", "dict")),
    ("runs/log-parameter", {"run_id": "RID", "key": "k" * 251, "value": "x"}, "'Param key' exceeds the maximum length of 250 characters"),
    ("runs/set-tag", {"run_id": 31, "key": "t", "value": 41}, hint("31", "run_id", "int")),
    ("runs/set-tag", {"run_id": "RID", "key": "t", "value": 41}, hint("41", "value", "int")),
    ("runs/set-tag", {"run_id": "RID", "value": "v"}, missing("key")),
    ("runs/set-tag", {"run_id": "RID", "key": "t", "value": [1, 2]}, hint("[1,2]", "value", "list")),
    ("runs/set-tag", {"run_id": "RID", "key": "t", "value": True}, hint("true", "value", "bool")),
    ("runs/log-batch", {"run_id": "RID", "metrics": "foo"}, hint('"foo"', "metrics", "str")),
    ("runs/log-batch", {"run_id": "RID", "params": "foo"}, hint('"foo"', "params", "str")),
    ("runs/log-batch", {"run_id": "RID", "tags": "foo"}, hint('"foo"', "tags", "str")),
    ("runs/log-batch", {"run_id": "RID", "metrics": [{"key": "mae", "value": 2.5}]}, missing("metrics[0].timestamp")),
    ("runs/log-batch", {"run_id": "RID", "metrics": [{"value": 2.5, "timestamp": 1}]}, missing("metrics[0].key")),
    ("runs/log-batch", {"run_id": "RID", "params": [{"value": "x"}]}, missing("params[0].key")),
    ("runs/log-batch", {"run_id": "RID", "tags": [{"value": "x"}]}, missing("tags[0].key")),
    ("runs/log-batch", {"run_id": 5, "metrics": []}, hint("5", "run_id", "int")),
    ("runs/log-batch", {"metrics": []}, missing("run_id")),
    ("experiments/create", {"name": 5}, hint("5", "name", "int")),
    ("experiments/create", {}, missing("name")),
    ("experiments/create", {"name": "x", "tags": "foo"}, hint('"foo"', "tags", "str")),
    ("experiments/create", {"name": "x", "artifact_location": 5}, hint("5", "artifact_location", "int")),
    ("runs/create", {"experiment_id": "EXP", "start_time": "abc"}, hint('"abc"', "start_time", "str")),
    ("runs/create", {"experiment_id": 5.5}, hint("5.5", "experiment_id", "float")),
    ("runs/update", {"run_id": "RID", "end_time": "x"}, hint('"x"', "end_time", "str")),
    ("runs/search", {"experiment_ids": "EXP"}, "for parameter 'experiment_ids' supplied:  Hint: Value was of type 'str'."),
    ("runs/search", {"experiment_ids": ["EXP"], "max_results": "x"}, hint('"x"', "max_results", "str")),
    ("runs/search", {"experiment_ids": ["EXP"], "max_results": 100000}, hint("100000", "max_results", "int")),
    ("runs/search", {"experiment_ids": ["EXP"], "max_results": 0},
     "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"),
    ("runs/search", {"experiment_ids": ["EXP"], "filter": 5}, hint("5", "filter", "int")),
    ("runs/search", {"experiment_ids": ["EXP"], "order_by": "x"}, hint('"x"', "order_by", "str")),
    ("experiments/search", {"max_results": "x"}, hint('"x"', "max_results", "str")),
    ("experiments/search", {"max_results": 50001},
     "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"),
    ("experiments/search", {"max_results": -1},
     "Invalid value -1 for parameter 'max_results' supplied. It must be a positive integer"),
    ("runs/delete", {}, missing("run_id")),
    ("experiments/delete", {"experiment_id": 5}, hint("5", "experiment_id", "int")),
    ("experiments/set-experiment-tag", {"experiment_id": "EXP", "key": 5, "value": "v"}, hint("5", "key", "int")),
    ("registered-models/create", {"name": 5}, hint("5", "name", "int")),
    ("registered-models/create", {}, missing("name")),
    ("model-versions/create", {"name": "m", "source": 5}, hint("5", "source", "int")),
    ("logged-models/search", {}, missing("experiment_ids")),
]

GET_CASES = [
    ("runs/get", {"run_id": ""}, missing("run_id")),
    ("runs/get", {}, missing("run_id")),
    ("metrics/get-history", {"run_id": "RID"}, missing("metric_key")),
    ("experiments/search", {"max_results": "abc"}, hint('"abc"', "max_results", "str")),
    ("registered-models/search", {"max_results": "abc"}, hint('"abc"', "max_results", "str")),
    ("model-versions/search", {"max_results": "abc"}, hint('"abc"', "max_results", "str")),
    ("metrics/get-history-bulk-interval", {"run_ids": "nope", "max_results": 5}, missing("metric_key")),
    ("metrics/get-history-bulk-interval", {"run_ids": "nope", "metric_key": "m", "max_results": "x"},
     hint('"x"', "max_results", "str")),
    ("metrics/get-history-bulk-interval", {"metric_key": "m"}, missing("run_ids")),
    ("metrics/get-history-bulk-interval", {"run_ids": "nope", "metric_key": "m", "max_results": 2501},
     f"max_results must be between 1 and 2500.{DOCS}"),
    ("metrics/get-history-bulk-interval", {"run_ids": "nope", "metric_key": "m", "start_step": 3},
     "If either start step or end step are specified, both must be specified."),
]


def _id(case):
    path, body, _ = case
    return f"{path}:{','.join(f'{k}={str(v)[:12]}' for k, v in body.items()) or 'empty'}"


@pytest.mark.parametrize("case", POST_CASES, ids=[_id(c) for c in POST_CASES])
def test_post_validation_is_worded_as_mlflow(rest, ids, case):
    path, body, message = case
    resp = rest.post(f"{API}/{path}", json=fill(body, ids))
    assert resp.status_code == 400, resp.text
    got = resp.json()
    assert got["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in got["message"], got["message"]


@pytest.mark.parametrize("case", GET_CASES, ids=[_id(c) for c in GET_CASES])
def test_get_validation_is_worded_as_mlflow(rest, ids, case):
    path, query, message = case
    resp = rest.get(f"{API}/{path}", params=fill(query, ids))
    assert resp.status_code == 400, resp.text
    got = resp.json()
    assert got["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in got["message"], got["message"]


def test_nothing_is_written_by_a_refused_request(rest, ids):
    rid = ids["RID"]
    rest.post(f"{API}/runs/log-batch", json={"run_id": rid, "params": [{"key": "kept", "value": "1"}],
                                             "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
                                             "tags": "foo"})
    run = rest.get(f"{API}/runs/get", params={"run_id": rid}).json()["run"]
    assert "kept" not in {p["key"] for p in run["data"].get("params", [])}


def test_bulk_interval_of_an_unknown_run_is_empty(rest):
    # MLflow answers a run it does not know with no points, not an error.
    resp = rest.get(f"{API}/metrics/get-history-bulk-interval", params={"run_ids": "nope", "metric_key": "m"})
    assert resp.status_code == 200, resp.text
    assert resp.json().get("metrics", []) == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("runs/log-metric", {"key": "k" * 251, "value": 1, "timestamp": 1},
         "'Metric name' exceeds the maximum length of 250 characters"),
        ("runs/set-tag", {"key": "k" * 251, "value": "v"}, "'key' exceeds the maximum length of 250 characters"),
        ("runs/log-batch", {"params": [{"key": "k" * 251, "value": "v"}]},
         "'Param key' exceeds the maximum length of 250 characters"),
        ("runs/log-batch", {"tags": [{"key": "k" * 251, "value": "v"}]},
         "'tags[0].key' exceeds the maximum length of 250 characters"),
    ],
)
def test_over_long_keys_are_named_as_mlflow_names_them(rest, ids, path, body, message):
    resp = rest.post(f"{API}/{path}", json={"run_id": ids["RID"], **body})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["message"]
