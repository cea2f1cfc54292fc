"""Feature store end to end (docs/feature-store.md is the contract).

Feature tables are Delta tables on the artifacts destination; every check that can be made
against an independent reader is made with the Python `deltalake` package (content, version
history, time travel, file lists), and point-in-time joins are checked by hand on small cases
and against pandas' merge_asof on random data. Runs on the local artifacts directory and, from
scripts/test, on S3 (moto on loopback).

ferroflow-only: every test is skipped against the reference mlflow server.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import time
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from helpers import error_body, unique_name

FS = "/api/2.0/feature-store"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("mlflow server has no feature store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- helpers


def _name(prefix: str = "ft") -> str:
    """A unique table name (underscores only: the spec does not promise more)."""
    return unique_name(prefix).replace("-", "_")


def _ok(resp):
    assert resp.status_code == 200, (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:3000]}"
    )
    return resp


def _delete(rest, path, body):
    return rest.request("DELETE", FS + path, json=body)


SCHEMA_USER = [
    {"name": "user_id", "type": "long"},
    {"name": "clicks", "type": "long"},
    {"name": "spend", "type": "double"},
    {"name": "name", "type": "string"},
]
SCHEMA_TS = [
    {"name": "user_id", "type": "long"},
    {"name": "ts", "type": "timestamp"},
    {"name": "clicks", "type": "long"},
    {"name": "spend", "type": "double"},
]


def _create(rest, name, schema=None, primary_keys=("user_id",), timestamp_key=None, **extra):
    body = {"name": name, "primary_keys": list(primary_keys), **extra}
    if schema is not None:
        body["schema"] = schema
    if timestamp_key is not None:
        body["timestamp_key"] = timestamp_key
    r = _ok(rest.post(FS + "/feature-tables/create", json=body))
    ft = r.json()["feature_table"]
    assert ft["name"] == name, ft
    return ft


def _write(rest, name, records, mode="merge"):
    r = _ok(rest.post(FS + "/feature-tables/write", json={"name": name, "mode": mode, "records": records}))
    body = r.json()
    assert body["num_rows"] == len(records), body
    assert "metrics" in body, body
    return body


def _read(rest, name, **fields):
    r = _ok(rest.post(FS + "/feature-tables/read", json={"name": name, **fields}))
    body = r.json()
    assert set(body) >= {"version", "schema", "records"}, body
    return body


def _get(rest, name):
    return _ok(rest.get(FS + "/feature-tables/get", params={"name": name})).json()["feature_table"]


def _history(rest, name, **params):
    r = _ok(rest.get(FS + "/feature-tables/history", params={"name": name, **params}))
    return r.json()["history"]


def _latest_version(ft):
    """The describe's latest Delta version (the spec names the fact, not the field)."""
    for key in ("latest_version", "version", "delta_version", "latest_delta_version"):
        if key in ft:
            return int(ft[key])
    raise AssertionError(f"no latest Delta version in feature table {ft}")


def _tags(ft):
    tags = ft.get("tags") or {}
    if isinstance(tags, list):
        return {t["key"]: t["value"] for t in tags}
    return dict(tags)


def _types(schema):
    return {f["name"]: f["type"] for f in schema}


def _norm_value(v):
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        t = pd.Timestamp(v).as_unit("us")
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _norm(rows, ts_cols=(), sort_by=None):
    """Rows as comparable dicts (timestamps as UTC pd.Timestamp, NaN as None), sorted."""
    out = []
    for r in rows:
        d = {}
        for k, v in r.items():
            v = _norm_value(v)
            if k in ts_cols and isinstance(v, str):
                v = _norm_value(pd.Timestamp(v))
            d[k] = v
        out.append(d)
    if sort_by:
        out.sort(key=lambda d: tuple((d.get(k) is None, str(d.get(k))) for k in sort_by))
    return out


def _frame(rows, ts_cols=(), sort_by=None):
    return pd.DataFrame(_norm(rows, ts_cols, sort_by))


def _assert_same_rows(got, want, ts_cols=(), sort_by=("user_id",), what=""):
    g = _norm(got, ts_cols, sort_by)
    w = _norm(want, ts_cols, sort_by)
    assert len(g) == len(w), (what, len(g), len(w), g[:5], w[:5])
    for i, (a, b) in enumerate(zip(g, w)):
        assert a == b, (what, i, a, b)


def _storage_options(location):
    if location.startswith(("s3://", "s3a://")):
        opts = {
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        }
        if os.environ.get("AWS_ENDPOINT_URL"):
            opts["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"]
        return opts
    return None


def _local_path(location):
    if location.startswith("file://"):
        return unquote(urlparse(location).path)
    return location


def _delta(location, version=None):
    loc = location if "://" in location and not location.startswith("file://") else _local_path(location)
    return DeltaTable(loc, version=version, storage_options=_storage_options(location))


def _delta_rows(table: DeltaTable):
    return table.to_pyarrow_table().to_pylist()


def _s3_split(uri):
    p = urlparse(uri)
    return p.netloc, p.path.lstrip("/")


def _list_files(rest, location):
    """Every file under a location as (relative path, loader) pairs: local directory,
    file://, s3:// (moto) or mlflow-artifacts:/ (through the proxied artifact API)."""
    if location.startswith("mlflow-artifacts:"):
        root = urlparse(location).path.strip("/")
        out = []

        def walk(rel):
            listed = _ok(rest.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": rel})).json()
            entries = listed.get("files", [])
            if not entries and rel == root:
                # A single file: the location itself.
                out.append(("", lambda r=rel: _ok(rest.get(f"/api/2.0/mlflow-artifacts/artifacts/{r}")).content))
            for e in entries:
                p = e["path"]
                full = p if p.startswith(rel + "/") else f"{rel}/{p}"
                if e.get("is_dir"):
                    walk(full)
                else:
                    out.append((full[len(root):].lstrip("/"),
                                lambda f=full: _ok(rest.get(f"/api/2.0/mlflow-artifacts/artifacts/{f}")).content))

        walk(root)
        return out
    if location.startswith(("s3://", "s3a://")):
        import boto3

        bucket, prefix = _s3_split(location)
        s3 = boto3.client("s3")
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/")):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = key[len(prefix.rstrip("/")):].lstrip("/")
                if rel and not key.startswith(prefix.rstrip("/") + "/"):
                    continue  # a sibling sharing the prefix
                out.append((rel, lambda k=key: s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        return out
    path = _local_path(location)
    if os.path.isfile(path):
        return [("", lambda p=path: open(p, "rb").read())]
    out = []
    for dirpath, _, files in os.walk(path):
        for f in files:
            full = os.path.join(dirpath, f)
            out.append((os.path.relpath(full, path), lambda p=full: open(p, "rb").read()))
    return out


def _data_files(rest, location):
    """Basenames of the Parquet data files stored under a Delta table (not its log)."""
    return {
        os.path.basename(rel)
        for rel, _ in _list_files(rest, location)
        if rel.endswith(".parquet") and "_delta_log" not in rel
    }


def _read_parquet_location(rest, location):
    parts = [
        pq.read_table(io.BytesIO(load()))
        for rel, load in sorted(_list_files(rest, location), key=lambda x: x[0])
        if (rel == "" or rel.endswith(".parquet")) and "_delta_log" not in rel
    ]
    assert parts, f"no Parquet file at {location}"
    return pa.concat_tables(parts, promote_options="default")


def _assert_location(location, destination, name):
    if destination is None:
        return
    if "://" in destination:
        assert location.rstrip("/") == f"{destination.rstrip('/')}/features/{name}", location
    else:
        assert os.path.realpath(_local_path(location)) == os.path.realpath(
            os.path.join(destination, "features", name)
        ), location


def _rfc(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _find(obj, pred):
    """Every dict nested in obj for which pred holds."""
    found = []
    if isinstance(obj, dict):
        if pred(obj):
            found.append(obj)
        for v in obj.values():
            found += _find(v, pred)
    elif isinstance(obj, list):
        for v in obj:
            found += _find(v, pred)
    return found


def _numbers(obj, key_part):
    """Numeric values of keys containing key_part (case-insensitive), anywhere in obj."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if key_part in k.lower() and isinstance(v, (int, float)) and not isinstance(v, bool):
                found.append(v)
            found += _numbers(v, key_part)
    elif isinstance(obj, list):
        for v in obj:
            found += _numbers(v, key_part)
    return found


USERS = [
    {"user_id": 1, "clicks": 10, "spend": 1.5, "name": "ann"},
    {"user_id": 2, "clicks": 20, "spend": 2.5, "name": "bob"},
    {"user_id": 3, "clicks": 30, "spend": 3.25, "name": "cid"},
]


# --------------------------------------------------------------------------- 1. tables


def test_create_from_schema_describe_and_location(rest, artifacts_destination):
    name = _name()
    ft = _create(
        rest, name, schema=SCHEMA_TS, timestamp_key="ts",
        description="user features", tags={"team": "growth", "tier": "gold"},
    )  # fmt: skip
    got = _get(rest, name)
    for desc in (ft, got):
        assert desc["name"] == name
        assert desc["primary_keys"] == ["user_id"], desc
        assert desc["timestamp_key"] == "ts", desc
        assert desc["description"] == "user features", desc
        assert _tags(desc) == {"team": "growth", "tier": "gold"}, desc
        assert _types(desc["schema"]) == {
            "user_id": "long", "ts": "timestamp", "clicks": "long", "spend": "double"
        }, desc  # fmt: skip
        assert _latest_version(desc) == 0, desc
        _assert_location(desc["location"], artifacts_destination, name)
    # A primary key is never null.
    assert [f.get("nullable") for f in got["schema"] if f["name"] == "user_id"] in ([False], [None]), got
    # Version 0 is the create: an empty Delta table any reader opens.
    table = _delta(got["location"])
    assert table.version() == 0
    assert _delta_rows(table) == []
    assert [h["operation"] for h in _history(rest, name)] == ["CREATE TABLE"]
    assert _read(rest, name)["records"] == []


def test_aliases_are_accepted(rest):
    name = _name()
    ft = _create(rest, name, schema=[
        {"name": "id", "type": "bigint"}, {"name": "a", "type": "int"},
        {"name": "b", "type": "float64"}, {"name": "c", "type": "float32"},
        {"name": "d", "type": "bool"}, {"name": "e", "type": "str"}, {"name": "f", "type": "int32"},
        {"name": "g", "type": "int64"},
    ], primary_keys=["id"])  # fmt: skip
    assert _types(ft["schema"]) == {
        "id": "long", "a": "integer", "b": "double", "c": "float", "d": "boolean", "e": "string",
        "f": "integer", "g": "long",
    }, ft  # fmt: skip


def test_create_from_json_records_takes_their_schema(rest):
    name = _name()
    records = [
        {"user_id": 1, "score": 0.5, "name": "ann", "active": True},
        {"user_id": 2, "score": 1.25, "name": "bob", "active": False},
    ]
    ft = _create(rest, name, records=records)
    assert _types(ft["schema"]) == {
        "user_id": "long", "score": "double", "name": "string", "active": "boolean"
    }, ft  # fmt: skip
    assert _latest_version(ft) == 0, ft
    body = _read(rest, name)
    assert body["version"] == 0
    _assert_same_rows(body["records"], records)
    # Version 0 is the create and the first write together.
    hist = _history(rest, name)
    assert [h["version"] for h in hist] == [0], hist
    # Records and a schema: the data must fit it.
    bad = rest.post(FS + "/feature-tables/create", json={
        "name": _name(), "primary_keys": ["user_id"], "schema": SCHEMA_USER,
        "records": [{"user_id": 1, "clicks": "many"}],
    })  # fmt: skip
    error_body(bad, "INVALID_PARAMETER_VALUE", 400)
    fits = _create(rest, _name(), schema=SCHEMA_USER, records=[{"user_id": 1, "clicks": 3}])
    assert _types(fits["schema"])["clicks"] == "long"


def _arrow_table():
    return pa.table({
        "user_id": pa.array([1, 2, 3], pa.int64()),
        "ts": pa.array([dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
                        dt.datetime(2024, 5, 2, 0, 0, 0, 250000, tzinfo=dt.timezone.utc),
                        dt.datetime(2024, 5, 3, tzinfo=dt.timezone.utc)], pa.timestamp("us", tz="UTC")),
        "score": pa.array([0.5, None, -2.75], pa.float64()),
        "cnt": pa.array([7, 8, 9], pa.int32()),
        "flag": pa.array([True, False, None], pa.bool_()),
        "label": pa.array(["a", "b", None], pa.string()),
        "day": pa.array([dt.date(2024, 5, 1), dt.date(2024, 5, 2), None], pa.date32()),
        "blob": pa.array([b"\x00\x01", b"hi", None], pa.binary()),
    })  # fmt: skip


ARROW_TYPES = {
    "user_id": "long", "ts": "timestamp", "score": "double", "cnt": "integer", "flag": "boolean",
    "label": "string", "day": "date", "blob": "binary",
}  # fmt: skip


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize("kind", ["arrow", "parquet"])
def test_create_from_arrow_or_parquet_body(rest, kind):
    name = _name()
    table = _arrow_table()
    body, content_type = (_ipc(table), ARROW) if kind == "arrow" else (_parquet(table), PARQUET)
    r = _ok(rest.post(
        FS + "/feature-tables/create",
        params={"name": name, "primary_keys": "user_id", "timestamp_key": "ts", "description": kind},
        content=body, headers={"Content-Type": content_type},
    ))  # fmt: skip
    ft = r.json()["feature_table"]
    assert ft["primary_keys"] == ["user_id"] and ft["timestamp_key"] == "ts", ft
    assert ft["description"] == kind, ft
    assert _types(ft["schema"]) == ARROW_TYPES, ft
    ts_cols = ("ts",)
    # An independent Delta reader sees the rows as sent.
    _assert_same_rows(_delta_rows(_delta(ft["location"])), table.to_pylist(), ts_cols, what="deltalake")
    # So does a JSON read; binary last (its JSON form is checked on its own below).
    got = _read(rest, name)
    assert got["version"] == 0
    no_blob = [{k: v for k, v in r.items() if k != "blob"} for r in table.to_pylist()]
    _assert_same_rows([{k: v for k, v in r.items() if k != "blob"} for r in got["records"]], no_blob, ts_cols)
    by_id = {r["user_id"]: r for r in got["records"]}
    assert by_id[1]["day"] == "2024-05-01" and by_id[3]["day"] is None, by_id
    assert pd.Timestamp(by_id[2]["ts"]) == pd.Timestamp("2024-05-02T00:00:00.25Z"), by_id
    assert by_id[1]["ts"].endswith(("Z", "+00:00")), by_id
    # binary is hexadecimal in JSON, in and out.
    _write(rest, name, [{"user_id": 4, "ts": "2024-05-04T00:00:00Z", "blob": b"xyz".hex(),
                         "day": "2024-05-04"}])  # fmt: skip
    row4 = [r for r in _delta_rows(_delta(ft["location"])) if r["user_id"] == 4]
    assert len(row4) == 1 and row4[0]["blob"] == b"xyz" and row4[0]["day"] == dt.date(2024, 5, 4), row4
    assert [by_id[i]["blob"] for i in (1, 2, 3)] == [
        b"\x00\x01".hex(), b"hi".hex(), None
    ], by_id  # fmt: skip


def test_search_by_name_and_tags_with_pages(rest):
    prefix = _name("srch")
    team = unique_name("team")
    a, b, c = f"{prefix}_a", f"{prefix}_b", f"{prefix}_c"
    _create(rest, a, schema=SCHEMA_USER, tags={"team": team, "env": "prod"})
    _create(rest, b, schema=SCHEMA_USER, tags={"team": team, "env": "dev"})
    _create(rest, c, schema=SCHEMA_USER, tags={"team": "other"})

    def search(filter_string, **params):
        names, token, pages = [], None, 0
        while True:
            q = {"filter_string": filter_string, **params}
            if token:
                q["page_token"] = token
            body = _ok(rest.get(FS + "/feature-tables/search", params=q)).json()
            page = body.get("feature_tables", [])
            if "max_results" in params:
                assert len(page) <= params["max_results"], body
            names += [t["name"] for t in page]
            pages += 1
            token = body.get("next_page_token")
            if not token:
                return names, pages
            assert pages < 20, "pagination does not end"

    got, _ = search(f"name LIKE '{prefix}%'")
    assert sorted(got) == [a, b, c]
    got, _ = search(f"name ILIKE '{prefix.upper()}%'")
    assert sorted(got) == [a, b, c]
    got, _ = search(f"name = '{b}'")
    assert got == [b]
    got, _ = search(f"tags.team = '{team}'")
    assert sorted(got) == [a, b]
    got, _ = search(f"tags.team = '{team}' AND tags.env = 'prod'")
    assert got == [a]
    got, _ = search(f"name LIKE '{prefix}%' AND tags.team = 'other'")
    assert got == [c]
    got, _ = search(f"name = '{prefix}_nothing'")
    assert got == []
    got, pages = search(f"name LIKE '{prefix}%'", max_results=1)
    assert sorted(got) == [a, b, c] and pages >= 3, (got, pages)
    # Every search result describes the table.
    page = _ok(rest.get(FS + "/feature-tables/search", params={"filter_string": f"name = '{a}'"})).json()
    (desc,) = page["feature_tables"]
    assert desc["primary_keys"] == ["user_id"] and _tags(desc)["env"] == "prod", desc
    bad = rest.get(FS + "/feature-tables/search", params={"filter_string": "name LIKE"})
    error_body(bad, "INVALID_PARAMETER_VALUE", 400)


def test_tags_description_and_delete(rest):
    name = _name()
    ft = _create(rest, name, schema=SCHEMA_USER, description="before")
    _write(rest, name, USERS, mode="overwrite")
    _ok(rest.post(FS + "/feature-tables/set-tag", json={"name": name, "key": "owner", "value": "ann"}))
    _ok(rest.post(FS + "/feature-tables/set-tag", json={"name": name, "key": "pii", "value": "no"}))
    assert _tags(_get(rest, name)) == {"owner": "ann", "pii": "no"}
    _ok(rest.post(FS + "/feature-tables/set-tag", json={"name": name, "key": "owner", "value": "bob"}))
    _ok(_delete(rest, "/feature-tables/delete-tag", {"name": name, "key": "pii"}))
    assert _tags(_get(rest, name)) == {"owner": "bob"}
    _ok(rest.post(FS + "/feature-tables/update", json={"name": name, "description": "after"}))
    assert _get(rest, name)["description"] == "after"
    location = ft["location"]
    assert DeltaTable.is_deltatable(_local_path(location), storage_options=_storage_options(location))

    _ok(_delete(rest, "/feature-tables/delete", {"name": name}))
    gone = rest.get(FS + "/feature-tables/get", params={"name": name})
    error_body(gone, "RESOURCE_DOES_NOT_EXIST", 404)
    error_body(rest.post(FS + "/feature-tables/read", json={"name": name}), "RESOURCE_DOES_NOT_EXIST", 404)
    error_body(_delete(rest, "/feature-tables/delete", {"name": name}), "RESOURCE_DOES_NOT_EXIST", 404)
    # At the default location the Delta files go too.
    assert not DeltaTable.is_deltatable(_local_path(location), storage_options=_storage_options(location))
    assert _data_files(rest, location) == set()
    # The name is free again.
    again = _create(rest, name, schema=SCHEMA_USER)
    assert _latest_version(again) == 0
    assert _read(rest, name)["records"] == []


def test_create_errors(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_USER)
    dup = rest.post(FS + "/feature-tables/create", json={
        "name": name, "primary_keys": ["user_id"], "schema": SCHEMA_USER})  # fmt: skip
    error_body(dup, "RESOURCE_ALREADY_EXISTS", 400)

    def bad(**body):
        full = {"name": _name(), "primary_keys": ["user_id"], "schema": SCHEMA_TS, **body}
        r = rest.post(FS + "/feature-tables/create", json=full)
        error_body(r, "INVALID_PARAMETER_VALUE", 400)
        if full.get("name"):
            assert rest.get(FS + "/feature-tables/get", params={"name": full["name"]}).status_code != 200, body

    for bad_name in ["", "..", "../escape", "a/../../b", "/abs"]:
        bad(name=bad_name)
    bad(primary_keys=["nope"])
    bad(primary_keys=[])
    bad(timestamp_key="clicks")  # a long column
    bad(timestamp_key="missing")
    bad(primary_keys=["spend"])  # double is not a key type
    bad(schema=[{"name": "user_id", "type": "long"}, {"name": "x", "type": "nosuchtype"}])
    bad(schema=[{"name": "user_id", "type": "long"}, {"name": "user_id", "type": "string"}])
    bad(schema=None)  # neither schema nor data
    error_body(rest.get(FS + "/feature-tables/get", params={"name": _name("missing")}),
               "RESOURCE_DOES_NOT_EXIST", 404)  # fmt: skip


# --------------------------------------------------------------------------- 2. writes and reads


def test_merge_upserts_overwrite_replaces_and_time_travel(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_USER)
    v1 = _write(rest, name, USERS, mode="overwrite")
    assert v1["version"] == 1, v1
    time.sleep(1.5)
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(1.5)
    v2 = _write(rest, name, [
        {"user_id": 2, "clicks": 21, "spend": 9.75, "name": "bob2"},
        {"user_id": 4, "clicks": 40, "spend": 4.0, "name": "dan"},
    ])  # fmt: skip
    assert v2["version"] == 2, v2
    after_merge = [USERS[0], {"user_id": 2, "clicks": 21, "spend": 9.75, "name": "bob2"}, USERS[2],
                   {"user_id": 4, "clicks": 40, "spend": 4.0, "name": "dan"}]  # fmt: skip
    now = _read(rest, name)
    assert now["version"] == 2
    _assert_same_rows(now["records"], after_merge, what="after merge")
    assert _latest_version(_get(rest, name)) == 2

    # Time travel by version and by timestamp.
    old = _read(rest, name, as_of_version=1)
    assert old["version"] == 1
    _assert_same_rows(old["records"], USERS, what="as_of_version=1")
    assert _read(rest, name, as_of_version=0)["records"] == []
    by_time = _read(rest, name, as_of_timestamp=_rfc(between))
    assert by_time["version"] == 1, by_time
    _assert_same_rows(by_time["records"], USERS, what="as_of_timestamp")
    error_body(rest.post(FS + "/feature-tables/read", json={"name": name, "as_of_version": 99}))

    # Columns and keys.
    some = _read(rest, name, columns=["user_id", "spend"], keys=[{"user_id": 4}, {"user_id": 1}, {"user_id": 77}])
    assert [f["name"] for f in some["schema"]] == ["user_id", "spend"], some["schema"]
    _assert_same_rows(some["records"], [{"user_id": 1, "spend": 1.5}, {"user_id": 4, "spend": 4.0}])
    error_body(rest.post(FS + "/feature-tables/read", json={"name": name, "columns": ["nope"]}),
               "INVALID_PARAMETER_VALUE", 400)  # fmt: skip
    # GET with the fields in the query string.
    q = _ok(rest.get(FS + "/feature-tables/read", params={"name": name, "as_of_version": 1})).json()
    assert q["version"] == 1
    _assert_same_rows(q["records"], USERS)

    # Overwrite replaces everything.
    v3 = _write(rest, name, [{"user_id": 9, "clicks": 90, "spend": 0.0, "name": "zed"}], mode="overwrite")
    assert v3["version"] == 3
    assert _read(rest, name)["records"] == [{"user_id": 9, "clicks": 90, "spend": 0.0, "name": "zed"}]
    error_body(rest.post(FS + "/feature-tables/write", json={"name": name, "mode": "append", "records": USERS}),
               "INVALID_PARAMETER_VALUE", 400)  # fmt: skip
    error_body(rest.post(FS + "/feature-tables/write", json={"name": _name("nope"), "mode": "merge", "records": USERS}),
               "RESOURCE_DOES_NOT_EXIST", 404)  # fmt: skip


def test_merge_on_a_time_series_keeps_one_row_per_key_and_time(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_TS, timestamp_key="ts")
    first = [
        {"user_id": 1, "ts": "2024-01-01T00:00:00Z", "clicks": 1, "spend": 1.0},
        {"user_id": 1, "ts": "2024-01-02T00:00:00Z", "clicks": 2, "spend": 2.0},
        {"user_id": 2, "ts": "2024-01-01T00:00:00Z", "clicks": 3, "spend": 3.0},
    ]
    _write(rest, name, first)
    _write(rest, name, [
        {"user_id": 1, "ts": "2024-01-02T00:00:00Z", "clicks": 20, "spend": 20.0},  # same key and time
        {"user_id": 1, "ts": "2024-01-03T00:00:00Z", "clicks": 30, "spend": 30.0},  # new time
    ])  # fmt: skip
    want = [first[0], {**first[1], "clicks": 20, "spend": 20.0}, first[2],
            {"user_id": 1, "ts": "2024-01-03T00:00:00Z", "clicks": 30, "spend": 30.0}]  # fmt: skip
    _assert_same_rows(_read(rest, name)["records"], want, ("ts",), ("user_id", "ts"))
    # Keys filter returns every time of a key.
    one = _read(rest, name, keys=[{"user_id": 1}])
    assert len(one["records"]) == 3 and {r["user_id"] for r in one["records"]} == {1}, one


def test_read_formats_and_delta_version_header(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_TS, timestamp_key="ts")
    rows = [
        {"user_id": i, "ts": f"2024-03-0{1 + i % 5}T10:00:00Z", "clicks": i * 3, "spend": i / 4}
        for i in range(1, 9)
    ]
    _write(rest, name, rows)
    _write(rest, name, [{"user_id": 1, "ts": "2024-03-02T10:00:00Z", "clicks": 99, "spend": 0.125}])
    as_json = _read(rest, name)
    assert as_json["version"] == 2
    ts = ("ts",)
    key = ("user_id", "ts")

    arrow = _ok(rest.post(FS + "/feature-tables/read", json={"name": name, "format": "arrow"}))
    assert arrow.headers["content-type"].startswith(ARROW), arrow.headers
    assert arrow.headers["x-delta-version"] == "2", arrow.headers
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC"), table.schema
    assert table.schema.field("user_id").type == pa.int64() and table.schema.field("spend").type == pa.float64()
    _assert_same_rows(table.to_pylist(), as_json["records"], ts, key, "arrow")

    parquet = _ok(rest.post(FS + "/feature-tables/read", json={"name": name, "format": "parquet"}))
    assert parquet.headers["content-type"].startswith(PARQUET), parquet.headers
    assert parquet.headers["x-delta-version"] == "2"
    _assert_same_rows(pq.read_table(io.BytesIO(parquet.content)).to_pylist(), as_json["records"], ts, key, "parquet")

    # Accept header instead of format, with time travel and a column subset.
    old = _ok(rest.post(FS + "/feature-tables/read", json={"name": name, "as_of_version": 1, "columns": ["user_id", "clicks"]},
                        headers={"Accept": ARROW}))  # fmt: skip
    assert old.headers["x-delta-version"] == "1"
    old_table = pa.ipc.open_stream(old.content).read_all()
    assert old_table.column_names == ["user_id", "clicks"]
    _assert_same_rows(old_table.to_pylist(), [{"user_id": r["user_id"], "clicks": r["clicks"]} for r in rows],
                      sort_by=("user_id", "clicks"))  # fmt: skip
    get_parquet = _ok(rest.get(FS + "/feature-tables/read", params={"name": name, "format": "parquet"}))
    assert get_parquet.headers["x-delta-version"] == "2"


def test_write_with_arrow_and_parquet_bodies(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_USER)
    a = pa.table({"user_id": pa.array([1, 2], pa.int64()), "clicks": pa.array([1, 2], pa.int64()),
                  "spend": [0.5, 1.5], "name": ["a", "b"]})  # fmt: skip
    r = _ok(rest.post(FS + "/feature-tables/write", params={"name": name, "mode": "merge"},
                      content=_ipc(a), headers={"Content-Type": ARROW}))  # fmt: skip
    assert r.json()["version"] == 1 and r.json()["num_rows"] == 2, r.json()
    b = pa.table({"user_id": pa.array([2, 3], pa.int64()), "clicks": pa.array([20, 30], pa.int64()),
                  "spend": [2.5, 3.5], "name": ["b2", "c"]})  # fmt: skip
    r = _ok(rest.post(FS + "/feature-tables/write", params={"name": name, "mode": "merge"},
                      content=_parquet(b), headers={"Content-Type": PARQUET}))  # fmt: skip
    assert r.json()["version"] == 2, r.json()
    _assert_same_rows(_read(rest, name)["records"], [a.to_pylist()[0]] + b.to_pylist())


# --------------------------------------------------------------------------- 3. deltalake agrees


def test_deltalake_reads_the_same_content_and_history(rest):
    name = _name()
    ft = _create(rest, name, schema=SCHEMA_TS, timestamp_key="ts")
    _write(rest, name, [
        {"user_id": i, "ts": f"2024-02-{10 + i:02d}T08:30:00Z", "clicks": i, "spend": i * 1.1} for i in range(10)
    ])  # fmt: skip
    _write(rest, name, [{"user_id": 3, "ts": "2024-02-13T08:30:00Z", "clicks": 333, "spend": None},
                        {"user_id": 42, "ts": "2024-02-01T00:00:00.123456Z", "clicks": 42, "spend": 4.2}])  # fmt: skip
    _write(rest, name, [{"user_id": 7, "ts": "2024-02-17T08:30:00Z", "clicks": 7, "spend": 7.7}], mode="overwrite")
    _write(rest, name, [{"user_id": 8, "ts": "2024-02-18T08:30:00Z", "clicks": 8, "spend": 8.8}])

    ts, key = ("ts",), ("user_id", "ts")
    table = _delta(ft["location"])
    server = _read(rest, name)
    assert table.version() == server["version"] == 4
    got = _frame(_delta_rows(table), ts, key)
    want = _frame(server["records"], ts, key)
    pd.testing.assert_frame_equal(got[sorted(got.columns)], want[sorted(want.columns)])

    hist = _history(rest, name)
    assert [h["version"] for h in hist] == [4, 3, 2, 1, 0], hist
    theirs = table.history()
    assert [(h["version"], h["operation"]) for h in theirs] == [(h["version"], h["operation"]) for h in hist]
    for n in range(5):
        old = _delta(ft["location"], version=n)
        mine = _read(rest, name, as_of_version=n)
        assert mine["version"] == n
        _assert_same_rows(_delta_rows(old), mine["records"], ts, key, f"version {n}")
        table.load_as_version(n)
        _assert_same_rows(_delta_rows(table), mine["records"], ts, key, f"load_as_version({n})")
    # The Delta schema is the table's.
    fields = {f.name: f.type.type for f in _delta(ft["location"]).schema().fields}
    assert fields == {"user_id": "long", "ts": "timestamp", "clicks": "long", "spend": "double"}, fields


# --------------------------------------------------------------------------- 4. history, optimize, vacuum


def test_history_optimize_and_vacuum(rest):
    name = _name()
    ft = _create(rest, name, schema=SCHEMA_USER)
    loc = ft["location"]
    for batch in range(6):
        rows = [{"user_id": batch * 10 + i, "clicks": batch, "spend": float(i), "name": f"u{batch}{i}"} for i in range(3)]
        _write(rest, name, rows)
    _write(rest, name, [{"user_id": 1, "clicks": 100, "spend": 100.0, "name": "upd"}])  # rewrites one file
    content = _read(rest, name)
    assert content["version"] == 7 and len(content["records"]) == 18
    files_before = _delta(loc).file_uris()
    assert len(files_before) > 1, f"six merges of disjoint keys left {files_before}"

    opt = _ok(rest.post(FS + "/feature-tables/optimize", json={"name": name})).json()
    removed = _numbers(opt, "removed")
    assert removed and max(removed) >= 2, opt
    after = _delta(loc)
    assert after.version() == 8
    files_after = after.file_uris()
    assert len(files_after) < len(files_before), (files_before, files_after)
    again = _read(rest, name)
    assert again["version"] == 8
    _assert_same_rows(again["records"], content["records"], what="after optimize")

    hist = _history(rest, name)
    ops = [(h["version"], h["operation"]) for h in hist]
    assert ops[0] == (8, "OPTIMIZE"), ops
    assert ops[-1] == (0, "CREATE TABLE"), ops
    assert ops[1] == (7, "MERGE"), ops
    assert all(op in ("MERGE", "WRITE") for _, op in ops[2:-1]), ops
    assert all("timestamp" in h and "operation_parameters" in h and "operation_metrics" in h for h in hist), hist
    assert [h["version"] for h in _history(rest, name, limit=2)] == [8, 7]

    # Vacuum: dry run lists the files no version from now on needs, the real run deletes them.
    stored = _data_files(rest, loc)
    live = {os.path.basename(u) for u in files_after}
    assert live <= stored, (live, stored)
    expected = stored - live
    assert expected, stored
    dry = _ok(rest.post(FS + "/feature-tables/vacuum", json={
        "name": name, "retention_hours": 0, "dry_run": True, "enforce_retention_duration": False})).json()  # fmt: skip
    assert dry["dry_run"] is True, dry
    assert {os.path.basename(f) for f in dry["files_deleted"]} == expected, dry
    assert _data_files(rest, loc) == stored  # nothing deleted yet
    real = _ok(rest.post(FS + "/feature-tables/vacuum", json={
        "name": name, "retention_hours": 0, "dry_run": False, "enforce_retention_duration": False})).json()  # fmt: skip
    assert real["dry_run"] is False, real
    assert {os.path.basename(f) for f in real["files_deleted"]} == expected, real
    assert _data_files(rest, loc) == live
    latest = _read(rest, name)
    _assert_same_rows(latest["records"], content["records"], what="after vacuum")
    _assert_same_rows(_delta_rows(_delta(loc)), content["records"], what="deltalake after vacuum")
    # The default retention (168 h) is enforced.
    enforced = rest.post(FS + "/feature-tables/vacuum", json={"name": name, "retention_hours": 0})
    error_body(enforced, "INVALID_PARAMETER_VALUE", 400)


# --------------------------------------------------------------------------- 5. schema enforcement


def test_schema_enforcement(rest):
    name = _name()
    _create(rest, name, schema=SCHEMA_USER)
    _write(rest, name, USERS, mode="overwrite")
    before = _read(rest, name)
    hist_len = len(_history(rest, name))

    def rejected(records, mode="merge"):
        r = rest.post(FS + "/feature-tables/write", json={"name": name, "mode": mode, "records": records})
        err = error_body(r, "INVALID_PARAMETER_VALUE", 400)
        now = _read(rest, name)
        assert now["version"] == before["version"], (records, now["version"])
        _assert_same_rows(now["records"], before["records"], what=f"after rejected {records}")
        assert len(_history(rest, name)) == hist_len
        return err

    assert "bogus" in rejected([{"user_id": 5, "clicks": 1, "bogus": 2}])["message"]
    assert "clicks" in rejected([{"user_id": 5, "clicks": "not-a-number"}])["message"]
    rejected([{"user_id": 5, "clicks": 1}, {"user_id": 6, "clicks": "x"}])  # atomic: row 5 not written
    rejected([{"user_id": 5, "clicks": 1}, {"user_id": 6, "clicks": "x"}], mode="overwrite")
    rejected([{"clicks": 1, "spend": 1.0}])  # missing primary key
    rejected([{"user_id": None, "clicks": 1}])  # null primary key
    rejected([{"user_id": "seven", "clicks": 1}])
    # The same in an Arrow body: a string column where a long is expected.
    wrong = pa.table({"user_id": pa.array([5], pa.int64()), "clicks": pa.array(["x"], pa.string())})
    r = rest.post(FS + "/feature-tables/write", params={"name": name, "mode": "merge"},
                  content=_ipc(wrong), headers={"Content-Type": ARROW})  # fmt: skip
    error_body(r, "INVALID_PARAMETER_VALUE", 400)
    assert _read(rest, name)["version"] == before["version"]

    # A missing non-key column is written as null.
    ok = _write(rest, name, [{"user_id": 6, "clicks": 6}])
    assert ok["version"] == before["version"] + 1
    rows = {r["user_id"]: r for r in _read(rest, name)["records"]}
    assert rows[6] == {"user_id": 6, "clicks": 6, "spend": None, "name": None}, rows[6]
    assert rows[1] == USERS[0]


# --------------------------------------------------------------------------- 6. point-in-time joins

UF_ROWS = [
    {"user_id": 1, "ts": "2024-01-01T00:00:00Z", "clicks": 10, "spend": 1.5},
    {"user_id": 1, "ts": "2024-01-03T00:00:00Z", "clicks": 30, "spend": 3.5},
    {"user_id": 1, "ts": "2024-01-05T00:00:00Z", "clicks": 50, "spend": 5.5},  # late for r0
    {"user_id": 2, "ts": "2024-01-02T00:00:00Z", "clicks": 20, "spend": 2.5},
    {"user_id": 3, "ts": "2024-01-01T00:00:00Z", "clicks": 7, "spend": 0.75},
]
PROFILE_ROWS = [
    {"id": 1, "height": 1.75, "age": 30},
    {"id": 2, "height": 1.5, "age": 41},
    {"id": 3, "height": 2.0, "age": 25},
]
SPINE = [
    {"row_id": 0, "user_id": 1, "event_ts": "2024-01-04T00:00:00Z", "label": 1, "note": "late row ignored"},
    {"row_id": 1, "user_id": 1, "event_ts": "2024-01-03T00:00:00Z", "label": 0, "note": "equal ts"},
    {"row_id": 2, "user_id": 1, "event_ts": "2024-01-02T23:59:59Z", "label": 1, "note": "just before"},
    {"row_id": 3, "user_id": 1, "event_ts": "2023-12-31T00:00:00Z", "label": 0, "note": "before all"},
    {"row_id": 4, "user_id": 2, "event_ts": "2024-01-10T00:00:00Z", "label": 1, "note": "too old"},
    {"row_id": 5, "user_id": 3, "event_ts": "2024-01-02T00:00:00Z", "label": 0, "note": "in window"},
    {"row_id": 6, "user_id": 99, "event_ts": "2024-01-04T00:00:00Z", "label": 1, "note": "no such key"},
    {"row_id": 7, "user_id": 2, "event_ts": "2024-01-05T00:00:00Z", "label": 0, "note": "window edge"},
]
WINDOW = 3 * 86400
# row_id -> (user_clicks, spend) with the 3-day window and default spend -1.0.
WANT_WINDOW = {0: (30, 3.5), 1: (30, 3.5), 2: (10, 1.5), 3: (None, -1.0), 4: (None, -1.0),
               5: (7, 0.75), 6: (None, -1.0), 7: (20, 2.5)}  # fmt: skip
# row_id -> (clicks, spend) with no window and no defaults.
WANT_ALL = {0: (30, 3.5), 1: (30, 3.5), 2: (10, 1.5), 3: (None, None), 4: (20, 2.5),
            5: (7, 0.75), 6: (None, None), 7: (20, 2.5)}  # fmt: skip
WANT_PROFILE = {1: (1.75, 30), 2: (1.5, 41), 3: (2.0, 25), 99: (None, None)}


def _pit_tables(rest):
    uf, prof = _name("uf"), _name("prof")
    _create(rest, uf, schema=SCHEMA_TS, timestamp_key="ts")
    _write(rest, uf, UF_ROWS[:2] + UF_ROWS[3:])
    _write(rest, uf, [UF_ROWS[2]])  # the late row arrives in its own write
    _create(rest, prof, schema=[{"name": "id", "type": "long"}, {"name": "height", "type": "double"},
                                {"name": "age", "type": "long"}], primary_keys=["id"])  # fmt: skip
    _write(rest, prof, PROFILE_ROWS)
    return uf, prof


def _pit_body(uf, prof, output=None, **extra):
    return {
        "spine": {"records": SPINE},
        "feature_lookups": [
            {"table_name": uf, "lookup_key": ["user_id"], "feature_names": ["clicks", "spend"],
             "rename_outputs": {"clicks": "user_clicks"}, "timestamp_lookup_key": "event_ts",
             "lookback_window_seconds": WINDOW, "default_values": {"spend": -1.0}},
            {"table_name": prof, "lookup_key": ["user_id"], "feature_names": ["height", "age"]},
        ],
        "label": "label",
        "exclude_columns": ["note"],
        "output": output or {"format": "json"},
        **extra,
    }  # fmt: skip


def _training_rows(resp):
    body = resp.json()
    rows = body if isinstance(body, list) else body.get("records")
    assert isinstance(rows, list), body
    return rows


def _create_training_set(rest, body):
    return _ok(rest.post(FS + "/training-sets/create", json=body))


def test_point_in_time_join_hand_checked(rest):
    uf, prof = _pit_tables(rest)
    rows = _training_rows(_create_training_set(rest, _pit_body(uf, prof)))
    assert len(rows) == len(SPINE)
    by_id = {r["row_id"]: r for r in rows}
    assert set(by_id) == set(range(len(SPINE)))
    for r in rows:
        assert set(r) == {"row_id", "user_id", "event_ts", "label", "user_clicks", "spend", "height", "age"}, r
        i = r["row_id"]
        spine = SPINE[i]
        assert r["user_id"] == spine["user_id"] and r["label"] == spine["label"], (r, spine)
        assert pd.Timestamp(r["event_ts"]) == pd.Timestamp(spine["event_ts"]), (r, spine)
        assert (r["user_clicks"], r["spend"]) == WANT_WINDOW[i], (spine["note"], r)
        assert (r["height"], r["age"]) == WANT_PROFILE[spine["user_id"]], (spine["note"], r)

    # No window, no defaults, no rename: the 8-day-old row is used, missing rows are null.
    body = {
        "spine": {"records": SPINE},
        "feature_lookups": [{"table_name": uf, "lookup_key": ["user_id"], "feature_names": ["clicks", "spend"],
                             "timestamp_lookup_key": "event_ts"}],
        "output": {"format": "json"},
    }  # fmt: skip
    rows = _training_rows(_create_training_set(rest, body))
    for r in rows:
        assert "note" in r, r  # nothing excluded
        assert (r["clicks"], r["spend"]) == WANT_ALL[r["row_id"]], (SPINE[r["row_id"]]["note"], r)

    # A lookup naming a missing spine column or feature, or too many keys, is a 400.
    for lookup in (
        {"table_name": uf, "lookup_key": ["nope"], "timestamp_lookup_key": "event_ts"},
        {"table_name": uf, "lookup_key": ["user_id"], "feature_names": ["nope"], "timestamp_lookup_key": "event_ts"},
        {"table_name": uf, "lookup_key": ["user_id", "row_id"], "timestamp_lookup_key": "event_ts"},
    ):
        r = rest.post(FS + "/training-sets/create", json={**body, "feature_lookups": [lookup]})
        error_body(r, "INVALID_PARAMETER_VALUE", 400)
    r = rest.post(FS + "/training-sets/create", json={**body, "feature_lookups": [
        {"table_name": _name("none"), "lookup_key": ["user_id"]}]})  # fmt: skip
    error_body(r, "RESOURCE_DOES_NOT_EXIST", 404)


def test_point_in_time_join_of_every_feature_type(rest):
    """String, boolean, date, timestamp, binary, float and integer features, from a time series
    and from a table without timestamp key, keep their values and JSON forms."""
    ts_table, flat = _name("types"), _name("typesflat")
    _create(rest, ts_table, schema=[
        {"name": "user_id", "type": "long"}, {"name": "ts", "type": "timestamp"},
        {"name": "s", "type": "string"}, {"name": "b", "type": "boolean"}, {"name": "d", "type": "date"},
        {"name": "t", "type": "timestamp"}, {"name": "f", "type": "float"}, {"name": "i", "type": "integer"},
        {"name": "bin", "type": "binary"},
    ], timestamp_key="ts")  # fmt: skip
    _write(rest, ts_table, [
        {"user_id": 1, "ts": "2024-01-01T00:00:00Z", "s": "old", "b": False, "d": "2023-12-31",
         "t": "2023-12-31T23:00:00Z", "f": 0.5, "i": 1},
        {"user_id": 1, "ts": "2024-01-02T00:00:00Z", "s": "new", "b": True, "d": "2024-01-02",
         "t": "2024-01-02T06:30:00Z", "f": 1.25, "i": 2},
    ])  # fmt: skip
    _create(rest, flat, schema=[{"name": "user_id", "type": "string"}, {"name": "city", "type": "string"}])
    _write(rest, flat, [{"user_id": "1", "city": "Lyon"}, {"user_id": "2", "city": "Graz"}])
    body = {
        "spine": {"records": [{"user_id": 1, "key": "1", "event_ts": "2024-01-01T12:00:00Z"},
                              {"user_id": 1, "key": "2", "event_ts": "2024-01-03T00:00:00Z"},
                              {"user_id": 2, "key": "3", "event_ts": "2024-01-03T00:00:00Z"}]},
        "feature_lookups": [
            {"table_name": ts_table, "lookup_key": ["user_id"], "timestamp_lookup_key": "event_ts",
             "feature_names": ["s", "b", "d", "t", "f", "i"]},
            {"table_name": flat, "lookup_key": ["key"], "feature_names": ["city"]},
        ],
        "output": {"format": "json"},
    }  # fmt: skip
    rows = sorted(_training_rows(_create_training_set(rest, body)), key=lambda r: r["key"])
    got = [(r["s"], r["b"], r["d"], r["t"] and pd.Timestamp(r["t"]), r["f"], r["i"], r["city"]) for r in rows]
    assert got == [
        ("old", False, "2023-12-31", pd.Timestamp("2023-12-31T23:00:00Z"), 0.5, 1, "Lyon"),
        ("new", True, "2024-01-02", pd.Timestamp("2024-01-02T06:30:00Z"), 1.25, 2, "Graz"),
        (None, None, None, None, None, None, None),
    ], rows


def test_point_in_time_join_matches_pandas_merge_asof(rest):
    rng = np.random.default_rng(20240501)
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    span = 60 * 86400
    n_keys = 300

    def feature_rows(n, prefix):
        keys = rng.integers(0, n_keys, n)
        secs = rng.integers(0, span, n)
        frame = pd.DataFrame({"user_id": keys, "sec": secs}).drop_duplicates(["user_id", "sec"])
        frame["ts"] = t0 + pd.to_timedelta(frame["sec"], unit="s")
        frame[f"{prefix}_x"] = rng.normal(size=len(frame))
        if prefix == "a":
            frame["a_n"] = rng.integers(-1000, 1000, len(frame))
        return frame.drop(columns="sec").reset_index(drop=True)

    fa, fb = feature_rows(5000, "a"), feature_rows(5000, "b")
    ta, tb = _name("pita"), _name("pitb")
    _create(rest, ta, schema=[{"name": "user_id", "type": "long"}, {"name": "ts", "type": "timestamp"},
                              {"name": "a_x", "type": "double"}, {"name": "a_n", "type": "long"}],
            timestamp_key="ts")  # fmt: skip
    _create(rest, tb, schema=[{"name": "user_id", "type": "long"}, {"name": "ts", "type": "timestamp"},
                              {"name": "b_x", "type": "double"}], timestamp_key="ts")  # fmt: skip

    def records(frame):
        out = []
        for row in frame.to_dict("records"):
            out.append({k: (_rfc(v) if k == "ts" else (v.item() if isinstance(v, np.generic) else v))
                        for k, v in row.items()})  # fmt: skip
        return out

    # Half by JSON records, half by a Parquet body.
    _write(rest, ta, records(fa))
    half = len(fb) // 2
    _write(rest, tb, records(fb.iloc[:half]))
    pb = pa.Table.from_pandas(fb.iloc[half:].reset_index(drop=True), preserve_index=False)
    pb = pb.set_column(pb.schema.get_field_index("ts"), "ts", pb.column("ts").cast(pa.timestamp("us", tz="UTC")))
    _ok(rest.post(FS + "/feature-tables/write", params={"name": tb, "mode": "merge"},
                  content=_parquet(pb), headers={"Content-Type": PARQUET}))  # fmt: skip
    assert len(_read(rest, tb)["records"]) == len(fb)

    # Spine: 2,000 rows, keys 0..349 (50 keys have no features); a quarter exactly at a
    # feature row's timestamp, the rest half a second off the whole seconds feature rows use,
    # so the window's edge is never hit ambiguously.
    n = 2000
    user = rng.integers(0, n_keys + 50, n)
    ts = t0 + pd.to_timedelta(rng.integers(0, span + 5 * 86400, n), unit="s") + pd.Timedelta(milliseconds=500)
    spine = pd.DataFrame({"row_id": np.arange(n), "user_id": user, "ts": ts})
    exact = rng.choice(n, n // 4, replace=False)
    src = fa.sample(n // 4, random_state=1).reset_index(drop=True)
    spine.loc[exact, "user_id"] = src["user_id"].to_numpy()
    spine.loc[exact, "ts"] = src["ts"].to_numpy()
    spine["label"] = rng.integers(0, 2, n)
    window_a = 5 * 86400

    body = {
        "spine": {"records": records(spine)},
        "feature_lookups": [
            {"table_name": ta, "lookup_key": ["user_id"], "feature_names": ["a_x", "a_n"],
             "timestamp_lookup_key": "ts", "lookback_window_seconds": window_a},
            {"table_name": tb, "lookup_key": ["user_id"], "feature_names": ["b_x"], "timestamp_lookup_key": "ts"},
        ],
        "label": "label",
        "output": {"format": "json"},
    }  # fmt: skip
    rows = _training_rows(_create_training_set(rest, body))
    assert len(rows) == n

    s = spine.assign(ts=spine["ts"].astype("datetime64[us, UTC]")).sort_values("ts")
    ra = pd.merge_asof(s, fa.assign(ts=fa["ts"].astype("datetime64[us, UTC]")).sort_values("ts"), on="ts",
                       by="user_id", direction="backward", allow_exact_matches=True,
                       tolerance=pd.Timedelta(seconds=window_a))  # fmt: skip
    rb = pd.merge_asof(s, fb.assign(ts=fb["ts"].astype("datetime64[us, UTC]")).sort_values("ts"), on="ts",
                       by="user_id", direction="backward", allow_exact_matches=True)  # fmt: skip
    ref = ra.merge(rb[["row_id", "b_x"]], on="row_id").sort_values("row_id")

    def val(v, as_int=False):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return int(v) if as_int else float(v)

    want = [(int(r.row_id), int(r.user_id), int(r.label), val(r.a_x), val(r.a_n, True), val(r.b_x))
            for r in ref.itertuples()]  # fmt: skip
    got = sorted((r["row_id"], r["user_id"], r["label"], val(r["a_x"]), val(r["a_n"], True), val(r["b_x"]))
                 for r in rows)  # fmt: skip
    mismatches = [(g, w) for g, w in zip(got, want) if g != w]
    assert not mismatches, f"{len(mismatches)} of {n} rows differ, e.g. {mismatches[:5]}"
    # The random data exercises every case.
    assert sum(w[3] is None for w in want) > 50 and sum(w[3] is not None for w in want) > 500
    assert sum(w[5] is None for w in want) > 50


# --------------------------------------------------------------------------- 8. training set outputs and lineage


def test_training_set_outputs_run_datasets_and_lineage(rest, client):
    uf, prof = _pit_tables(rest)
    json_rows = _training_rows(_create_training_set(rest, _pit_body(uf, prof)))
    ts, key = ("event_ts",), ("row_id",)
    versions = {uf: _read(rest, uf)["version"], prof: _read(rest, prof)["version"]}

    # Arrow streams the same rows.
    arrow = _create_training_set(rest, _pit_body(uf, prof, {"format": "arrow"}))
    _assert_same_rows(pa.ipc.open_stream(arrow.content).read_all().to_pylist(), json_rows, ts, key, "arrow")

    experiment_id = client.create_experiment(unique_name("features"))
    run_id = client.create_run(experiment_id).info.run_id
    made = _create_training_set(rest, _pit_body(uf, prof, {"format": "parquet"}, run_id=run_id)).json()
    tset = made["training_set"]
    assert tset["format"] == "parquet" and tset["num_rows"] == len(SPINE), tset
    assert tset["id"] and tset["id"] in tset["location"], tset
    assert sorted((f["name"], int(f["version"])) for f in tset["feature_tables"]) == sorted(versions.items()), tset
    assert {f["name"] for f in tset["schema"]} == set(json_rows[0]), tset["schema"]
    table = _read_parquet_location(rest, tset["location"])
    _assert_same_rows(table.to_pylist(), json_rows, ts, key, "parquet output")

    # The default format is parquet; output.path is relative to the destination.
    sub = unique_name("custom")
    other = _create_training_set(rest, {**_pit_body(uf, prof), "output": {"path": f"mine/{sub}"}}).json()["training_set"]
    assert other["format"] == "parquet" and f"mine/{sub}" in other["location"], other
    _assert_same_rows(_read_parquet_location(rest, other["location"]).to_pylist(), json_rows, ts, key, "output.path")

    # Delta output: a Delta table any reader opens.
    delta = _create_training_set(rest, _pit_body(uf, prof, {"format": "delta"})).json()["training_set"]
    assert delta["format"] == "delta", delta
    if not delta["location"].startswith("mlflow-artifacts:"):
        _assert_same_rows(_delta_rows(_delta(delta["location"])), json_rows, ts, key, "delta output")

    # The run has the feature tables (delta_table) and the training set as inputs.
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_type = {}
    for i in inputs:
        by_type.setdefault(i.dataset.source_type, []).append(i)
    delta_inputs = by_type.get("delta_table", [])
    named = {i.dataset.name for i in delta_inputs}
    for table_name in (uf, prof):
        assert any(table_name in n for n in named), (table_name, [(i.dataset.name, i.dataset.source_type) for i in inputs])
    contexts = [{t.key: t.value for t in i.tags}.get("mlflow.data.context") for i in inputs]
    assert "training" in contexts, [(i.dataset.name, [(t.key, t.value) for t in i.tags]) for i in inputs]
    assert len(inputs) >= 3, [(i.dataset.name, i.dataset.source_type) for i in inputs]

    # Lineage: the tables list the run; a model version from the run lists the tables.
    for table_name in (uf, prof):
        assert run_id in json.dumps(_get(rest, table_name)), _get(rest, table_name)
    model = unique_name("fs-model")
    client.create_registered_model(model)
    mv = client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    lineage = _ok(rest.get(FS + "/lineage/model-version", params={"name": model, "version": mv.version})).json()
    for table_name, version in versions.items():
        hits = _find(lineage, lambda d, t=table_name, v=version: d.get("name") == t and str(d.get("version")) == str(v))
        assert hits, (table_name, version, lineage)
    assert model in json.dumps(_get(rest, uf)), _get(rest, uf)
    error_body(rest.get(FS + "/lineage/model-version", params={"name": unique_name("none"), "version": "1"}),
               "RESOURCE_DOES_NOT_EXIST", 404)  # fmt: skip


def test_spine_from_an_artifact_uri(rest, client):
    uf, prof = _pit_tables(rest)
    want = _training_rows(_create_training_set(rest, _pit_body(uf, prof)))
    experiment_id = client.create_experiment(unique_name("spine"))
    run = client.create_run(experiment_id)
    spine = pd.DataFrame(SPINE)
    spine["event_ts"] = pd.to_datetime(spine["event_ts"], utc=True).astype("datetime64[us, UTC]")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "spine.parquet")
        pq.write_table(pa.Table.from_pandas(spine, preserve_index=False), path)
        client.log_artifact(run.info.run_id, path)
    uri = f"{run.info.artifact_uri}/spine.parquet"
    assert uri.startswith("mlflow-artifacts:"), uri
    body = {**_pit_body(uf, prof), "spine": {"uri": uri}}
    got = _training_rows(_create_training_set(rest, body))
    _assert_same_rows(got, want, ("event_ts",), ("row_id",), "spine from uri")


# --------------------------------------------------------------------------- 9. online store


def _lookup(rest, lookups):
    return _ok(rest.post(FS + "/online/lookup", json={"lookups": lookups})).json()["results"]


def _publish(rest, name, mode):
    return _ok(rest.post(FS + "/online/publish", json={"name": name, "mode": mode})).json()


def test_online_publish_and_lookup(rest):
    a, b = _name("onl"), _name("onlp")
    _create(rest, a, schema=SCHEMA_TS, timestamp_key="ts")
    _write(rest, a, [
        {"user_id": 1, "ts": "2024-01-03T00:00:00Z", "clicks": 3, "spend": 3.0},
        {"user_id": 1, "ts": "2024-01-01T00:00:00Z", "clicks": 1, "spend": 1.0},
        {"user_id": 2, "ts": "2024-01-02T00:00:00Z", "clicks": 20, "spend": 2.0},
        {"user_id": 3, "ts": "2024-01-01T00:00:00Z", "clicks": 30, "spend": 0.5},
    ])  # fmt: skip
    _create(rest, b, schema=[{"name": "id", "type": "long"}, {"name": "country", "type": "string"}],
            primary_keys=["id"])  # fmt: skip
    _write(rest, b, [{"id": 1, "country": "fr"}, {"id": 2, "country": "de"}])
    _publish(rest, a, "full")
    _publish(rest, b, "full")

    def check():
        return _lookup(rest, [
            {"table_name": a, "keys": [{"user_id": 2}, {"user_id": 404}, {"user_id": 1}, {"user_id": 3}, {"user_id": 4}],
             "feature_names": ["clicks"]},
            {"table_name": b, "keys": [{"id": 1}, {"id": 3}, {"id": 2}]},
        ])  # fmt: skip

    res = check()
    assert [r["table_name"] for r in res] == [a, b], res
    rows = res[0]["rows"]
    assert len(rows) == 5 and rows[1] is None and rows[4] is None, rows
    assert [r["clicks"] for r in (rows[0], rows[2], rows[3])] == [20, 3, 30], rows  # latest per key
    assert all("spend" not in r for r in rows if r), rows  # feature_names subset
    prof = res[1]["rows"]
    assert prof[1] is None and [prof[0]["country"], prof[2]["country"]] == ["fr", "de"], prof
    full = _lookup(rest, [{"table_name": a, "keys": [{"user_id": 1}]}])[0]["rows"][0]
    assert full["clicks"] == 3 and full["spend"] == 3.0, full

    # New rows: a newer row for 1, a new key 4, an older row for 2 (must not win).
    _write(rest, a, [
        {"user_id": 1, "ts": "2024-01-04T00:00:00Z", "clicks": 4, "spend": 4.0},
        {"user_id": 4, "ts": "2024-01-01T00:00:00Z", "clicks": 40, "spend": 4.5},
        {"user_id": 2, "ts": "2023-12-01T00:00:00Z", "clicks": 999, "spend": 9.0},
    ])  # fmt: skip
    stale = check()[0]["rows"]
    assert stale[2]["clicks"] == 3 and stale[4] is None, stale  # not published yet
    _publish(rest, a, "incremental")
    rows = check()[0]["rows"]
    assert rows[1] is None, rows
    assert [r["clicks"] for r in (rows[0], rows[2], rows[3], rows[4])] == [20, 4, 30, 40], rows
    # A key update in a table without a timestamp key.
    _write(rest, b, [{"id": 2, "country": "at"}, {"id": 3, "country": "it"}])
    _publish(rest, b, "incremental")
    prof = check()[1]["rows"]
    assert [p["country"] for p in prof] == ["fr", "it", "at"], prof

    # Errors: unpublished table, unknown table, bad mode, unknown feature.
    c = _name("unpub")
    _create(rest, c, schema=SCHEMA_USER)
    _write(rest, c, USERS)
    r = rest.post(FS + "/online/lookup", json={"lookups": [{"table_name": c, "keys": [{"user_id": 1}]}]})
    error_body(r)
    r = rest.post(FS + "/online/lookup", json={"lookups": [{"table_name": _name("none"), "keys": [{"user_id": 1}]}]})
    error_body(r, "RESOURCE_DOES_NOT_EXIST", 404)
    error_body(rest.post(FS + "/online/publish", json={"name": _name("none"), "mode": "full"}),
               "RESOURCE_DOES_NOT_EXIST", 404)  # fmt: skip
    error_body(rest.post(FS + "/online/publish", json={"name": c, "mode": "sometimes"}), "INVALID_PARAMETER_VALUE", 400)
    r = rest.post(FS + "/online/lookup", json={"lookups": [{"table_name": a, "keys": [{"user_id": 1}],
                                                            "feature_names": ["nope"]}]})  # fmt: skip
    error_body(r, "INVALID_PARAMETER_VALUE", 400)


# --------------------------------------------------------------------------- 10. serving with feature lookups

FEATS = ["f1", "f2", "f3"]
FEATURE_ROWS = {
    1: (0.25, 1.5, -2.0),
    2: (3.0, -0.75, 0.5),
    3: (-1.25, 2.0, 4.25),
    4: (0.0, 0.0, 1.0),
    5: (5.5, -3.25, -0.5),
}


@pytest.fixture(scope="module")
def feature_model(client, server_kind):
    """A linear regression on f1..f3 as ONNX, registered; returns (model name, sklearn model)."""
    if server_kind == "mlflow":  # set up before the function-scoped skip would apply
        pytest.skip("mlflow server has no feature store")
    import mlflow.onnx
    from mlflow.models import infer_signature
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 3)).astype(np.float32), columns=FEATS)
    y = x["f1"] * 2.0 - x["f2"] + 0.5 * x["f3"] + rng.normal(scale=0.1, size=200)
    model = LinearRegression().fit(x, y)
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 3]))],
                          target_opset={"": 17, "ai.onnx.ml": 3})  # fmt: skip
    name = unique_name("fs-lr")
    experiment_id = client.create_experiment(unique_name("fs-serving"))
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.onnx.log_model(onx, name="model", registered_model_name=name,
                              input_example=x.iloc[:3], signature=infer_signature(x))  # fmt: skip
    return name, model


def _endpoint(rest, model_name, feature_lookups=None):
    name = unique_name("fs-ep")
    config = {"served_models": [{"model_name": model_name, "model_version": "1"}]}
    if feature_lookups is not None:
        config["feature_lookups"] = feature_lookups
    r = rest.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert r.status_code == 200, r.text
    if r.json()["state"]["ready"] != "READY":
        if not os.environ.get("ORT_DYLIB_PATH") and not os.environ.get("FERROFLOW_ONNXRUNTIME_LIB"):
            pytest.skip("ONNX Runtime is not installed (scripts/onnxruntime.sh)")
        raise AssertionError(r.text)
    return name


def _invoke(rest, endpoint, body):
    r = rest.post(f"/serving-endpoints/{endpoint}/invocations", content=json.dumps(body),
                  headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 200, (body, r.text)
    return r.json()


def _flat(obj):
    if isinstance(obj, dict):
        obj = obj.get("predictions", obj)
    if isinstance(obj, dict):
        out = []
        for v in obj.values():
            out += _flat(v)
        return out
    if isinstance(obj, list):
        out = []
        for v in obj:
            out += _flat(v) if isinstance(v, (list, dict)) else [v]
        return out
    return [obj]


def _feature_table(rest, columns=FEATS):
    name = _name("srv")
    _create(rest, name, schema=[{"name": "user_id", "type": "long"}] + [{"name": c, "type": "double"} for c in columns])
    _write(rest, name, [{"user_id": k, **dict(zip(columns, v))} for k, v in FEATURE_ROWS.items()])
    _publish(rest, name, "full")
    return name


def test_serving_endpoint_joins_features_from_the_online_store(rest, feature_model):
    model_name, sk = feature_model
    table = _feature_table(rest)
    with_lookup = _endpoint(rest, model_name, [{"table_name": table, "lookup_key": ["user_id"], "feature_names": FEATS}])
    plain = _endpoint(rest, model_name)
    users = [3, 1, 5, 2]
    got = _invoke(rest, with_lookup, {"dataframe_records": [{"user_id": u} for u in users]})
    full = [dict(zip(FEATS, FEATURE_ROWS[u])) for u in users]
    want = _invoke(rest, plain, {"dataframe_records": full})
    assert got == want, (got, want)
    reference = sk.predict(pd.DataFrame(full, columns=FEATS).astype(np.float32))
    values = _flat(got)
    assert len(values) == len(users), got
    for g, w in zip(values, reference):
        assert abs(g - w) <= 1e-4 * max(1.0, abs(w)), (values, reference)
    # dataframe_split with only the key column works the same.
    split = _invoke(rest, with_lookup, {"dataframe_split": {"columns": ["user_id"], "data": [[u] for u in users]}})
    assert split == want, split


def test_serving_feature_lookup_rename_and_unpublished_key(rest, feature_model):
    model_name, _ = feature_model
    table = _feature_table(rest, columns=["a", "b", "f3"])
    endpoint = _endpoint(rest, model_name, [{
        "table_name": table, "lookup_key": ["user_id"], "feature_names": ["a", "b", "f3"],
        "rename_outputs": {"a": "f1", "b": "f2"},
    }])  # fmt: skip
    plain = _endpoint(rest, model_name)
    got = _invoke(rest, endpoint, {"dataframe_records": [{"user_id": 2}, {"user_id": 777}, {"user_id": 4}]})
    want = _invoke(rest, plain, {"dataframe_records": [dict(zip(FEATS, FEATURE_ROWS[u])) for u in (2, 4)]})
    values, expected = _flat(got), _flat(want)
    assert len(values) == 3, got
    assert [values[0], values[2]] == expected, (got, want)
    # The unpublished key reaches the model as NaN features: a NaN (or null) prediction.
    assert values[1] is None or (isinstance(values[1], float) and math.isnan(values[1])), got


def test_cli_creates_writes_reads_and_publishes(rest, tracking_uri, tmp_path):
    """`ferroflow features …` against the running server: the same tables the API shows."""
    import subprocess
    from pathlib import Path

    binary = os.environ.get("FERROFLOW_BIN", str(Path(__file__).resolve().parents[2] / "target/debug/ferroflow"))
    if not Path(binary).exists():
        pytest.skip(f"no ferroflow binary at {binary}")
    name = unique_name("cli_users").replace("-", "_")
    pq.write_table(pa.table({"user_id": [1, 2, 3], "score": [0.5, 1.5, 2.5]}), tmp_path / "v0.parquet")
    pq.write_table(pa.table({"user_id": [3, 4], "score": [30.0, 4.0]}), tmp_path / "v1.parquet")

    def cli(*args):
        proc = subprocess.run(
            [binary, "features", *args, "--tracking-uri", tracking_uri],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr[-2000:]}"
        return proc.stdout

    created = json.loads(cli("create", name, "--primary-keys", "user_id", "--data", str(tmp_path / "v0.parquet")))
    assert created["feature_table"]["latest_version"] == 0
    cli("write", name, "--data", str(tmp_path / "v1.parquet"))
    latest = json.loads(cli("read", name))
    assert sorted((r["user_id"], r["score"]) for r in latest["records"]) == [
        (1, 0.5), (2, 1.5), (3, 30.0), (4, 4.0)
    ]  # fmt: skip
    cli("read", name, "--version", "0", "--output", str(tmp_path / "back.parquet"))
    back = pq.read_table(tmp_path / "back.parquet").to_pylist()
    assert sorted((r["user_id"], r["score"]) for r in back) == [(1, 0.5), (2, 1.5), (3, 2.5)]
    history = cli("history", name)
    assert [line.split("\t")[2] for line in history.strip().splitlines()] == ["MERGE", "WRITE"], history
    assert name in cli("list", "--filter", f"name = '{name}'")
    assert json.loads(cli("publish", name))["version"] == 1
    got = rest.post(
        "/api/2.0/feature-store/online/lookup",
        json={"lookups": [{"table_name": name, "keys": [{"user_id": 3}]}]},
    )
    assert got.json()["results"][0]["rows"] == [{"score": 30.0}], got.text
    cli("delete", name)
    assert rest.get("/api/2.0/feature-store/feature-tables/get", params={"name": name}).status_code == 404


def test_a_location_outside_the_artifact_root_is_refused_and_nothing_is_created(rest, tmp_path, artifacts_destination):
    outside = tmp_path / "elsewhere"
    name = _name("located")
    for location in (str(outside), f"file://{outside}", "/etc/ferroflow-table"):
        bad = rest.post(FS + "/feature-tables/create", json={
            "name": name, "primary_keys": ["user_id"], "schema": SCHEMA_USER, "location": location})
        error_body(bad, "INVALID_PARAMETER_VALUE", 400)
        assert "--feature-table-locations" in bad.json()["message"] or "tables live under" in bad.json()["message"]
    assert not outside.exists()
    error_body(rest.get(FS + "/feature-tables/get", params={"name": name}), "RESOURCE_DOES_NOT_EXIST", 404)
    if artifacts_destination and "://" not in artifacts_destination:
        # Under the artifact root is fine.
        inside = Path(artifacts_destination).resolve() / "own-tables" / name
        ft = _create(rest, name, schema=SCHEMA_USER, location=str(inside))
        assert ft["location"].endswith(f"own-tables/{name}"), ft
