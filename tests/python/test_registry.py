"""Model registry through MlflowClient (no log_model): registered models, versions, stages,
aliases, tags, search and error codes, plus the wire shapes MLflow's server answers with."""

from __future__ import annotations

import time
import warnings

import pytest
from helpers import error_body, raises_mlflow_error, unique_name

API = "/api/2.0/mlflow"


@pytest.fixture(autouse=True)
def _quiet_stage_deprecation():
    # Stages and get_latest_versions are deprecated in MLflow 3 but still served.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


@pytest.fixture
def model_name(client):
    name = unique_name("model")
    client.create_registered_model(name)
    return name


def _version(client, name, run_id, path="model"):
    return client.create_model_version(name, f"runs:/{run_id}/{path}", run_id=run_id)


def test_create_and_get_registered_model_with_tags_and_description(client):
    name = unique_name("rm")
    rm = client.create_registered_model(name, tags={"team": "ml"}, description="first")
    assert rm.name == name
    assert rm.description == "first"
    assert rm.tags == {"team": "ml"}
    assert rm.creation_timestamp > 0
    assert rm.last_updated_timestamp == rm.creation_timestamp
    got = client.get_registered_model(name)
    assert (got.name, got.description, got.tags) == (name, "first", {"team": "ml"})
    assert got.latest_versions == []
    assert got.aliases == {}


def test_model_version_from_a_run_source(client, model_name, run_id):
    mv = _version(client, model_name, run_id)
    assert mv.name == model_name
    assert mv.version == "1"
    assert mv.current_stage == "None"
    assert mv.status == "READY"
    assert mv.run_id == run_id
    assert mv.source == f"runs:/{run_id}/model"
    got = client.get_model_version(model_name, "1")
    assert got.source == mv.source and got.run_id == run_id
    assert client.get_model_version_download_uri(model_name, "1") == f"runs:/{run_id}/model"
    mv2 = client.create_model_version(
        model_name, "s3://bucket/model", tags={"k": "v"}, description="from s3"
    )
    assert mv2.version == "2"
    assert mv2.tags == {"k": "v"}
    assert mv2.description == "from s3"
    assert mv2.run_id in ("", None)


def test_stage_transitions_archive_existing_versions(client, model_name, run_id):
    for _ in range(3):
        _version(client, model_name, run_id)
    mv = client.transition_model_version_stage(model_name, "1", "staging")
    assert mv.current_stage == "Staging"
    client.transition_model_version_stage(model_name, "1", "Production")
    client.transition_model_version_stage(model_name, "2", "Staging")
    mv = client.transition_model_version_stage(
        model_name, "2", "Production", archive_existing_versions=True
    )
    assert mv.current_stage == "Production"
    assert client.get_model_version(model_name, "1").current_stage == "Archived"
    assert client.get_model_version(model_name, "3").current_stage == "None"

    latest = client.get_latest_versions(model_name)
    assert sorted((v.current_stage, v.version) for v in latest) == [
        ("Archived", "1"),
        ("None", "3"),
        ("Production", "2"),
    ]
    assert [v.version for v in client.get_latest_versions(model_name, stages=["production"])] == [
        "2"
    ]
    rm = client.get_registered_model(model_name)
    assert sorted(v.version for v in rm.latest_versions) == ["1", "2", "3"]

    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="Invalid Model Version stage"):
        client.transition_model_version_stage(model_name, "3", "bogus")


def test_aliases_set_get_move_and_delete(client, model_name, run_id):
    _version(client, model_name, run_id)
    _version(client, model_name, run_id)
    client.set_registered_model_alias(model_name, "champion", "1")
    mv = client.get_model_version_by_alias(model_name, "champion")
    assert mv.version == "1"
    assert mv.aliases == ["champion"]
    client.set_registered_model_alias(model_name, "champion", "2")
    assert client.get_model_version_by_alias(model_name, "champion").version == "2"
    assert client.get_model_version(model_name, "1").aliases == []
    assert client.get_registered_model(model_name).aliases == {"champion": "2"}

    client.delete_registered_model_alias(model_name, "champion")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="alias champion not found"):
        client.get_model_version_by_alias(model_name, "champion")

    # Deleting a version drops the aliases that pointed at it.
    client.set_registered_model_alias(model_name, "doomed", "2")
    client.delete_model_version(model_name, "2")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.get_model_version_by_alias(model_name, "doomed")
    assert client.get_registered_model(model_name).aliases == {}

    with raises_mlflow_error("INVALID_PARAMETER_VALUE", match="reserved"):
        client.set_registered_model_alias(model_name, "latest", "1")
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.set_registered_model_alias(model_name, "x", "99")


def test_version_numbers_are_never_reused(client, model_name, run_id):
    for _ in range(3):
        _version(client, model_name, run_id)
    client.delete_model_version(model_name, "3")
    client.delete_model_version(model_name, "2")
    assert _version(client, model_name, run_id).version == "4"
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(model_name, "3")


def test_rename_carries_versions_and_aliases(client, model_name, run_id):
    _version(client, model_name, run_id)
    client.set_registered_model_alias(model_name, "prod", "1")
    client.set_model_version_tag(model_name, "1", "k", "v")
    new_name = unique_name("renamed")
    client.rename_registered_model(model_name, new_name)
    assert client.get_registered_model(new_name).aliases == {"prod": "1"}
    mv = client.get_model_version(new_name, "1")
    assert mv.name == new_name
    assert mv.tags == {"k": "v"}
    assert mv.aliases == ["prod"]
    assert client.get_model_version_by_alias(new_name, "prod").version == "1"
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(model_name)
    taken = unique_name("taken")
    client.create_registered_model(taken)
    with raises_mlflow_error("RESOURCE_ALREADY_EXISTS"):
        client.rename_registered_model(new_name, taken)


def test_tags_and_updates(client, model_name, run_id):
    client.set_registered_model_tag(model_name, "a", "1")
    client.set_registered_model_tag(model_name, "a", "2")
    client.set_registered_model_tag(model_name, "b", "3")
    client.delete_registered_model_tag(model_name, "b")
    assert client.get_registered_model(model_name).tags == {"a": "2"}
    rm = client.update_registered_model(model_name, description="described")
    assert rm.description == "described"

    _version(client, model_name, run_id)
    client.set_model_version_tag(model_name, "1", "x", "y")
    client.set_model_version_tag(model_name, "1", "z", "w")
    client.delete_model_version_tag(model_name, "1", "z")
    assert client.get_model_version(model_name, "1").tags == {"x": "y"}
    mv = client.update_model_version(model_name, "1", description="v1 notes")
    assert mv.description == "v1 notes"


def test_deletes(client, run_id):
    name = unique_name("del")
    client.create_registered_model(name)
    _version(client, name, run_id)
    client.set_registered_model_alias(name, "a", "1")
    client.delete_registered_model(name)
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name)
    assert client.search_model_versions(f"name = '{name}'") == []
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.delete_registered_model(name)
    # The name is free again, from version 1.
    client.create_registered_model(name)
    assert _version(client, name, run_id).version == "1"


def test_search_registered_models_with_filters_order_and_pages(client):
    prefix = unique_name("srch")
    names = [f"{prefix}-{s}" for s in ("a", "b", "c", "d")]
    for n in names:
        client.create_registered_model(n)
    client.set_registered_model_tag(names[2], "team", "vision")

    got = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert [m.name for m in got] == names
    got = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert [m.name for m in got] == names
    got = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"]
    )
    assert [m.name for m in got] == names[::-1]
    got = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%' AND tags.team = 'vision'"
    )
    assert [m.name for m in got] == [names[2]]
    got = client.search_registered_models(filter_string=f"name = '{names[1]}'")
    assert [m.name for m in got] == [names[1]]

    page = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'", max_results=3)
    assert [m.name for m in page] == names[:3]
    assert page.token
    page2 = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%'", max_results=3, page_token=page.token
    )
    assert [m.name for m in page2] == names[3:]
    assert not page2.token

    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.search_registered_models(filter_string="bogus = 'x'")


def test_search_hides_prompts_but_keeps_models_without_the_tag(client, rest):
    prefix = unique_name("prompt")
    plain, prompt, not_prompt = (f"{prefix}-{s}" for s in ("plain", "prompt", "false"))
    client.create_registered_model(plain)
    # The client refuses to tag models as prompts itself; the REST API accepts it.
    for name, value in ((prompt, "true"), (not_prompt, "false")):
        resp = rest.post(
            f"{API}/registered-models/create",
            json={"name": name, "tags": [{"key": "mlflow.prompt.is_prompt", "value": value}]},
        )
        assert resp.status_code == 200, resp.text
    got = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(m.name for m in got) == sorted([plain, not_prompt])
    resp = rest.get(
        f"{API}/registered-models/search",
        params={"filter": f"name LIKE '{prefix}-%' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
    )
    assert [m["name"] for m in resp.json()["registered_models"]] == [prompt]


def test_search_model_versions_with_filters(client, run_id, experiment_id):
    name = unique_name("mvs")
    client.create_registered_model(name)
    other_run = client.create_run(experiment_id).info.run_id
    _version(client, name, run_id)
    _version(client, name, other_run)
    client.create_model_version(name, "s3://bucket/third")
    client.set_model_version_tag(name, "2", "q", "good")

    got = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in got] == ["3", "2", "1"]
    got = client.search_model_versions(f"name = '{name}' AND run_id = '{other_run}'")
    assert [v.version for v in got] == ["2"]
    got = client.search_model_versions(f"run_id IN ('{run_id}', '{other_run}')")
    assert sorted(v.version for v in got) == ["1", "2"]
    got = client.search_model_versions(f"name = '{name}' AND tags.q = 'good'")
    assert [v.version for v in got] == ["2"]
    got = client.search_model_versions(f"name = '{name}' AND version_number >= 2")
    assert [v.version for v in got] == ["3", "2"]
    got = client.search_model_versions(
        f"name = '{name}' AND source_path LIKE 's3://%'", order_by=["version_number ASC"]
    )
    assert [v.version for v in got] == ["3"]
    got = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    assert [v.version for v in got] == ["1", "2", "3"]
    page = client.search_model_versions(f"name = '{name}'", max_results=2)
    assert [v.version for v in page] == ["3", "2"]
    assert page.token
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.search_model_versions("bogus = 'x'")


def test_search_model_versions_default_order_is_most_recently_updated_first(client, run_id):
    """MLflow's default order: last_updated_timestamp DESC, then name ASC, version DESC."""
    prefix = unique_name("mvorder")
    first, second = f"{prefix}-a", f"{prefix}-b"
    for name in (first, second):
        client.create_registered_model(name)
        for _ in range(3):
            _version(client, name, run_id)
            time.sleep(0.005)
    # Updating a version moves it to the front; the rest keep their update order.
    client.update_model_version(first, "1", description="touched")
    got = client.search_model_versions(f"name LIKE '{prefix}-%'")
    assert [(v.name, v.version) for v in got] == [
        (first, "1"), (second, "3"), (second, "2"), (second, "1"), (first, "3"), (first, "2")
    ]
    page = client.search_model_versions(f"name LIKE '{prefix}-%'", max_results=2)
    assert [(v.name, v.version) for v in page] == [(first, "1"), (second, "3")]
    rest = client.search_model_versions(f"name LIKE '{prefix}-%'", max_results=2, page_token=page.token)
    assert [(v.name, v.version) for v in rest] == [(second, "2"), (second, "1")]
    # An explicit order replaces the default; name and version still break ties.
    got = client.search_model_versions(f"name LIKE '{prefix}-%'", order_by=["creation_timestamp ASC"])
    assert [(v.name, v.version) for v in got][:2] == [(first, "1"), (first, "2")]


def test_error_codes(client, model_name, run_id):
    with raises_mlflow_error("RESOURCE_ALREADY_EXISTS", match="already exists"):
        client.create_registered_model(model_name)
    missing = unique_name("missing")
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST", match="not found"):
        client.get_registered_model(missing)
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(model_name, "7")
    with raises_mlflow_error("RESOURCE_DOES_NOT_EXIST"):
        client.create_model_version(missing, "s3://bucket/x")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.create_model_version(model_name, "/some/local/path")
    with raises_mlflow_error("INVALID_PARAMETER_VALUE"):
        client.create_registered_model("bad/name")


def test_wire_shapes_match_mlflow(rest, model_name, run_id):
    resp = rest.post(
        f"{API}/model-versions/create",
        json={"name": model_name, "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    assert resp.status_code == 200, resp.text
    mv = resp.json()["model_version"]
    assert mv["version"] == "1"
    assert isinstance(mv["creation_timestamp"], int)
    assert mv["description"] == "" and mv["run_link"] == ""
    assert "tags" not in mv and "aliases" not in mv

    resp = rest.get(f"{API}/registered-models/get", params={"name": model_name})
    rm = resp.json()["registered_model"]
    assert isinstance(rm["last_updated_timestamp"], int)
    assert "tags" not in rm and "description" not in rm and "aliases" not in rm
    assert [v["version"] for v in rm["latest_versions"]] == ["1"]

    resp = rest.post(
        f"{API}/registered-models/alias",
        json={"name": model_name, "alias": "champ", "version": "1"},
    )
    assert resp.status_code == 200 and resp.json() == {}
    resp = rest.get(f"{API}/registered-models/alias", params={"name": model_name, "alias": "champ"})
    assert resp.json()["model_version"]["aliases"] == ["champ"]
    resp = rest.get(f"{API}/model-versions/search", params={"filter": f"name = '{model_name}'"})
    assert "aliases" not in resp.json()["model_versions"][0]
    resp = rest.get(f"{API}/model-versions/search", params={"filter": "name = 'no-such-model'"})
    assert resp.json() == {}

    body = error_body(
        rest.get(f"{API}/registered-models/alias", params={"name": model_name, "alias": "nope"}),
        "INVALID_PARAMETER_VALUE",
        400,
    )
    assert body["message"] == "Registered model alias nope not found."
    error_body(
        rest.get(f"{API}/model-versions/get", params={"name": model_name, "version": "9"}),
        "RESOURCE_DOES_NOT_EXIST",
        404,
    )
    error_body(
        rest.post(
            f"{API}/model-versions/transition-stage",
            json={"name": model_name, "version": "1", "stage": "bogus"},
        ),
        "INVALID_PARAMETER_VALUE",
        400,
    )
    resp = rest.request(
        "PATCH",
        f"{API}/model-versions/update",
        json={"name": model_name, "version": "1", "description": "d"},
    )
    assert resp.json()["model_version"]["description"] == "d"
    resp = rest.request("DELETE", f"{API}/registered-models/delete", json={"name": model_name})
    assert resp.status_code == 200 and resp.json() == {}
