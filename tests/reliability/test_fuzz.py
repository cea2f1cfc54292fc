"""Fuzz the whole API from its spec: Schemathesis (`st run`) over api-spec/openapi.yaml against
a running ferroflow (SQLite store, local artifacts), every operation, with generated and
example data. Checks: no 5xx, every status code and content type is one the spec declares.

Short mode (scripts/test): FERROFLOW_FUZZ_EXAMPLES=10 per operation. Long mode (benchmark):
bench/reliability_fuzz.sh runs it with 200. The figures (operations, cases generated, failures)
land in $FERROFLOW_TEST_OUTPUT/reliability/fuzz-summary.txt; docs/reliability.md keeps them.

Designed exceptions, fuzzed with the status and content-type checks only: multipart and
presigned transfers on a local artifact store answer MLflow's 501 NOT_IMPLEMENTED (clients fall
back to plain transfers). The auth routes exist only with auth on and are not fuzzed here.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "api-spec" / "openapi.yaml"
BIN = Path(os.environ.get("FERROFLOW_BIN", ROOT / "target" / "debug" / "ferroflow"))
EXAMPLES = int(os.environ.get("FERROFLOW_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("FERROFLOW_FUZZ_SEED", "20261208")
OUT = Path(os.environ.get("FERROFLOW_TEST_OUTPUT", Path(tempfile.gettempdir()) / "ferroflow-test-output")) / "reliability"
AUTH_ONLY = r"^/api/2\.0/token/|^/api/2\.0/mlflow/users/|^/api/3\.0/mlflow/(users|roles)/"
NOT_IMPLEMENTED_ON_LOCAL = r"^/api/2\.0/mlflow-artifacts/(mpu|presigned)/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not BIN.exists():
        pytest.fail(f"no ferroflow binary at {BIN} (cargo build, or FERROFLOW_BIN)")
    work = Path(tempfile.mkdtemp(prefix="ferroflow-fuzz-"))
    port = _free_port()
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([str(BIN), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{work / 'fuzz.db'}",
                             "--artifacts-destination", str(work / "artifacts")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("ferroflow did not start:\n" + (work / "server.log").read_text()[-3000:])
    yield {"url": url, "work": work}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    if not os.environ.get("FERROFLOW_KEEP_TMP"):
        shutil.rmtree(work, ignore_errors=True)


def _st(url: str, workdir: Path, checks: str, *selection: str) -> tuple[int, str]:
    st = Path(sys.executable).parent / "st"
    argv = [str(st), "run", str(SPEC), "--url", url, "--checks", checks, "--max-examples", str(EXAMPLES),
            "--phases", "examples,fuzzing", "--seed", SEED, "--no-color", *selection]
    # Run in the server's scratch directory: st keeps a cache in its working directory.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=workdir,
                          env=dict(os.environ, SCHEMATHESIS_TELEMETRY="false"))
    return done.returncode, done.stdout + done.stderr


def _figures(output: str) -> tuple[int, int, int]:
    """(operations tested, cases generated, unique failures) from st's summary."""
    tested = re.search(r"Tested:\s+(\d+)", output)
    cases = re.search(r"(\d+) generated, (?:(\d+) found (\d+) unique failures|\d+ passed|)", output)
    generated = int(cases.group(1)) if cases else 0
    failures = int(cases.group(3)) if cases and cases.group(3) else 0
    return (int(tested.group(1)) if tested else 0), generated, failures


def test_every_operation_survives_fuzzing_within_its_spec(server):
    all_checks = "not_a_server_error,status_code_conformance,content_type_conformance"
    runs = [
        ("all operations", all_checks,
         ["--exclude-path-regex", f"{AUTH_ONLY}|{NOT_IMPLEMENTED_ON_LOCAL}"]),
        ("multipart/presigned (501 by design on a local store)", "status_code_conformance,content_type_conformance",
         ["--include-path-regex", NOT_IMPLEMENTED_ON_LOCAL]),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    lines, failed = [], []
    for label, checks, selection in runs:
        code, output = _st(server["url"], server["work"], checks, *selection)
        tested, generated, failures = _figures(output)
        lines.append(f"{label}: {tested} operations, {generated} cases ({EXAMPLES} examples each), "
                     f"{failures} failures, exit {code}")
        (OUT / f"fuzz-{len(lines)}.log").write_text(output)
        assert tested > 0, output[-3000:]
        if code != 0:
            failed.append(output[-6000:])
    (OUT / "fuzz-summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    # The server survived it all.
    assert httpx.get(f"{server['url']}/health", timeout=5).status_code == 200
    assert not failed, "\n\n".join(failed)
