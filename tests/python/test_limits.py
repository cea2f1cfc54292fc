"""Request limits and streaming: a body over a route's limit gets a 413 in MLflow's error shape
(never a reset connection, never a half-written record), and a 1 GiB artifact goes up and
comes back through the stock client without the server holding it in memory.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path

import mlflow
import mlflow.artifacts
import pytest
from conftest import FERROFLOW_START_TIMEOUT_S, REPO_ROOT, _free_port, _Server
from helpers import unique_name

MiB = 1 << 20
JSON_LIMIT = 64 * MiB
DATA_LIMIT = 2048 * MiB


@pytest.fixture(autouse=True)
def _only_ferroflow(server_kind):
    if server_kind == "mlflow":
        pytest.skip("ferroflow's own limits: the reference server has none of these")


def _over_limit(resp, path, limit, declared=None):
    assert resp.status_code == 413, resp.text[:300]
    body = resp.json()
    size = f" ({declared} bytes)" if declared is not None else ""
    assert body == {
        "error_code": "RESOURCE_LIMIT_EXCEEDED",
        "message": f"The request body{size} is larger than {path} accepts: "
        f"at most {limit} bytes ({limit >> 20} MiB).",
    }, body


def _metrics_body(run_id, n_bytes):
    """A log-batch body of about n_bytes: one metric with a long key, repeated."""
    key = "k" * 200
    one = f'{{"key":"{key}","value":1.0,"timestamp":1,"step":0}},'
    count = n_bytes // len(one) + 1
    return (f'{{"run_id":"{run_id}","metrics":[' + one * count).rstrip(",") + "]}"


def test_json_body_over_the_limit_gets_413_and_writes_nothing(rest, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    body = _metrics_body(run_id, JSON_LIMIT + MiB).encode()
    path = "/api/2.0/mlflow/runs/log-batch"
    # httpx sends the whole body before it reads the answer: a server that answered early
    # and closed would show here as a transport error, not a response.
    r = rest.post(path, content=body, headers={"Content-Type": "application/json"}, timeout=120)
    _over_limit(r, path, JSON_LIMIT, declared=len(body))
    # The same connection keeps working (the rest of the body was read, not left unread).
    assert rest.get("/health").status_code == 200
    assert client.get_run(run_id).data.metrics == {}


def test_chunked_json_body_over_the_limit_gets_413(rest, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    body = _metrics_body(run_id, JSON_LIMIT + MiB).encode()

    def chunks():  # no Content-Length: the limit is found while reading
        for i in range(0, len(body), MiB):
            yield body[i : i + MiB]

    path = "/api/2.0/mlflow/runs/log-batch"
    r = rest.post(path, content=chunks(), headers={"Content-Type": "application/json"}, timeout=120)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    _over_limit(r, path, JSON_LIMIT)
    assert client.get_run(run_id).data.metrics == {}


def _raw_post(url, path, declared, content_type, sent=MiB):
    """Declares a `declared`-byte body, sends `sent` bytes of it and reads the answer: what a
    client that watches for an early answer (curl) sees. Returns (status, headers, body)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        )
        s.sendall(head.encode() + b"0" * sent)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before an answer: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = s.recv(65536)
            assert chunk, "connection closed inside the answer"
            rest += chunk
        return int(lines[0].split()[1]), headers, rest[:length]


@pytest.mark.parametrize(
    "path,content_type",
    [
        ("/api/2.0/feature-store/feature-tables/write", "application/vnd.apache.parquet"),
        ("/api/2.0/automl/datasets", "text/csv"),
    ],
)
def test_data_uploads_over_2_gib_are_refused_before_they_are_read(tracking_uri, path, content_type):
    import json

    declared = DATA_LIMIT + 1
    status, headers, body = _raw_post(tracking_uri, path, declared, content_type)
    assert status == 413
    # Too large to drain: answered at once, and the connection closes.
    assert headers.get("connection") == "close"
    _over_limit(_Resp(status, json.loads(body)), path, DATA_LIMIT, declared=declared)


class _Resp:
    def __init__(self, status, body):
        self.status_code, self._body, self.text = status, body, str(body)

    def json(self):
        return self._body


def _proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _pattern_file(path, size):
    """`size` bytes that do not repeat with a short period (a 1 MiB random block, rotated)."""
    block = os.urandom(MiB)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MiB):
            chunk = block[i % 4096 :] + block[: i % 4096]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def test_1_gib_artifact_round_trip_keeps_the_server_small(tmp_path, server_kind, tracking_uri, monkeypatch):
    """A server of its own (its memory is measured alone), on SQLite and a local directory."""
    if server_kind != "ferroflow" or os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI"):
        pytest.skip("starts its own ferroflow on SQLite; runs in the SQLite group")
    size = 1024 * MiB
    binary = Path(os.environ.get("FERROFLOW_BIN", REPO_ROOT / "target/debug/ferroflow"))
    workdir = Path(tempfile.mkdtemp(prefix="ferroflow-limits-", dir=tmp_path))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _Server(
        "ferroflow",
        [str(binary), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir}/db.sqlite",
         "--artifacts-destination", str(workdir / "artifacts")],
        workdir, FERROFLOW_START_TIMEOUT_S,
    )  # fmt: skip
    server.start(url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "600")
    try:
        mlflow.set_tracking_uri(url)
        client = mlflow.MlflowClient(url)
        run = client.create_run(client.create_experiment(unique_name("big")))
        pid = server.proc.pid
        before = _proc_kib(pid, "VmRSS")
        src = tmp_path / "big.bin"
        expected = _pattern_file(src, size)
        with mlflow.start_run(run_id=run.info.run_id):
            mlflow.log_artifact(str(src), artifact_path="big")
        up_peak = _proc_kib(pid, "VmHWM")
        src.unlink()
        out = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{run.info.artifact_uri}/big/big.bin", dst_path=str(tmp_path / "dl")
        )
        peak = _proc_kib(pid, "VmHWM")
        assert os.path.getsize(out) == size
        assert _sha256(out) == expected
        growth_mib = (peak - before) / 1024
        print(
            f"\n1 GiB artifact: server RSS before {before / 1024:.1f} MiB, peak after upload "
            f"{up_peak / 1024:.1f} MiB, after download {peak / 1024:.1f} MiB "
            f"(growth {growth_mib:.1f} MiB)"
        )
        assert growth_mib < 100, f"server memory grew by {growth_mib:.0f} MiB for a 1 GiB artifact"
    finally:
        mlflow.set_tracking_uri(tracking_uri)
        server.stop()
