"""Small assertion helpers shared by the compatibility tests."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import httpx
import pytest
from mlflow.exceptions import MlflowException


def unique_name(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@contextmanager
def raises_mlflow_error(error_code: str, match: str | None = None):
    """Expect an MlflowException (e.g. a RestException) carrying `error_code`."""
    with pytest.raises(MlflowException) as info:
        yield info
    assert info.value.error_code == error_code, (
        f"expected {error_code}, got {info.value.error_code}: {info.value.message}"
    )
    if match is not None:
        assert match in info.value.message, info.value.message


def error_body(resp: httpx.Response, error_code: str | None = None, status: int | None = None):
    """Assert an MLflow-style JSON error response ({"error_code", "message"}) and return it."""
    assert 400 <= resp.status_code < 500, (
        f"expected a 4xx, got {resp.status_code}: {resp.text[:500]}"
    )
    if status is not None:
        assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if error_code is not None:
        assert body["error_code"] == error_code, body
    return body


def fresh_store(work, name: str) -> str:
    """A fresh backend store: a SQLite file in `work`, or on the suite's PostgreSQL run
    (FERROFLOW_TEST_BACKEND_STORE_URI) a new database on that PostgreSQL server."""
    import os
    import subprocess
    import time

    base = os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI", "")
    if not base.startswith("postgres"):
        return f"sqlite:///{work / name}"
    db = f"t_{name.split('.')[0]}_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    server = base.rsplit("/", 1)[0]
    subprocess.run(["psql", f"{server}/postgres", "-q", "-c", f"CREATE DATABASE {db}"], check=True)
    return f"{server}/{db}"
