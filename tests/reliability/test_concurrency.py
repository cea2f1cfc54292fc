"""Concurrent writers on one run: 64 clients log metric batches, params and tags to the same run
at once, on SQLite (and on PostgreSQL when FERROFLOW_TEST_POSTGRES_URL names a server). No
request may fail ("database is locked" and serialization errors are retried inside the server),
and the run ends holding exactly the sum of what was acknowledged.

Short mode (scripts/test): 64 writers × 5 batches of 100 points. Long mode
(bench/reliability_fuzz.sh): FERROFLOW_CONCURRENCY_BATCHES=100.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("FERROFLOW_BIN", ROOT / "target" / "debug" / "ferroflow"))
WRITERS = 64
BATCHES = int(os.environ.get("FERROFLOW_CONCURRENCY_BATCHES", "5"))
POINTS = 100
OUT = Path(os.environ.get("FERROFLOW_TEST_OUTPUT", Path(tempfile.gettempdir()) / "ferroflow-test-output")) / "reliability"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stores() -> list[str]:
    """SQLite, and PostgreSQL when scripts/test found one (FERROFLOW_TEST_REQUIRE), or when run by
    hand with FERROFLOW_TEST_POSTGRES_URL set."""
    required = os.environ.get("FERROFLOW_TEST_REQUIRE")
    if required is not None:
        with_pg = "postgres" in required.split(",")
    else:
        with_pg = os.environ.get("FERROFLOW_TEST_POSTGRES_URL", "").startswith("postgres")
    return ["sqlite", "postgres"] if with_pg else ["sqlite"]


@pytest.fixture(params=_stores())
def server(request):
    work = Path(tempfile.mkdtemp(prefix="ferroflow-concurrency-"))
    if request.param == "sqlite":
        store = f"sqlite:///{work / 'c.db'}"
        drop = None
    else:
        base = os.environ["FERROFLOW_TEST_POSTGRES_URL"].rsplit("/", 1)[0]
        db = f"concurrency_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        subprocess.run(["psql", f"{base}/postgres", "-q", "-c", f"CREATE DATABASE {db}"], check=True)
        store, drop = f"{base}/{db}", (base, db)
    port = _free_port()
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([str(BIN), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", store, "--artifacts-destination", str(work / "artifacts")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield {"url": url, "store": request.param}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    if drop:
        subprocess.run(["psql", f"{drop[0]}/postgres", "-q", "-c", f"DROP DATABASE IF EXISTS {drop[1]} WITH (FORCE)"])
    shutil.rmtree(work, ignore_errors=True)


def test_64_writers_on_one_run_lose_nothing_and_see_no_error(server):
    url = server["url"]
    with httpx.Client(base_url=url, timeout=120) as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "concurrency"}).json()["experiment_id"]
        run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]

    def writer(w: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=url, timeout=120) as c:
            for b in range(BATCHES):
                metrics = [{"key": "loss", "value": w + i / 1000, "timestamp": 1_700_000_000_000,
                            "step": (w * BATCHES + b) * POINTS + i} for i in range(POINTS)]
                r = c.post("/api/2.0/mlflow/runs/log-batch", json={
                    "run_id": run, "metrics": metrics,
                    "params": [{"key": f"p{w}_{b}", "value": str(b)}],
                    "tags": [{"key": f"writer{w}", "value": str(b)}]})
                statuses.append(r.status_code)
        return statuses

    started = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        statuses = [s for ss in pool.map(writer, range(WRITERS)) for s in ss]
    seconds = time.monotonic() - started
    assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
    with httpx.Client(base_url=url, timeout=120) as c:
        history = []
        token = None
        while True:
            params = {"run_id": run, "metric_key": "loss", "max_results": 25000}
            if token:
                params["page_token"] = token
            page = c.get("/api/2.0/mlflow/metrics/get-history", params=params).json()
            history += page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                break
        data = c.get("/api/2.0/mlflow/runs/get", params={"run_id": run}).json()["run"]["data"]
    assert len(history) == WRITERS * BATCHES * POINTS
    assert len({m["step"] for m in history}) == WRITERS * BATCHES * POINTS
    assert len(data["params"]) == WRITERS * BATCHES
    assert {t["key"]: t["value"] for t in data["tags"] if t["key"].startswith("writer")} == {
        f"writer{w}": str(BATCHES - 1) for w in range(WRITERS)}
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "concurrency-summary.txt", "a") as f:
        f.write(f"{server['store']}: {WRITERS} writers x {BATCHES} log-batch requests ({POINTS} points, a param, "
                f"a tag each) on one run in {seconds:.1f} s: {len(statuses)} acknowledged, 0 errors, "
                f"{len(history)} points read back\n")
