"""The feature store's JSON rule (docs/feature-store.md, "How JSON values are read"): a value is
written only when its column holds it as sent; anything else is a 400 naming the column and the
row, and nothing is written (same Delta version, same rows, checked with the `deltalake`
package). Column order is the order the client sent. One rule for every JSON entry point:
writes, tables created from records, spines, read keys, online lookup keys, default_values.

ferroflow-only: every test is skipped against the reference mlflow server.
"""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pytest
from helpers import error_body
from test_features import (
    ARROW,
    FS,
    _create,
    _create_training_set,
    _delta,
    _delete,
    _get,
    _lookup,
    _name,
    _publish,
    _read,
    _training_rows,
    _write,
)


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("mlflow server has no feature store")


STORES = [
    {"name": "store_id", "type": "integer"},
    {"name": "visits", "type": "long"},
    {"name": "revenue", "type": "double"},
    {"name": "city", "type": "string"},
]


def _state(rest, name):
    """Version and rows as ferroflow serves them (sorted) and the Delta log's own version, to
    compare before and after."""
    body = _read(rest, name)
    rows = sorted(body["records"], key=lambda r: tuple(str(v) for v in r.values()))
    return body["version"], rows, _delta(_get(rest, name)["location"]).version()


def _refused(resp, *fragments):
    body = error_body(resp, "INVALID_PARAMETER_VALUE", 400)
    for f in fragments:
        assert f in body["message"], body
    return body


def _stores(rest):
    name = _name("stores")
    _create(rest, name, schema=STORES, primary_keys=["store_id"])
    _write(rest, name, [
        {"store_id": 42, "visits": 10, "revenue": 1.5, "city": "Lyon"},
        {"store_id": 7, "visits": 3, "revenue": 0.25, "city": "Graz"},
    ])  # fmt: skip
    return name


def test_fractional_numbers_into_integer_columns_are_refused_and_nothing_is_written(rest):
    name = _stores(rest)
    before = _state(rest, name)
    cases = [
        ({"store_id": 1, "visits": 2.5}, "records[0]: column 'visits' (long)", "2.5 is not an integer"),
        ({"store_id": 1, "visits": -7.9}, "column 'visits' (long)", "-7.9 is not an integer"),
        # A fractional primary key must not land on (and overwrite) key 42.
        ({"store_id": 42.25, "visits": 99}, "column 'store_id' (integer)", "42.25 is not an integer"),
        ({"store_id": 3_000_000_000, "visits": 1}, "column 'store_id' (integer)", "out of range"),
        ({"store_id": 1, "revenue": "1.5"}, "column 'revenue' (double)", 'the string "1.5" is not a number'),
        ({"store_id": 1, "visits": "7"}, "column 'visits' (long)", "is not an integer"),
        ({"store_id": 1, "city": 12}, "column 'city' (string)", "12 is not a string"),
    ]
    for mode in ("merge", "overwrite"):
        for record, where, why in cases:
            ok = {"store_id": 5, "visits": 1}
            r = rest.post(FS + "/feature-tables/write",
                          json={"name": name, "mode": mode, "records": [ok, record]})  # fmt: skip
            body = _refused(r, why, where.replace("records[0]", "records[1]"))
            assert "records[1]" in body["message"], body
            assert _state(rest, name) == before, (mode, record)
    # The same values at creation are refused too, and no table is left behind.
    other = _name("stores")
    r = rest.post(FS + "/feature-tables/create", json={
        "name": other, "primary_keys": ["store_id"], "schema": STORES,
        "records": [{"store_id": 1, "visits": 2.5}]})  # fmt: skip
    _refused(r, "records[0]: column 'visits' (long)")
    assert rest.get(FS + "/feature-tables/get", params={"name": other}).status_code == 404
    # Integral numbers are the same numbers however they are written.
    _write(rest, name, [{"store_id": 9, "visits": 4.0, "revenue": 3}])
    row = [r for r in _read(rest, name, keys=[{"store_id": 9}])["records"]]
    assert row == [{"store_id": 9, "visits": 4, "revenue": 3.0, "city": None}], row


def test_arrow_integers_that_fit_a_narrower_column_are_accepted_and_others_refused(rest):
    """A pandas int64 frame into an `integer` column: every value fits, so nothing changes."""
    name = _stores(rest)
    frame = pd.DataFrame({"store_id": [100, 101], "visits": [1, 2], "revenue": [0.5, 1.0]})
    assert str(frame["store_id"].dtype) == "int64"

    def send(df):
        sink = io.BytesIO()
        table = pa.Table.from_pandas(df, preserve_index=False)
        with pyarrow.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return rest.post(FS + "/feature-tables/write", params={"name": name, "mode": "merge"},
                         content=sink.getvalue(), headers={"Content-Type": ARROW})  # fmt: skip

    r = send(frame)
    assert r.status_code == 200, r.text
    got = {x["store_id"]: x["visits"] for x in _read(rest, name)["records"]}
    assert got[100] == 1 and got[101] == 2, got
    before = _state(rest, name)
    r = send(pd.DataFrame({"store_id": [102, 2**31], "visits": [1, 2], "revenue": [0.5, 1.0]}))
    _refused(r, "Column 'store_id' (integer): row 1 holds 2147483648")
    # A float64 column (pandas' integers with a gap) into a long column: integral values fit,
    # a fraction does not.
    r = send(pd.DataFrame({"store_id": [103], "visits": [3.5], "revenue": [1.0]}))
    _refused(r, "Column 'visits' (long): row 0 holds 3.5")
    assert _state(rest, name) == before
    r = send(pd.DataFrame({"store_id": [104, 105], "visits": [3.0, None], "revenue": [1.0, 2.0]}))
    assert r.status_code == 200, r.text
    got = {x["store_id"]: x["visits"] for x in _read(rest, name)["records"]}
    assert got[104] == 3 and got[105] is None, got


def test_timestamps_are_rfc3339_strings_or_epoch_milliseconds(rest):
    name = _name("times")
    _create(rest, name, schema=[{"name": "id", "type": "long"}, {"name": "t", "type": "timestamp"}],
            primary_keys=["id"])  # fmt: skip
    _write(rest, name, [
        {"id": 1, "t": 1709251200000},                 # epoch ms, as MLflow and pandas' to_json send
        {"id": 2, "t": "2024-03-01T00:00:00Z"},
        {"id": 3, "t": "2024-03-01 01:00:00+01:00"},
        {"id": 4, "t": "2024-03-01T00:00:00"},          # no zone: UTC
        {"id": 5, "t": "2024-03-01T00:00:00.123456Z"},
    ])  # fmt: skip
    got = {r["id"]: pd.Timestamp(r["t"]) for r in _read(rest, name)["records"]}
    want = pd.Timestamp("2024-03-01T00:00:00Z")
    assert [got[i] for i in (1, 2, 3, 4)] == [want] * 4, got
    assert got[5] == pd.Timestamp("2024-03-01T00:00:00.123456Z"), got
    # pandas' default to_json (epoch milliseconds) round-trips.
    frame = pd.DataFrame({"id": [6], "t": [pd.Timestamp("2023-07-04T12:34:56.789Z")]})
    _write(rest, name, pd.read_json(io.StringIO(frame.to_json(orient="records")), orient="records",
                                    convert_dates=False).to_dict("records"))  # fmt: skip
    six = _read(rest, name, keys=[{"id": 6}])["records"][0]
    assert pd.Timestamp(six["t"]) == pd.Timestamp("2023-07-04T12:34:56.789Z"), six
    before = _state(rest, name)
    for bad, why in [
        (1709251200, "epoch milliseconds"),            # seconds
        (1709251200000000, "epoch milliseconds"),      # microseconds
        ("2024-03-01T00:00:00.0000001Z", "below a microsecond"),
        ("last tuesday", "not an RFC 3339 time"),
        (True, "not a time"),
    ]:
        r = rest.post(FS + "/feature-tables/write",
                      json={"name": name, "records": [{"id": 9, "t": bad}]})  # fmt: skip
        _refused(r, "records[0]: column 't' (timestamp)", why)
    assert _state(rest, name) == before
    # as_of_timestamp reads times by the same rule: no zone is UTC, numbers are milliseconds.
    assert _read(rest, name, as_of_timestamp="2999-01-01T00:00:00")["version"] == before[0]
    assert _read(rest, name, as_of_timestamp=32503680000000)["version"] == before[0]
    # Seconds read as milliseconds are in January 1970: before the table existed.
    r = rest.post(FS + "/feature-tables/read", json={"name": name, "as_of_timestamp": 32503680000})
    _refused(r, "before the table's first commit")
    r = rest.post(FS + "/feature-tables/read", json={"name": name, "as_of_timestamp": "3 pm"})
    _refused(r, "Invalid as_of_timestamp", "not an RFC 3339 time")


def test_column_order_is_the_order_the_client_sent(rest):
    name = _name("order")
    records = [{"zeta": 1, "alpha": "a", "mid": 0.5, "b": True}, {"zeta": 2, "alpha": "b", "mid": 1.5, "b": False}]
    ft = _create(rest, name, records=records, primary_keys=["zeta"])
    assert [c["name"] for c in ft["schema"]] == ["zeta", "alpha", "mid", "b"], ft
    body = _read(rest, name)
    assert [f["name"] for f in body["schema"]] == ["zeta", "alpha", "mid", "b"], body
    assert list(body["records"][0]) == ["zeta", "alpha", "mid", "b"], body
    # An independent reader of the Delta log sees the same order.
    assert [f.name for f in _delta(ft["location"]).schema().fields] == ["zeta", "alpha", "mid", "b"]

    # A JSON spine: its columns in its own order, then the features in lookup order.
    spine = [{"z_row": 1, "label": 0, "zeta": 1, "a_note": "x"}, {"z_row": 2, "label": 1, "zeta": 2, "a_note": "y"}]
    rows = _training_rows(_create_training_set(rest, {
        "spine": {"records": spine},
        "feature_lookups": [{"table_name": name, "lookup_key": ["zeta"], "feature_names": ["mid", "alpha"]}],
        "output": {"format": "json"},
    }))  # fmt: skip
    assert list(rows[0]) == ["z_row", "label", "zeta", "a_note", "mid", "alpha"], rows
    # With a label, the label follows the spine's other columns, before the features.
    rows = _training_rows(_create_training_set(rest, {
        "spine": {"records": spine}, "label": "label",
        "feature_lookups": [{"table_name": name, "lookup_key": ["zeta"]}],
        "output": {"format": "json"},
    }))  # fmt: skip
    assert list(rows[0]) == ["z_row", "zeta", "a_note", "label", "alpha", "mid", "b"], rows


def test_spine_keys_and_defaults_follow_the_same_rule_and_name_their_place(rest):
    name = _stores(rest)
    base = {"output": {"format": "json"}}
    lookup = {"table_name": name, "lookup_key": ["store_id"], "feature_names": ["visits", "revenue"]}
    # A spine value that disagrees with its column names the spine row.
    r = rest.post(FS + "/training-sets/create", json={
        **base, "spine": {"records": [{"store_id": 42}, {"store_id": "forty-two"}]},
        "feature_lookups": [lookup]})  # fmt: skip
    _refused(r, "spine.records[1]: column 'store_id'")
    # A default that does not fit its feature names the default.
    r = rest.post(FS + "/training-sets/create", json={
        **base, "spine": {"records": [{"store_id": 42}]},
        "feature_lookups": [{**lookup, "default_values": {"visits": 0.5}}]})  # fmt: skip
    body = _refused(r, "feature_lookups[0].default_values: column 'visits' (long)", "0.5 is not an integer")
    assert "Records do not fit" not in body["message"], body
    r = rest.post(FS + "/training-sets/create", json={
        **base, "spine": {"records": [{"store_id": 42}, {"store_id": 404}]},
        "feature_lookups": [{**lookup, "default_values": {"visits": -1, "revenue": "0"}}]})  # fmt: skip
    _refused(r, "feature_lookups[0].default_values: column 'revenue' (double)")
    rows = _training_rows(_create_training_set(rest, {
        **base, "spine": {"records": [{"store_id": 42}, {"store_id": 404}]},
        "feature_lookups": [{**lookup, "default_values": {"visits": -1, "revenue": 0}}]}))  # fmt: skip
    assert rows == [{"store_id": 42, "visits": 10, "revenue": 1.5},
                    {"store_id": 404, "visits": -1, "revenue": 0.0}], rows  # fmt: skip

    # Read keys and online lookup keys: an integer key takes integers only.
    r = rest.post(FS + "/feature-tables/read", json={"name": name, "keys": [{"store_id": 42.25}]})
    _refused(r, "keys[0]: column 'store_id' (integer)", "42.25 is not an integer")
    assert _read(rest, name, keys=[{"store_id": 42.0}])["records"][0]["visits"] == 10
    _publish(rest, name, "full")
    for key, why in [(42.25, "42.25 is not an integer"), ("42", "is not an integer"), (2**40, "out of range")]:
        r = rest.post(FS + "/online/lookup", json={"lookups": [{"table_name": name, "keys": [{"store_id": key}]}]})
        _refused(r, "lookups[0].keys[0]", "Key 'store_id'", why)
    found = _lookup(rest, [{"table_name": name, "keys": [{"store_id": 42}, {"store_id": 42.0}]}])[0]["rows"]
    assert [f["visits"] for f in found] == [10, 10], found


def test_bad_content_types_are_invalid_parameter_values(rest):
    name = _stores(rest)
    r = rest.post(FS + "/feature-tables/write", params={"name": name}, content=b"store_id,visits\n1,2\n",
                  headers={"Content-Type": "text/csv"})  # fmt: skip
    _refused(r, "Unsupported content type 'text/csv'")
    assert _get(rest, name)["name"] == name
    # Cleanup is part of the contract (a refused write left nothing half-done to delete).
    assert _delete(rest, "/feature-tables/delete", {"name": name}).status_code == 200


def test_a_json_spine_time_column_takes_epoch_milliseconds(rest):
    name = _name("tsspine")
    _create(rest, name, schema=[{"name": "user_id", "type": "long"}, {"name": "ts", "type": "timestamp"},
                                {"name": "v", "type": "long"}], timestamp_key="ts")  # fmt: skip
    _write(rest, name, [{"user_id": 1, "ts": "2024-03-01T00:00:00Z", "v": 1},
                        {"user_id": 1, "ts": "2024-03-02T00:00:00Z", "v": 2}])  # fmt: skip
    noon = int(dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc).timestamp() * 1000)
    rows = _training_rows(_create_training_set(rest, {
        "spine": {"records": [{"user_id": 1, "at": noon}, {"user_id": 1, "at": "2024-03-02T12:00:00Z"}]},
        "feature_lookups": [{"table_name": name, "lookup_key": ["user_id"], "timestamp_lookup_key": "at"}],
        "output": {"format": "json"},
    }))  # fmt: skip
    assert [r["v"] for r in rows] == [1, 2], rows
    assert pd.Timestamp(rows[0]["at"]) == pd.Timestamp("2024-03-01T12:00:00Z"), rows
