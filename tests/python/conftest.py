"""Session fixtures for the MLflow-compatibility suite.

Which server the suite talks to:
  * FERROFLOW_TRACKING_URI=http://host:port  -> use that running server as-is.
  * FERROFLOW_TEST_AGAINST=mlflow            -> start the reference `mlflow server` from
                                               <repo>/.venv (proves the tests encode MLflow's
                                               real behavior).
  * otherwise                                -> start the ferroflow binary (FERROFLOW_BIN or
                                               <repo>/target/debug/ferroflow) on a free port with
                                               a fresh SQLite file and artifacts dir, or the
                                               store in FERROFLOW_TEST_BACKEND_STORE_URI and the
                                               destination in
                                               FERROFLOW_TEST_ARTIFACTS_DESTINATION.
"""

from __future__ import annotations

import os

# Must be set before mlflow is imported anywhere: no telemetry (no internet here) and no
# client-side retries, so a server 5xx fails fast instead of backing off for minutes.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from helpers import unique_name

REPO_ROOT = Path(__file__).resolve().parents[2]
FERROFLOW_START_TIMEOUT_S = float(os.environ.get("FERROFLOW_START_TIMEOUT", "30"))
MLFLOW_START_TIMEOUT_S = float(os.environ.get("MLFLOW_START_TIMEOUT", "180"))
# The ONNX Runtime library scripts/onnxruntime.sh installs; servers started here inherit it.
ORT_LIBRARY = REPO_ROOT / ".ort" / "lib" / "libonnxruntime.so.1.31.1"
if "ORT_DYLIB_PATH" not in os.environ and ORT_LIBRARY.exists():
    os.environ["ORT_DYLIB_PATH"] = str(ORT_LIBRARY)
# MLflow's web UI bundle scripts/mlflow-ui.sh installs; servers started here serve it.
UI_FOLDER = REPO_ROOT / ".mlflow-ui"
if "FERROFLOW_STATIC_FOLDER" not in os.environ and (UI_FOLDER / "index.html").exists():
    os.environ["FERROFLOW_STATIC_FOLDER"] = str(UI_FOLDER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no output captured>"
    return text[-limit:] if text else "<empty>"


# The artifacts destination the started server uses (None for an external server); see the
# `artifacts_destination` fixture.
_ARTIFACTS_DESTINATION: str | None = None


class _Server:
    def __init__(self, kind: str, argv: list[str], workdir: Path, timeout_s: float,
                 env: dict[str, str] | None = None):
        self.kind = kind
        self.extra_env = env or {}
        self.argv = argv
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.stdout_path = workdir / f"{kind}.stdout.log"
        self.stderr_path = workdir / f"{kind}.stderr.log"
        self.proc: subprocess.Popen | None = None

    def start(self, url: str) -> None:
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        env.update(self.extra_env)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # so stop() can kill the whole process group
            )
        deadline = time.monotonic() + self.timeout_s
        last_error = "no response yet"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self._fail(f"exited with code {code} before becoming ready")
            try:
                resp = httpx.get(f"{url}/health", timeout=2)
                if resp.status_code == 200:
                    return
                last_error = f"GET /health -> {resp.status_code}"
            except httpx.HTTPError as exc:
                last_error = f"GET /health -> {type(exc).__name__}: {exc}"
            time.sleep(0.2)
        self.stop()
        self._fail(f"not ready after {self.timeout_s:.0f}s (last: {last_error})")

    def _fail(self, why: str) -> None:
        pytest.fail(
            f"{self.kind} server {why}.\ncommand: {' '.join(self.argv)}\n"
            f"--- stderr (tail) ---\n{_tail(self.stderr_path)}\n"
            f"--- stdout (tail) ---\n{_tail(self.stdout_path, 1500)}",
            pytrace=False,
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, 15)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server_kind() -> str:
    """'external', 'mlflow' or 'ferroflow' - lets a test note a documented difference."""
    if os.environ.get("FERROFLOW_TRACKING_URI"):
        return "external"
    if os.environ.get("FERROFLOW_TEST_AGAINST", "").lower() == "mlflow":
        return "mlflow"
    return "ferroflow"


@pytest.fixture(scope="session")
def tracking_uri(server_kind):
    """Base URL of the server under test; also exported as MLFLOW_TRACKING_URI."""
    import mlflow

    global _ARTIFACTS_DESTINATION

    if server_kind == "external":
        uri = os.environ["FERROFLOW_TRACKING_URI"].rstrip("/")
        server = None
        workdir = None
    else:
        binary = Path(os.environ.get("FERROFLOW_BIN", REPO_ROOT / "target/debug/ferroflow"))
        if server_kind == "ferroflow" and not binary.exists():
            pytest.fail(
                f"ferroflow binary not found at {binary}; run `cargo build` first, set "
                "FERROFLOW_BIN, or use FERROFLOW_TEST_AGAINST=mlflow / FERROFLOW_TRACKING_URI=...",
                pytrace=False,
            )
        workdir = Path(tempfile.mkdtemp(prefix=f"ferroflow-pytest-{server_kind}-"))
        port = _free_port()
        uri = f"http://127.0.0.1:{port}"
        db = workdir / f"{server_kind}.db"
        artifacts = workdir / "artifacts"
        artifacts.mkdir()
        if server_kind == "mlflow":
            mlflow_bin = REPO_ROOT / ".venv" / "bin" / "mlflow"
            if not mlflow_bin.exists():
                mlflow_bin = Path(sys.executable).parent / "mlflow"
            argv = [
                str(mlflow_bin), "server",
                "--backend-store-uri", f"sqlite:///{db}",
                # Proxied artifacts (mlflow-artifacts:/), as ferroflow serves them.
                "--artifacts-destination", str(artifacts),
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1",
            ]  # fmt: skip
            timeout = MLFLOW_START_TIMEOUT_S
            _ARTIFACTS_DESTINATION = str(artifacts)
        else:
            # FERROFLOW_TEST_BACKEND_STORE_URI runs the suite on another store (the test
            # command points it at a fresh PostgreSQL database).
            store = os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI") or f"sqlite:///{db}"
            # FERROFLOW_TEST_ARTIFACTS_DESTINATION (e.g. s3://bucket/prefix) replaces the
            # local artifacts directory.
            destination = os.environ.get("FERROFLOW_TEST_ARTIFACTS_DESTINATION") or str(artifacts)
            argv = [
                str(binary), "server",
                "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", store,
                "--artifacts-destination", destination,
            ]  # fmt: skip
            timeout = FERROFLOW_START_TIMEOUT_S
            _ARTIFACTS_DESTINATION = destination
        server = _Server(server_kind, argv, workdir, timeout)
        try:
            server.start(uri)
        except BaseException:
            if not os.environ.get("FERROFLOW_KEEP_TMP"):
                shutil.rmtree(workdir, ignore_errors=True)
            raise

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        if server is not None:
            server.stop()
        if workdir is not None and not os.environ.get("FERROFLOW_KEEP_TMP"):
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts_destination(tracking_uri) -> str | None:
    """The server's --artifacts-destination (a local directory or s3://bucket/prefix), or None
    for an external server (FERROFLOW_TRACKING_URI)."""
    return _ARTIFACTS_DESTINATION


@pytest.fixture(scope="session")
def client(tracking_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture(scope="session")
def rest(tracking_uri):
    """Raw HTTP client on the server's base URL, for wire-level checks."""
    with httpx.Client(base_url=tracking_uri, timeout=30) as c:
        yield c


@pytest.fixture
def make_name():
    """Returns a factory of unique (uuid-suffixed) names: make_name('prefix')."""
    return unique_name


@pytest.fixture
def experiment_id(client):
    """A fresh, empty experiment for one test."""
    return client.create_experiment(unique_name("test"))


@pytest.fixture(autouse=True)
def _no_active_run_leaks(request):
    """End any fluent run a test left open so the next test starts clean."""
    yield
    if "tracking_uri" not in request.fixturenames:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
