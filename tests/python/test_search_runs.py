"""search_runs: filter grammar, ordering (incl. null/NaN placement), view types, paging."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from helpers import error_body, raises_mlflow_error, unique_name
from mlflow.entities import Metric, Param, RunTag, ViewType

# name -> (start_time, metrics, params, tags)
RUN_SPECS = {
    "r0": (1_000, {"acc": 0.1, "val loss": 3.0}, {"model": "linear", "a-b.c": "x"}, {"team": "alpha"}),
    "r1": (2_000, {"acc": 0.5, "val loss": 2.0}, {"model": "Tree"}, {"team": "beta"}),
    "r2": (3_000, {"acc": 0.9, "val loss": 1.0}, {"model": "forest"}, {"team": "ALPHA-2"}),
    "r3": (4_000, {}, {}, {}),
    "r4": (5_000, {"acc": math.nan}, {"model": "nan-model"}, {"team": "gamma"}),
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(client):
    """One experiment with runs r0..r4 (+ a deleted run 'gone'); returns (exp_id, ids)."""
    exp_id = client.create_experiment(unique_name("search-runs"))
    ids = {}
    for name, (start, metrics, params, tags) in RUN_SPECS.items():
        run = client.create_run(exp_id, start_time=start, run_name=name)
        ids[name] = run.info.run_id
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, 1, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
    client.set_terminated(ids["r1"], status="FINISHED", end_time=10_000)
    client.set_terminated(ids["r2"], status="FAILED", end_time=20_000)
    gone = client.create_run(exp_id, start_time=6_000, run_name="gone")
    client.log_metric(gone.info.run_id, "acc", 1.0, timestamp=1)
    client.delete_run(gone.info.run_id)
    ids["gone"] = gone.info.run_id
    return exp_id, ids


def _search(client, corpus, filter_string="", **kwargs):
    exp_id, ids = corpus
    by_id = {v: k for k, v in ids.items()}
    runs = client.search_runs([exp_id], filter_string=filter_string, **kwargs)
    return [by_id[r.info.run_id] for r in runs]


def _matches(client, corpus, filter_string):
    return set(_search(client, corpus, filter_string))


# --------------------------------------------------------------------------- filters: metrics


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.4", {"r1", "r2"}),
        ("metrics.acc >= 0.5", {"r1", "r2"}),
        ("metrics.acc < 0.5", {"r0"}),
        ("metrics.acc <= 0.5", {"r0", "r1"}),
        ("metrics.acc = 0.5", {"r1"}),
        # NaN follows IEEE semantics: only "!=" matches it (r4 holds NaN).
        ("metrics.acc != 0.5", {"r0", "r2", "r4"}),
        ("metrics.acc = 0", set()),
        ("metrics.acc <= 0", set()),
        ("metric.acc < 0.5", {"r0"}),
        ("metrics.acc > -1 and metrics.acc < 0.6", {"r0", "r1"}),
        ("metrics.`val loss` < 2.5", {"r1", "r2"}),
        ("metrics.missing > 0", set()),
    ],
)
def test_metric_filters_compare_latest_values_and_skip_runs_without_the_metric(
    client, corpus, filter_string, expected
):
    assert _matches(client, corpus, filter_string) == expected


# --------------------------------------------------------------------------- filters: params


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.model = 'Tree'", {"r1"}),
        ("params.model != 'linear'", {"r1", "r2", "r4"}),
        ("params.model LIKE '%e%'", {"r0", "r1", "r2", "r4"}),
        ("params.model LIKE 'tree'", set()),
        ("params.model ILIKE 'tree'", {"r1"}),
        ("params.model ILIKE 'F%'", {"r2"}),
        ("params.model IS NULL", {"r3"}),
        ("params.model IS NOT NULL", {"r0", "r1", "r2", "r4"}),
        ("param.model = 'forest'", {"r2"}),
        ("parameters.model = 'forest'", {"r2"}),
        ("params.`model` = 'Tree'", {"r1"}),
        ('params."model" = \'Tree\'', {"r1"}),
        ("params.`a-b.c` = 'x'", {"r0"}),
    ],
)
def test_param_filters(client, corpus, filter_string, expected):
    assert _matches(client, corpus, filter_string) == expected


# --------------------------------------------------------------------------- filters: tags


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.team = 'beta'", {"r1"}),
        ('tags.team = "beta"', {"r1"}),
        ("tags.team != 'beta'", {"r0", "r2", "r4"}),
        ("tags.team LIKE 'alpha%'", {"r0"}),
        ("tags.team ILIKE 'alpha%'", {"r0", "r2"}),
        ("tags.team IS NULL", {"r3"}),
        ("tags.team IS NOT NULL", {"r0", "r1", "r2", "r4"}),
        ("tag.team = 'gamma'", {"r4"}),
        ("tags.`mlflow.runName` = 'r3'", {"r3"}),
        ("tags.mlflow.runName = 'r3'", {"r3"}),
    ],
)
def test_tag_filters(client, corpus, filter_string, expected):
    assert _matches(client, corpus, filter_string) == expected


# --------------------------------------------------------------------------- filters: attributes


def test_attribute_filters_on_run_name_status_and_times(client, corpus):
    assert _matches(client, corpus, "attributes.run_name = 'r2'") == {"r2"}
    assert _matches(client, corpus, "run_name = 'r2'") == {"r2"}
    assert _matches(client, corpus, "attributes.run_name != 'r2'") == {"r0", "r1", "r3", "r4"}
    assert _matches(client, corpus, "attributes.run_name LIKE 'r%'") == {"r0", "r1", "r2", "r3", "r4"}
    assert _matches(client, corpus, "attributes.run_name ILIKE 'R1'") == {"r1"}
    assert _matches(client, corpus, "attributes.status = 'FINISHED'") == {"r1"}
    assert _matches(client, corpus, "attributes.status != 'RUNNING'") == {"r1", "r2"}
    assert _matches(client, corpus, "attributes.start_time > 2500") == {"r2", "r3", "r4"}
    assert _matches(client, corpus, "attributes.start_time <= 2000") == {"r0", "r1"}
    assert _matches(client, corpus, "attributes.end_time >= 15000") == {"r2"}


def test_run_id_attribute_supports_in_and_not_in(client, corpus):
    _, ids = corpus
    in_list = f"('{ids['r0']}', '{ids['r3']}')"
    assert _matches(client, corpus, f"attributes.run_id IN {in_list}") == {"r0", "r3"}
    assert _matches(client, corpus, f"attributes.run_id NOT IN {in_list}") == {"r1", "r2", "r4"}
    assert _matches(client, corpus, f"attributes.run_id = '{ids['r1']}'") == {"r1"}


def test_mixed_conjunction_of_metric_param_tag_and_attribute_filters(client, corpus):
    flt = (
        "metrics.acc > 0.2 and params.model != 'linear' AND tags.team ILIKE '%a%' "
        "and attributes.status = 'FAILED'"
    )
    assert _matches(client, corpus, flt) == {"r2"}


def test_dataset_filters_match_logged_inputs(client):
    exp = mlflow.set_experiment(unique_name("search-datasets"))
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0]}), name="train-ds")
    with mlflow.start_run() as with_ds:
        mlflow.log_input(dataset, context="training")
    with mlflow.start_run() as without_ds:
        pass

    def ids_for(flt):
        return {r.info.run_id for r in client.search_runs([exp.experiment_id], flt)}

    assert ids_for("dataset.name = 'train-ds'") == {with_ds.info.run_id}
    assert ids_for("dataset.context = 'training'") == {with_ds.info.run_id}
    assert ids_for(f"dataset.digest = '{dataset.digest}'") == {with_ds.info.run_id}
    assert ids_for("dataset.name IN ('train-ds', 'other')") == {with_ds.info.run_id}
    assert ids_for("dataset.name = 'nope'") == set()
    assert without_ds.info.run_id in ids_for("")


# --------------------------------------------------------------------------- invalid filters


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metrics.acc > 0.2 OR params.model = 'x'", "Invalid clause(s) in filter string"),
        ("metrics.acc = 'x'", "Expected numeric value type for metric"),
        ("params.model = 5", "Expected a quoted string value for parameter"),
        ("params.model IN ('linear', 'Tree')", "Expected a quoted string value for parameter"),
        ("foo.bar = 1", "Invalid entity type 'foo'"),
        ("metrics.acc >", "Invalid clause(s) in filter string"),
        ("metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"),
        ("attributes.run_name IN ('r0', 'r1')", "Only ['run_id'] attributes support"),
        ("metrics.acc LIKE 0.1", "Invalid comparator 'LIKE'"),
    ],
)
def test_invalid_filter_is_invalid_parameter_value(client, corpus, filter_string, message):
    exp_id, _ = corpus
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match=message):
        client.search_runs([exp_id], filter_string=filter_string)


def test_invalid_order_by_is_invalid_parameter_value(client, corpus):
    exp_id, _ = corpus
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Invalid ordering key"):
        client.search_runs([exp_id], order_by=["metrics.acc sideways"])
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Invalid attribute key 'bogus'"):
        client.search_runs([exp_id], order_by=["bogus"])


def test_max_results_over_50000_is_rejected(client, rest, corpus):
    exp_id, _ = corpus
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Invalid value 50001 for parameter"):
        client.search_runs([exp_id], max_results=50001)
    resp = rest.post(
        "/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp_id], "max_results": 50000}
    )
    assert resp.status_code == 200, resp.text


def test_garbage_page_token_is_invalid_parameter_value(rest, corpus):
    exp_id, _ = corpus
    resp = rest.post(
        "/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [exp_id], "page_token": "garbage"},
    )
    error_body(resp, "INVALID_PARAMETER_VALUE", 400)


# --------------------------------------------------------------------------- ordering


def test_default_order_is_start_time_descending(client, corpus):
    assert _search(client, corpus) == ["r4", "r3", "r2", "r1", "r0"]


def test_order_by_metric_puts_nan_then_missing_last_in_both_directions(client, corpus):
    assert _search(client, corpus, order_by=["metrics.acc DESC"]) == ["r2", "r1", "r0", "r4", "r3"]
    assert _search(client, corpus, order_by=["metrics.acc ASC"]) == ["r0", "r1", "r2", "r4", "r3"]
    assert _search(client, corpus, order_by=["metrics.acc"]) == ["r0", "r1", "r2", "r4", "r3"]


def test_order_by_metric_key_with_space_uses_backticks(client, corpus):
    got = _search(client, corpus, order_by=["metrics.`val loss` ASC"])
    assert got[:3] == ["r2", "r1", "r0"]
    assert got[3:] == ["r4", "r3"]  # missing metric: last, ties by start_time DESC


def test_order_by_params_is_binary_string_order_with_missing_last(client, corpus):
    assert _search(client, corpus, order_by=["params.model ASC"]) == ["r1", "r2", "r0", "r4", "r3"]
    assert _search(client, corpus, order_by=["params.model DESC"]) == ["r4", "r0", "r2", "r1", "r3"]


def test_order_by_tags_with_missing_last(client, corpus):
    assert _search(client, corpus, order_by=["tags.team ASC"]) == ["r2", "r0", "r1", "r4", "r3"]
    assert _search(client, corpus, order_by=["tags.team DESC"]) == ["r4", "r1", "r0", "r2", "r3"]


def test_order_by_attributes(client, corpus):
    assert _search(client, corpus, order_by=["attributes.run_name DESC"]) == [
        "r4", "r3", "r2", "r1", "r0"
    ]  # fmt: skip
    assert _search(client, corpus, order_by=["run_name"]) == ["r0", "r1", "r2", "r3", "r4"]
    assert _search(client, corpus, order_by=["attributes.start_time ASC"]) == [
        "r0", "r1", "r2", "r3", "r4"
    ]  # fmt: skip


def test_order_by_multiple_keys_breaks_ties_with_the_second_key(client, corpus):
    got = _search(client, corpus, order_by=["attributes.status ASC", "metrics.acc DESC"])
    # FAILED < FINISHED < RUNNING; inside RUNNING: r0 (0.1), then r4 (NaN), then r3 (missing).
    assert got == ["r2", "r1", "r0", "r4", "r3"]


# --------------------------------------------------------------------------- view types


def test_run_view_type_selects_active_deleted_or_all(client, corpus):
    assert "gone" not in _search(client, corpus)
    assert _search(client, corpus, run_view_type=ViewType.DELETED_ONLY) == ["gone"]
    assert set(_search(client, corpus, run_view_type=ViewType.ALL)) == set(RUN_SPECS) | {"gone"}
    assert _search(client, corpus, "metrics.acc > 0.95", run_view_type=ViewType.ALL) == ["gone"]


def test_search_spans_multiple_experiments(client):
    e1 = client.create_experiment(unique_name("multi"))
    e2 = client.create_experiment(unique_name("multi"))
    e3 = client.create_experiment(unique_name("multi"))
    r1 = client.create_run(e1).info.run_id
    r2 = client.create_run(e2).info.run_id
    client.create_run(e3)
    assert {r.info.run_id for r in client.search_runs([e1, e2])} == {r1, r2}


def test_search_in_unknown_experiment_returns_nothing(client):
    assert list(client.search_runs(["987654321"])) == []


# --------------------------------------------------------------------------- paging


def test_paging_through_260_runs_sees_every_run_exactly_once(client):
    exp_id = client.create_experiment(unique_name("paging"))
    created = {client.create_run(exp_id, start_time=i).info.run_id for i in range(260)}
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs([exp_id], max_results=100, page_token=token)
        assert len(page) <= 100
        seen.extend(r.info.run_id for r in page)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages < 10, "paging did not terminate"
    assert pages == 3
    assert len(seen) == len(set(seen)) == 260
    assert set(seen) == created


def test_page_token_preserves_filter_and_order(client, corpus):
    first = client.search_runs(
        [corpus[0]], filter_string="params.model IS NOT NULL",
        order_by=["params.model ASC"], max_results=3,
    )  # fmt: skip
    assert first.token
    second = client.search_runs(
        [corpus[0]], filter_string="params.model IS NOT NULL",
        order_by=["params.model ASC"], max_results=3, page_token=first.token,
    )  # fmt: skip
    by_id = {v: k for k, v in corpus[1].items()}
    assert [by_id[r.info.run_id] for r in first] == ["r1", "r2", "r0"]
    assert [by_id[r.info.run_id] for r in second] == ["r4"]
    assert not second.token


def test_exact_page_boundary_still_ends(client, corpus):
    exp_id, _ = corpus
    page = client.search_runs([exp_id], max_results=5)
    assert len(page) == 5
    if page.token:  # MLflow may hand out a token for an empty final page
        rest_page = client.search_runs([exp_id], max_results=5, page_token=page.token)
        assert len(rest_page) == 0 and not rest_page.token


# --------------------------------------------------------------------------- pandas API


def test_fluent_search_runs_returns_a_dataframe_with_prefixed_columns(corpus):
    exp_id, ids = corpus
    df = mlflow.search_runs(experiment_ids=[exp_id], order_by=["attributes.start_time ASC"])
    assert isinstance(df, pd.DataFrame)
    assert list(df["run_id"]) == [ids[n] for n in ["r0", "r1", "r2", "r3", "r4"]]
    for column in [
        "experiment_id", "status", "start_time", "end_time", "artifact_uri",
        "metrics.acc", "metrics.val loss", "params.model", "params.a-b.c",
        "tags.team", "tags.mlflow.runName",
    ]:  # fmt: skip
        assert column in df.columns, column
    assert list(df["tags.mlflow.runName"]) == ["r0", "r1", "r2", "r3", "r4"]
    assert list(df["status"]) == ["RUNNING", "FINISHED", "FAILED", "RUNNING", "RUNNING"]
    assert df["metrics.acc"].iloc[0] == 0.1 and df["metrics.acc"].iloc[2] == 0.9
    assert math.isnan(df["metrics.acc"].iloc[3]) and math.isnan(df["metrics.acc"].iloc[4])
    assert df["params.model"].iloc[1] == "Tree"
    assert pd.isna(df["params.model"].iloc[3])
    assert df["tags.team"].iloc[2] == "ALPHA-2"


def test_fluent_search_runs_filter_and_list_output(corpus):
    exp_id, ids = corpus
    df = mlflow.search_runs([exp_id], filter_string="params.model = 'forest'")
    assert list(df["run_id"]) == [ids["r2"]]
    runs = mlflow.search_runs([exp_id], filter_string="tags.team = 'beta'", output_format="list")
    assert [r.info.run_id for r in runs] == [ids["r1"]]
    assert runs[0].data.metrics["acc"] == 0.5
