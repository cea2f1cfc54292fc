"""Raw REST: error bodies and codes for bad requests, URL prefixes, GET query strings,
wire shapes, and the /api/3.0/mlflow/server-info capability endpoint."""

from __future__ import annotations

import pytest
from helpers import error_body, unique_name

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def exp_and_run(rest):
    resp = rest.post(f"{API}/experiments/create", json={"name": unique_name("rest")})
    assert resp.status_code == 200, resp.text
    exp_id = resp.json()["experiment_id"]
    resp = rest.post(
        f"{API}/runs/create",
        json={"experiment_id": exp_id, "start_time": 1_700_000_000_000, "run_name": "rest-run"},
    )
    assert resp.status_code == 200, resp.text
    return exp_id, resp.json()["run"]["info"]["run_id"]


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    "path", ["experiments/create", "runs/log-metric", "runs/set-tag", "experiments/delete"]
)
def test_malformed_json_body_is_a_400_invalid_parameter_value(rest, path):
    # MLflow parses the body leniently (unparseable -> empty) and then reports the first
    # missing required field ("Missing value for required parameter 'name'"); the wording
    # is not pinned here, the error code and status are.
    resp = rest.post(f"{API}/{path}", content=b"{not json", headers=JSON)
    error_body(resp, "INVALID_PARAMETER_VALUE", 400)


def test_empty_body_is_treated_as_an_empty_object(rest):
    resp = rest.post(f"{API}/experiments/create", content=b"", headers=JSON)
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "Missing value for required parameter 'name'" in body["message"]


def test_post_without_json_content_type_is_rejected(rest):
    resp = rest.post(
        f"{API}/experiments/create",
        content=b'{"name": "x"}',
        headers={"Content-Type": "text/plain"},
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "Content-Type must be one of ['application/json']" in body["message"]


# --------------------------------------------------------------------------- wrong field types


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("experiments/delete", {"experiment_id": {"a": 1}}, "experiment_id"),
        ("experiments/create", {"name": 5}, "name"),
        ("experiments/create", {"name": ["a"]}, "name"),
        ("runs/log-metric", {"key": "m", "value": "abc", "timestamp": 1}, "value"),
        ("runs/log-metric", {"key": "m", "value": 1, "timestamp": "abc"}, "timestamp"),
        ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1, "step": "x"}, "step"),
        ("runs/log-parameter", {"key": "k", "value": 5}, "value"),
        ("runs/set-tag", {"key": "k", "value": 5}, "value"),
        ("runs/log-batch", {"metrics": {"a": 1}}, "metrics"),
        ("runs/search", {"experiment_ids": "0"}, "experiment_ids"),
        ("runs/search", {"experiment_ids": ["0"], "max_results": "abc"}, "max_results"),
        ("runs/search", {"experiment_ids": ["0"], "filter": 5}, "filter"),
        ("runs/search", {"experiment_ids": ["0"], "order_by": "x"}, "order_by"),
        ("experiments/search", {"max_results": "abc"}, "max_results"),
    ],
)
def test_wrong_field_type_is_a_400_naming_the_field(rest, exp_and_run, path, payload, field):
    _, run_id = exp_and_run
    if path.startswith("runs/") and path != "runs/search":
        payload = {"run_id": run_id, **payload}
    resp = rest.post(f"{API}/{path}", json=payload)
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "Invalid value" in body["message"]
    assert f"'{field}'" in body["message"]


def test_non_numeric_experiment_id_is_invalid_parameter_value(rest):
    resp = rest.get(f"{API}/experiments/get", params={"experiment_id": "abc"})
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert body["message"] == "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."


# --------------------------------------------------------------------------- missing fields


@pytest.mark.parametrize(
    ("method", "path", "payload", "missing"),
    [
        ("POST", "experiments/create", {}, "name"),
        ("POST", "experiments/update", {"experiment_id": "EXP"}, "new_name"),
        ("POST", "experiments/restore", {}, "experiment_id"),
        ("POST", "experiments/set-experiment-tag", {"experiment_id": "EXP", "value": "v"}, "key"),
        ("POST", "runs/delete", {}, "run_id"),
        ("POST", "runs/log-batch", {"metrics": []}, "run_id"),
        ("POST", "runs/log-metric", {"run_id": "RUN", "value": 1, "timestamp": 1}, "key"),
        ("POST", "runs/log-metric", {"run_id": "RUN", "key": "m", "timestamp": 1}, "value"),
        ("POST", "runs/log-metric", {"run_id": "RUN", "key": "m", "value": 1}, "timestamp"),
        ("POST", "runs/log-batch", {"run_id": "RUN", "metrics": [{"key": "a", "value": 1}]},
         "metrics[0].timestamp"),
        ("POST", "runs/log-batch", {"run_id": "RUN", "params": [{"value": "1"}]}, "params[0].key"),
        ("GET", "runs/get", {}, "run_id"),
        ("GET", "experiments/get", {}, "experiment_id"),
        ("GET", "experiments/get-by-name", {}, "experiment_name"),
        ("GET", "metrics/get-history", {"run_id": "RUN"}, "metric_key"),
    ],
)  # fmt: skip
def test_missing_required_field_is_a_400_naming_the_field(
    rest, exp_and_run, method, path, payload, missing
):
    exp_id, run_id = exp_and_run
    ids = {"RUN": run_id, "EXP": exp_id}
    payload = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in payload.items()}
    if method == "GET":
        resp = rest.get(f"{API}/{path}", params=payload)
    else:
        resp = rest.post(f"{API}/{path}", json=payload)
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert f"Missing value for required parameter '{missing}'" in body["message"]


# --------------------------------------------------------------------------- unknown ids


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "runs/get", {"run_id": "deadbeef"}),
        ("POST", "runs/update", {"run_id": "deadbeef", "status": "FINISHED"}),
        ("POST", "runs/delete", {"run_id": "deadbeef"}),
        ("POST", "runs/restore", {"run_id": "deadbeef"}),
        ("POST", "runs/log-parameter", {"run_id": "deadbeef", "key": "k", "value": "v"}),
        ("POST", "runs/log-metric", {"run_id": "deadbeef", "key": "m", "value": 1, "timestamp": 1}),
        ("POST", "runs/set-tag", {"run_id": "deadbeef", "key": "k", "value": "v"}),
        ("POST", "runs/log-batch", {"run_id": "deadbeef", "params": [{"key": "k", "value": "v"}]}),
        ("POST", "runs/log-inputs", {"run_id": "deadbeef", "datasets": []}),
    ],
)  # fmt: skip
def test_unknown_run_id_is_a_404_resource_does_not_exist(rest, method, path, payload):
    if method == "GET":
        resp = rest.get(f"{API}/{path}", params=payload)
    else:
        resp = rest.post(f"{API}/{path}", json=payload)
    body = error_body(resp, "RESOURCE_DOES_NOT_EXIST", 404)
    assert body["message"] == "Run with id=deadbeef not found"


def test_unknown_experiment_is_a_404_resource_does_not_exist(rest):
    resp = rest.get(f"{API}/experiments/get", params={"experiment_id": "987654321"})
    body = error_body(resp, "RESOURCE_DOES_NOT_EXIST", 404)
    assert body["message"] == "No Experiment with id=987654321 exists"
    resp = rest.get(f"{API}/experiments/get-by-name", params={"experiment_name": "no-such-exp"})
    body = error_body(resp, "RESOURCE_DOES_NOT_EXIST", 404)
    assert body["message"] == "Could not find experiment with name 'no-such-exp'"


def test_duplicate_experiment_is_a_400_resource_already_exists(rest):
    name = unique_name("dup")
    assert rest.post(f"{API}/experiments/create", json={"name": name}).status_code == 200
    resp = rest.post(f"{API}/experiments/create", json={"name": name})
    error_body(resp, "RESOURCE_ALREADY_EXISTS", 400)


def test_unknown_endpoint_is_404_and_wrong_method_is_405(rest):
    assert rest.get(f"{API}/no-such-endpoint").status_code == 404
    assert rest.post(f"{API}/no-such-endpoint", json={}).status_code == 404
    assert rest.get(f"{API}/experiments/create").status_code == 405
    assert rest.post(f"{API}/runs/get", json={"run_id": "x"}).status_code == 405


# --------------------------------------------------------------------------- prefixes


def test_ajax_api_prefix_serves_the_same_endpoints(rest, exp_and_run):
    exp_id, run_id = exp_and_run
    name = unique_name("ajax")
    resp = rest.post(f"{AJAX}/experiments/create", json={"name": name})
    assert resp.status_code == 200, resp.text
    ajax_exp = resp.json()["experiment_id"]
    got = rest.get(f"{API}/experiments/get", params={"experiment_id": ajax_exp}).json()
    assert got["experiment"]["name"] == name
    via_ajax = rest.get(f"{AJAX}/runs/get", params={"run_id": run_id})
    via_api = rest.get(f"{API}/runs/get", params={"run_id": run_id})
    assert via_ajax.status_code == via_api.status_code == 200
    assert via_ajax.json() == via_api.json()
    resp = rest.post(f"{AJAX}/runs/search", json={"experiment_ids": [exp_id]})
    assert [r["info"]["run_id"] for r in resp.json()["runs"]] == [run_id]
    error_body(rest.get(f"{AJAX}/runs/get", params={"run_id": "deadbeef"}), "RESOURCE_DOES_NOT_EXIST")


# --------------------------------------------------------------------------- GET query strings


def test_get_endpoints_read_their_arguments_from_the_query_string(rest, exp_and_run):
    exp_id, run_id = exp_and_run
    exp = rest.get(f"{API}/experiments/get", params={"experiment_id": exp_id}).json()
    name = exp["experiment"]["name"]
    by_name = rest.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
    assert by_name.json()["experiment"]["experiment_id"] == exp_id
    # run_uuid is the deprecated alias of run_id and is still accepted.
    by_uuid = rest.get(f"{API}/runs/get", params={"run_uuid": run_id})
    assert by_uuid.json()["run"]["info"]["run_id"] == run_id


def test_metric_history_get_accepts_query_string_paging(rest, exp_and_run):
    _, run_id = exp_and_run
    for step in range(3):
        resp = rest.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "qs", "value": step * 1.5, "timestamp": 10, "step": step},
        )
        assert resp.status_code == 200, resp.text
    resp = rest.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "qs", "max_results": 2}
    )
    body = resp.json()
    assert [m["value"] for m in body["metrics"]] == [0.0, 1.5]
    assert body["next_page_token"]
    resp = rest.get(
        f"{API}/metrics/get-history",
        params={"run_id": run_id, "metric_key": "qs", "page_token": body["next_page_token"]},
    )
    assert [m["value"] for m in resp.json()["metrics"]] == [3.0]
    resp = rest.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "qs", "max_results": 0}
    )
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    assert "It must be a positive integer" in body["message"]


def test_search_experiments_accepts_get_with_query_string(rest):
    prefix = unique_name("qs")
    ids = [
        rest.post(f"{API}/experiments/create", json={"name": f"{prefix}-{i}"}).json()[
            "experiment_id"
        ]
        for i in range(3)
    ]
    rest.post(f"{API}/experiments/delete", json={"experiment_id": ids[0]})
    params = {"filter": f"name LIKE '{prefix}%'", "max_results": 1, "order_by": ["name DESC"]}
    first = rest.get(f"{API}/experiments/search", params=params).json()
    assert [e["name"] for e in first["experiments"]] == [f"{prefix}-2"]
    second = rest.get(
        f"{API}/experiments/search", params={**params, "page_token": first["next_page_token"]}
    ).json()
    assert [e["name"] for e in second["experiments"]] == [f"{prefix}-1"]
    assert "next_page_token" not in second or not second["next_page_token"]
    # view_type may be given by enum name or by number (3 == ALL).
    for view_type in ["ALL", "3"]:
        every = rest.get(
            f"{API}/experiments/search",
            params={"filter": f"name LIKE '{prefix}%'", "view_type": view_type, "max_results": 10},
        ).json()
        assert sorted(e["experiment_id"] for e in every["experiments"]) == sorted(ids)
    deleted = rest.get(
        f"{API}/experiments/search",
        params={"filter": f"name LIKE '{prefix}%'", "view_type": "DELETED_ONLY", "max_results": 10},
    ).json()
    assert [e["experiment_id"] for e in deleted["experiments"]] == [ids[0]]


def test_search_with_no_match_returns_an_empty_object(rest):
    resp = rest.post(
        f"{API}/experiments/search", json={"filter": "name = 'no-such-exp-xyz'", "max_results": 5}
    )
    assert resp.status_code == 200
    assert resp.json() == {}
    resp = rest.post(
        f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.nope > 1"}
    )
    assert resp.status_code == 200
    assert resp.json() == {}


def test_search_experiments_without_max_results_uses_the_default_page_size(rest, server_kind):
    # MLflow's handler refuses an omitted max_results (it reads as 0); ferroflow applies the
    # documented default of 1000 instead (docs/compatibility.md), so raw REST callers need not
    # send it.
    resp = rest.post(f"{API}/experiments/search", json={"filter": "name = 'Default'"})
    if server_kind == "mlflow":  # the reference server's quirk, only there
        error_body(resp, "INVALID_PARAMETER_VALUE", 400)
        assert "max_results" in resp.json()["message"]
        return
    assert resp.status_code == 200, resp.text
    assert [e["name"] for e in resp.json()["experiments"]] == ["Default"]


def test_search_runs_without_experiment_ids_returns_no_runs(rest):
    resp = rest.post(f"{API}/runs/search", json={})
    assert resp.status_code == 200
    assert resp.json() == {}


def test_search_experiments_max_results_over_50000_is_rejected(rest):
    resp = rest.post(f"{API}/experiments/search", json={"max_results": 50001})
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    # MLflow: "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"
    assert "Invalid value 50001 for parameter 'max_results' supplied" in body["message"]
    assert "at most 50000" in body["message"]


# --------------------------------------------------------------------------- wire shapes


def test_run_json_uses_numbers_for_times_and_strings_for_ids(rest, exp_and_run):
    exp_id, run_id = exp_and_run
    rest.post(f"{API}/runs/log-metric",
              json={"run_id": run_id, "key": "shape", "value": 2, "timestamp": 5, "step": 3})  # fmt: skip
    rest.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "v"})
    run = rest.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == run_id
    assert info["experiment_id"] == exp_id
    assert info["run_name"] == "rest-run"
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert info["start_time"] == 1_700_000_000_000
    assert "end_time" not in info  # unset fields are omitted, not null
    [metric] = [m for m in run["data"]["metrics"] if m["key"] == "shape"]
    assert metric == {"key": "shape", "value": 2.0, "timestamp": 5, "step": 3}
    assert {"key": "p", "value": "v"} in run["data"]["params"]
    assert {"key": "mlflow.runName", "value": "rest-run"} in run["data"]["tags"]


def test_successful_mutations_answer_an_empty_json_object(rest, exp_and_run):
    exp_id, run_id = exp_and_run
    for path, payload in [
        ("runs/set-tag", {"run_id": run_id, "key": "e", "value": "1"}),
        ("runs/delete-tag", {"run_id": run_id, "key": "e"}),
        ("runs/log-parameter", {"run_id": run_id, "key": "e", "value": "1"}),
        ("runs/log-metric", {"run_id": run_id, "key": "e", "value": 1, "timestamp": 1}),
        ("runs/log-batch", {"run_id": run_id}),
        ("experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "e", "value": "1"}),
    ]:
        resp = rest.post(f"{API}/{path}", json=payload)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.json() == {}, path


def test_create_experiment_answers_the_new_id_as_a_string(rest):
    resp = rest.post(f"{API}/experiments/create", json={"name": unique_name("shape")})
    body = resp.json()
    assert set(body) == {"experiment_id"}
    assert isinstance(body["experiment_id"], str) and body["experiment_id"].isdigit()


# --------------------------------------------------------------------------- server-info / health


def test_health_answers_ok(rest):
    resp = rest.get("/health")
    assert resp.status_code == 200
    assert resp.text.strip() == "OK"


@pytest.mark.parametrize("prefix", ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"])
def test_server_info_reports_mlflow_3_capability_keys(rest, prefix):
    resp = rest.get(f"{prefix}/server-info")
    assert resp.status_code == 200, resp.text
    info = resp.json()
    # Keys of mlflow.server.handlers.build_server_info_payload (mlflow 3.17.2).
    assert set(info) == {
        "store_type",
        "workspaces_enabled",
        "trace_archival_enabled",
        "multipart_uploads_enabled",
        "multipart_downloads_enabled",
        "presigned_upload_run_id_supported",
        "presigned_upload_model_id_supported",
        "features_enabled",
    }
    assert info["store_type"] == "SqlStore"  # SQLite-backed store
    assert info["workspaces_enabled"] is False
    assert info["trace_archival_enabled"] is False
    for key in [
        "multipart_uploads_enabled",
        "multipart_downloads_enabled",
        "presigned_upload_run_id_supported",
        "presigned_upload_model_id_supported",
    ]:
        assert isinstance(info[key], bool), key
    assert isinstance(info["features_enabled"], dict)
    assert isinstance(info["features_enabled"].get("gateway"), bool)
