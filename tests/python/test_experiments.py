"""Experiment CRUD, tags, lifecycle and search, through mlflow.MlflowClient."""

from __future__ import annotations

import time

import pytest
from helpers import raises_mlflow_error, unique_name
from mlflow.entities import LifecycleStage, ViewType


def _names(experiments):
    return [e.name for e in experiments]


# --------------------------------------------------------------------------- basics


def test_default_experiment_zero_exists_and_is_named_default(client):
    exp = client.get_experiment("0")
    assert exp.experiment_id == "0"
    assert exp.name == "Default"
    assert exp.lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_experiment_returns_an_id_that_get_experiment_resolves(client):
    name = unique_name()
    before = int(time.time() * 1000)
    exp_id = client.create_experiment(name)
    assert isinstance(exp_id, str) and exp_id.isdigit() and exp_id != "0"
    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.lifecycle_stage == LifecycleStage.ACTIVE
    assert exp.tags == {}
    assert exp.artifact_location  # server fills in a default location
    assert exp.artifact_location.rstrip("/").endswith(exp_id)
    assert before - 5000 <= exp.creation_time <= int(time.time() * 1000) + 5000
    assert exp.last_update_time == exp.creation_time


def test_create_experiment_with_tags_stores_the_tags(client):
    exp_id = client.create_experiment(unique_name(), tags={"team": "core", "priority": "1"})
    assert client.get_experiment(exp_id).tags == {"team": "core", "priority": "1"}


def test_create_experiment_with_explicit_artifact_location_keeps_it(client, tmp_path):
    location = (tmp_path / "custom-art").as_uri()
    exp_id = client.create_experiment(unique_name(), artifact_location=location)
    assert client.get_experiment(exp_id).artifact_location == location


def test_experiment_ids_increase_with_each_creation(client):
    first = int(client.create_experiment(unique_name()))
    second = int(client.create_experiment(unique_name()))
    assert second > first


def test_get_experiment_by_name_finds_the_experiment(client):
    name = unique_name()
    exp_id = client.create_experiment(name)
    exp = client.get_experiment_by_name(name)
    assert exp is not None
    assert exp.experiment_id == exp_id
    assert exp.name == name


def test_get_experiment_by_name_returns_none_for_unknown_name(client):
    # The server answers RESOURCE_DOES_NOT_EXIST; the client maps that to None.
    assert client.get_experiment_by_name(unique_name("missing")) is None


def test_duplicate_experiment_name_is_rejected_with_resource_already_exists(client):
    name = unique_name()
    client.create_experiment(name)
    with raises_mlflow_error("RESOURCE_ALREADY_EXISTS", match=name):
        client.create_experiment(name)


def test_get_experiment_with_unknown_id_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST", match="No Experiment with id=987654321"):
        client.get_experiment("987654321")


def test_get_experiment_with_non_numeric_id_is_invalid_parameter_value(client):
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.get_experiment("not-a-number")


def test_empty_experiment_name_is_invalid_parameter_value(client, rest):
    # The python client refuses "" before sending; the server must refuse it as well.
    resp = rest.post("/api/2.0/mlflow/experiments/create", json={"name": ""})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# --------------------------------------------------------------------------- rename


def test_rename_experiment_changes_the_name_and_frees_the_old_one(client):
    old, new = unique_name("old"), unique_name("new")
    exp_id = client.create_experiment(old)
    created = client.get_experiment(exp_id)
    time.sleep(0.01)
    client.rename_experiment(exp_id, new)
    renamed = client.get_experiment(exp_id)
    assert renamed.name == new
    # A rename is an update: it advances last_update_time (the sleep makes the clock move).
    assert renamed.last_update_time > created.last_update_time, (created, renamed)
    assert client.get_experiment_by_name(new).experiment_id == exp_id
    assert client.get_experiment_by_name(old) is None


def test_rename_deleted_experiment_is_invalid_state_with_http_500(client, rest):
    # MLflow maps INVALID_STATE to HTTP 500 (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS), so
    # the python client only sees a retry error; check the wire response instead.
    exp_id = client.create_experiment(unique_name())
    client.delete_experiment(exp_id)
    resp = rest.post(
        "/api/2.0/mlflow/experiments/update",
        json={"experiment_id": exp_id, "new_name": unique_name("renamed")},
    )
    assert resp.status_code == 500
    body = resp.json()
    assert body["error_code"] == "INVALID_STATE"
    assert body["message"] == "Cannot rename a non-active experiment."


def test_rename_unknown_experiment_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.rename_experiment("987654321", unique_name())


# --------------------------------------------------------------------------- delete / restore


def test_delete_experiment_marks_it_deleted_but_keeps_it_readable(client):
    name = unique_name()
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    exp = client.get_experiment(exp_id)
    assert exp.lifecycle_stage == LifecycleStage.DELETED
    # Lookup by name also sees deleted experiments.
    assert client.get_experiment_by_name(name).lifecycle_stage == LifecycleStage.DELETED


def test_delete_experiment_also_deletes_its_runs_and_restore_brings_them_back(client):
    exp_id = client.create_experiment(unique_name())
    run = client.create_run(exp_id)
    client.delete_experiment(exp_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


def test_name_of_a_deleted_experiment_cannot_be_reused(client):
    name = unique_name()
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    with raises_mlflow_error("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)


def test_deleting_an_already_deleted_experiment_is_resource_does_not_exist(client):
    exp_id = client.create_experiment(unique_name())
    client.delete_experiment(exp_id)
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.delete_experiment(exp_id)


def test_restoring_an_active_experiment_is_resource_does_not_exist(client):
    exp_id = client.create_experiment(unique_name())
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.restore_experiment(exp_id)


def test_delete_unknown_experiment_is_resource_does_not_exist(client):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.delete_experiment("987654321")


def test_creating_a_run_in_a_deleted_experiment_is_invalid_parameter_value(client):
    exp_id = client.create_experiment(unique_name())
    client.delete_experiment(exp_id)
    msg = f"The experiment {exp_id} must be in the 'active' state. Current state is deleted."
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match=msg):
        client.create_run(exp_id)


# --------------------------------------------------------------------------- experiment tags


def test_set_experiment_tag_adds_and_overwrites_values(client, experiment_id):
    client.set_experiment_tag(experiment_id, "stage", "dev")
    client.set_experiment_tag(experiment_id, "owner", "ann")
    assert client.get_experiment(experiment_id).tags == {"stage": "dev", "owner": "ann"}
    client.set_experiment_tag(experiment_id, "stage", "prod")
    assert client.get_experiment(experiment_id).tags == {"stage": "prod", "owner": "ann"}


def test_delete_experiment_tag_removes_only_that_tag(client, experiment_id):
    client.set_experiment_tag(experiment_id, "a", "1")
    client.set_experiment_tag(experiment_id, "b", "2")
    client.delete_experiment_tag(experiment_id, "a")
    assert client.get_experiment(experiment_id).tags == {"b": "2"}


def test_delete_missing_experiment_tag_is_resource_does_not_exist(client, experiment_id):
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST", match="No tag with name: nope"):
        client.delete_experiment_tag(experiment_id, "nope")


def test_setting_a_tag_on_a_deleted_experiment_is_invalid_parameter_value(client):
    exp_id = client.create_experiment(unique_name())
    client.delete_experiment(exp_id)
    msg = f"The experiment {exp_id} must be in the 'active' state. Current state is deleted."
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match=msg):
        client.set_experiment_tag(exp_id, "k", "v")


def test_experiment_tag_key_with_invalid_characters_is_rejected(client, experiment_id):
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.set_experiment_tag(experiment_id, "bad!key", "v")


# --------------------------------------------------------------------------- search


@pytest.fixture(scope="module")
def search_family(client):
    """Five experiments sharing a unique prefix: alpha..echo, two tagged, one deleted."""
    prefix = unique_name("search")
    ids = {}
    for suffix in ["charlie", "alpha", "echo", "bravo", "delta"]:
        tags = {}
        if suffix in ("alpha", "bravo"):
            tags = {"group": "first", "kind": suffix}
        ids[suffix] = client.create_experiment(f"{prefix}-{suffix}", tags=tags)
        time.sleep(0.005)  # distinct creation_time values
    client.delete_experiment(ids["echo"])
    return prefix, ids


def test_search_experiments_filters_on_name_like(client, search_family):
    prefix, _ = search_family
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(_names(found)) == sorted(
        f"{prefix}-{s}" for s in ["alpha", "bravo", "charlie", "delta"]
    )


def test_search_experiments_filters_on_exact_name_and_attribute_prefix(client, search_family):
    prefix, ids = search_family
    found = client.search_experiments(filter_string=f"attribute.name = '{prefix}-bravo'")
    assert [e.experiment_id for e in found] == [ids["bravo"]]


def test_search_experiments_name_ilike_is_case_insensitive(client, search_family):
    prefix, ids = search_family
    found = client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-AL%'")
    assert [e.experiment_id for e in found] == [ids["alpha"]]


def test_search_experiments_name_like_is_case_sensitive(client, search_family):
    prefix, _ = search_family
    assert list(client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}-%'")) == []


def test_search_experiments_filters_on_tags(client, search_family):
    prefix, ids = search_family
    found = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND tags.group = 'first'",
        order_by=["name ASC"],
    )
    assert [e.experiment_id for e in found] == [ids["alpha"], ids["bravo"]]
    found = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND tags.kind != 'alpha'"
    )
    assert [e.experiment_id for e in found] == [ids["bravo"]]
    found = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND tags.`kind` LIKE 'br%'"
    )
    assert [e.experiment_id for e in found] == [ids["bravo"]]


def test_search_experiments_filters_on_creation_time(client, search_family):
    prefix, ids = search_family
    charlie = client.get_experiment(ids["charlie"])
    found = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND creation_time > {charlie.creation_time}",
        view_type=ViewType.ALL,
    )
    # The fixture creates charlie, alpha, echo, bravo, delta in that order, a few ms apart.
    times = [client.get_experiment(ids[s]).creation_time for s in ["charlie", "alpha", "echo", "bravo", "delta"]]
    assert times == sorted(set(times)), f"creation times must strictly increase: {times}"
    expected = {ids[s] for s in ["alpha", "echo", "bravo", "delta"]}  # echo is deleted: ViewType.ALL
    assert {e.experiment_id for e in found} == expected
    assert ids["charlie"] not in {e.experiment_id for e in found}


def test_search_experiments_orders_by_name_ascending_and_descending(client, search_family):
    prefix, _ = search_family
    flt = f"name LIKE '{prefix}%'"
    asc = _names(client.search_experiments(filter_string=flt, order_by=["name ASC"]))
    desc = _names(client.search_experiments(filter_string=flt, order_by=["name DESC"]))
    expected = [f"{prefix}-{s}" for s in ["alpha", "bravo", "charlie", "delta"]]
    assert asc == expected
    assert desc == list(reversed(expected))


def test_search_experiments_orders_by_creation_time(client, search_family):
    prefix, ids = search_family
    flt = f"name LIKE '{prefix}%'"
    creation_order = [ids[s] for s in ["charlie", "alpha", "bravo", "delta"]]
    asc = client.search_experiments(filter_string=flt, order_by=["creation_time ASC"])
    assert [e.experiment_id for e in asc] == creation_order
    # Default order is creation_time DESC (then experiment_id ASC).
    default = client.search_experiments(filter_string=flt)
    assert [e.experiment_id for e in default] == list(reversed(creation_order))


def test_search_experiments_view_type_selects_active_deleted_or_all(client, search_family):
    prefix, ids = search_family
    flt = f"name LIKE '{prefix}%'"
    active = {e.experiment_id for e in client.search_experiments(filter_string=flt)}
    deleted = {
        e.experiment_id
        for e in client.search_experiments(filter_string=flt, view_type=ViewType.DELETED_ONLY)
    }
    everything = {
        e.experiment_id
        for e in client.search_experiments(filter_string=flt, view_type=ViewType.ALL)
    }
    assert active == {ids[s] for s in ["alpha", "bravo", "charlie", "delta"]}
    assert deleted == {ids["echo"]}
    assert everything == set(ids.values())


def test_search_experiments_pages_with_max_results_and_page_token(client, search_family):
    prefix, ids = search_family
    flt = f"name LIKE '{prefix}%'"
    seen = []
    token = None
    pages = 0
    while True:
        page = client.search_experiments(
            filter_string=flt,
            view_type=ViewType.ALL,
            max_results=2,
            order_by=["name ASC"],
            page_token=token,
        )
        assert len(page) <= 2
        seen.extend(_names(page))
        pages += 1
        token = page.token
        if not token:
            break
        assert pages < 10, "paging did not terminate"
    assert pages == 3
    assert seen == [f"{prefix}-{s}" for s in ["alpha", "bravo", "charlie", "delta", "echo"]]


def test_search_experiments_without_filter_includes_default_experiment(client):
    found = client.search_experiments(filter_string="name = 'Default'")
    assert [e.experiment_id for e in found] == ["0"]


def test_search_experiments_with_invalid_filter_is_invalid_parameter_value(client):
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.search_experiments(filter_string="name ~ 'x'")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.search_experiments(filter_string="metrics.acc > 1")


def test_search_experiments_with_invalid_order_by_is_invalid_parameter_value(client):
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.search_experiments(order_by=["artifact_location ASC"])
