"""Feature-table time travel against the history's clock, and incremental online publication
after an overwrite, over REST against the real binary (docs/feature-store.md is the contract).

Runs on the local artifacts directory and, from scripts/test, on S3 (moto on loopback): the
commit time `history` shows for version N must read version N on both, although a log file's
modification time on the local disk is a few milliseconds after the commit and on S3 only to
the second. ferroflow-only: skipped against the reference mlflow server.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import error_body, unique_name

FS = "/api/2.0/feature-store"


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("mlflow server has no feature store")


def _name(prefix: str) -> str:
    return unique_name(prefix).replace("-", "_")


def _ok(resp):
    assert resp.status_code == 200, (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:3000]}"
    )
    return resp.json()


def _history(rest, name, **params):
    return _ok(rest.get(FS + "/feature-tables/history", params={"name": name, **params}))["history"]


def _read_at(rest, name, at):
    return rest.post(FS + "/feature-tables/read", json={"name": name, "as_of_timestamp": at})


def _rfc_ms(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_as_of_timestamp_at_each_history_time_reads_that_version(rest):
    name = _name("clock")
    _ok(rest.post(FS + "/feature-tables/create", json={
        "name": name, "primary_keys": ["id"],
        "schema": [{"name": "id", "type": "long"}, {"name": "value", "type": "long"}],
    }))  # fmt: skip
    versions = 10
    for n in range(1, versions + 1):
        w = _ok(rest.post(FS + "/feature-tables/write", json={
            "name": name, "mode": "merge", "records": [{"id": 1, "value": n}],
        }))  # fmt: skip
        assert w["version"] == n, w
    hist = _history(rest, name)
    assert [h["version"] for h in hist] == list(range(versions, -1, -1)), hist
    times = {h["version"]: h["timestamp"] for h in hist}
    assert all(times[n] < times[n + 1] for n in range(versions)), times
    assert [h["timestamp"] for h in _history(rest, name, limit=4)] == [h["timestamp"] for h in hist[:4]]

    wrong = []
    for n, t in times.items():
        for at in (t, _rfc_ms(t), str(t)):
            got = _ok(_read_at(rest, name, at))
            value = got["records"][0]["value"] if got["records"] else None
            if got["version"] != n or value != (n or None):
                wrong.append((n, at, got["version"], value))
        if n > 0:
            got = _ok(_read_at(rest, name, t - 1))
            if got["version"] != n - 1:
                wrong.append((n, t - 1, got["version"]))
    assert not wrong, f"as_of_timestamp at the time history shows for version N read another version: {wrong}"

    # Before the first commit: a 400 naming the cause, in every form.
    for at in (times[0] - 1, _rfc_ms(times[0] - 1), "1999-12-31T23:59:59Z"):
        body = error_body(_read_at(rest, name, at), "INVALID_PARAMETER_VALUE", 400)
        assert "before the table's first commit" in body["message"], body
    error_body(
        rest.get(FS + "/feature-tables/read", params={"name": name, "as_of_timestamp": times[0] - 1}),
        "INVALID_PARAMETER_VALUE",
        400,
    )
    # After the last commit: the latest version.
    assert _ok(_read_at(rest, name, "2999-01-01T00:00:00Z"))["version"] == versions


def test_table_created_with_rows_has_no_rows_before_its_creation(rest):
    name = _name("born")
    _ok(rest.post(FS + "/feature-tables/create", json={
        "name": name, "primary_keys": ["id"], "records": [{"id": 1, "x": 1.5}, {"id": 2, "x": 2.5}],
    }))  # fmt: skip
    (first,) = _history(rest, name)
    error_body(_read_at(rest, name, first["timestamp"] - 1), "INVALID_PARAMETER_VALUE", 400)
    at_creation = _ok(_read_at(rest, name, first["timestamp"]))
    assert at_creation["version"] == 0 and len(at_creation["records"]) == 2, at_creation


def _lookup(rest, name, ids):
    body = {"lookups": [{"table_name": name, "keys": [{"id": i} for i in ids], "feature_names": ["x"]}]}
    return _ok(rest.post(FS + "/online/lookup", json=body))["results"][0]["rows"]


def test_incremental_publish_after_overwrite_serves_only_the_tables_rows(rest):
    name = _name("stale")
    _ok(rest.post(FS + "/feature-tables/create", json={
        "name": name, "primary_keys": ["id"],
        "schema": [{"name": "id", "type": "long"}, {"name": "x", "type": "double"}],
    }))  # fmt: skip
    write = lambda mode, records: _ok(rest.post(FS + "/feature-tables/write", json={"name": name, "mode": mode, "records": records}))  # noqa: E731
    write("merge", [{"id": i, "x": float(i)} for i in range(1, 6)])
    _ok(rest.post(FS + "/online/publish", json={"name": name, "mode": "full"}))
    write("overwrite", [{"id": 2, "x": 20.0}, {"id": 6, "x": 60.0}])
    p = _ok(rest.post(FS + "/online/publish", json={"name": name, "mode": "incremental"}))
    assert (p["mode"], p["rows_published"], p["rows_deleted"]) == ("incremental", 2, 4), p
    assert _lookup(rest, name, [1, 2, 3, 4, 5, 6]) == [None, {"x": 20.0}, None, None, None, {"x": 60.0}]
    # The online rows equal the table's latest rows.
    table = _ok(rest.post(FS + "/feature-tables/read", json={"name": name}))["records"]
    assert sorted((r["id"], r["x"]) for r in table) == [(2, 20.0), (6, 60.0)]
