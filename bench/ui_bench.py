#!/usr/bin/env python3
"""The web UI where MLflow's is slow: time to a rendered runs table over an experiment of 100,000
runs, and to a run's metric charts with 10,000-step histories, in a real headless Chromium,
against ferroflow and against `mlflow server` on the same data, same machine, same session.

Data, identical on both servers:
- experiment `ui-bench-runs`: N runs (default 100,000) written straight into each server's
  SQLite store, as bench/gen_runs.py does for ferroflow and as MLflow's own rows look for MLflow
  (run name r<i>, start_time base+i, tags mlflow.runName and group, param lr, metrics acc/loss);
- experiment `ui-bench-history`: 2 runs with metrics loss and acc of S steps each (default
  10,000), logged over REST with log-batch.

Measured per page and server, R times (default 5) in a fresh browser context (nothing cached,
the UI bundle loads each time, as on a first visit), from `page.goto` to:
- runs table: the newest run's name (`r<N-1>`) visible in the table;
- metric charts: the run's Model metrics tab with both charts drawn (plotly's line paths present
  for loss and acc);
- chart view: the runs page of the history experiment in chart mode with both charts drawn.
Also the server's share: the summed request-to-last-byte time of the page's API calls
(`/ajax-api/…`, `/graphql`), where the two servers differ; the rest is the UI bundle loading
and rendering in the browser, the same JS on both. Prints medians and the ratio mlflow /
ferroflow.

Usage: bench/ui_bench.py [--runs 100000] [--steps 10000] [--repeat 5]
         [--ferroflow-bin target/release/ferroflow] [--mlflow .venv/bin/mlflow]
         [--out bench/out/ui-<time>] [--only ferroflow|mlflow]
Needs the venv (scripts/python-env.sh), the UI bundle (scripts/mlflow-ui.sh), Debian's chromium.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(url: str, proc: subprocess.Popen, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered /health")


class Server:
    def __init__(self, kind: str, args, work: Path):
        self.kind, self.args, self.work = kind, args, work
        self.db = work / "store.db"
        self.proc = None
        self.url = None

    def start(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.work / "server.log", "a")
        arts = str(self.work / "artifacts")
        if self.kind == "ferroflow":
            cmd = [self.args.ferroflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", f"sqlite:///{self.db}", "--artifacts-destination", arts]
            env = dict(os.environ, FERROFLOW_STATIC_FOLDER=str(ROOT / ".mlflow-ui"))
        else:
            cmd = [self.args.mlflow, "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", f"sqlite:///{self.db}", "--artifacts-destination", arts,
                   "--workers", "1"]
            env = dict(os.environ)
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.work)
        wait_health(self.url, self.proc)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


def api(url: str, path: str, body=None, method="POST"):
    r = httpx.request(method, f"{url}/api/2.0/mlflow/{path}", json=body, timeout=120)
    r.raise_for_status()
    return r.json()


def create_experiment(url, name) -> str:
    return api(url, "experiments/create", {"name": name})["experiment_id"]


def log_histories(url: str, exp: str, steps: int) -> list[str]:
    """Two runs, loss and acc at `steps` steps each, over REST (1,000 metrics per log-batch)."""
    ids = []
    t0 = int(time.time() * 1000)
    for r in range(2):
        rid = api(url, "runs/create", {"experiment_id": exp, "run_name": f"history-{r}", "start_time": t0})["run"][
            "info"]["run_id"]
        metrics = []
        for s in range(steps):
            metrics.append({"key": "loss", "value": 1.0 / (s + 1 + r), "timestamp": t0 + s, "step": s})
            metrics.append({"key": "acc", "value": 1.0 - 1.0 / (s + 2 + r), "timestamp": t0 + s, "step": s})
        for i in range(0, len(metrics), 1000):
            api(url, "runs/log-batch", {"run_id": rid, "metrics": metrics[i:i + 1000]})
        api(url, "runs/update", {"run_id": rid, "status": "FINISHED", "end_time": t0 + steps})
        ids.append(rid)
    return ids


def fill_mlflow_runs(db: Path, exp: str, n: int):
    """N runs in MLflow's own schema, shaped as its store writes them (one template run made over
    REST first shows the row shape: source_type, user_id, artifact_uri)."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    rnd = random.Random(0)
    base = int(time.time() * 1000) - n
    runs, tags, params, metrics, latest = [], [], [], [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        runs.append((rid, f"r{i}", "UNKNOWN", "", "", "bench", "FINISHED", base + i, base + i + 1, "", "active",
                     f"mlflow-artifacts:/{exp}/{rid}/artifacts", int(exp)))
        tags += [("mlflow.runName", f"r{i}", rid), ("group", f"g{i % 10}", rid), ("mlflow.user", "bench", rid)]
        params.append(("lr", str(rnd.choice([0.1, 0.01, 0.001])), rid))
        for key in ("acc", "loss"):
            v = rnd.random()
            metrics.append((key, v, base + i, rid, 0, 0))
            latest.append((key, v, base + i, 0, 0, rid))
    con.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                    metrics)
    con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
                    latest)
    con.execute("COMMIT")
    con.close()


def populate(server: Server, args) -> dict:
    if server.kind == "ferroflow":
        # Migrate, stop, bulk-load with gen_runs.py (it takes the file exclusively), restart.
        server.start()
        server.stop()
        out = subprocess.run([sys.executable, str(ROOT / "bench/gen_runs.py"), str(server.db), "--runs",
                              str(args.runs), "--experiment-name", "ui-bench-runs"],
                             check=True, capture_output=True, text=True).stdout
        exp = out.strip().splitlines()[-1].split("=", 1)[1]
        server.start()
    else:
        server.start()
        exp = create_experiment(server.url, "ui-bench-runs")
        server.stop()
        fill_mlflow_runs(server.db, exp, args.runs)
        server.start()
    hist_exp = create_experiment(server.url, "ui-bench-history")
    hist_runs = log_histories(server.url, hist_exp, args.steps)
    return {"runs_exp": exp, "hist_exp": hist_exp, "hist_runs": hist_runs}


def timed(browser, url: str, fragment: str, ready) -> tuple[float, float]:
    """(seconds to rendered content, seconds the server spent answering the page's API calls:
    the sum of their request-to-last-byte times)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    api = []

    def finished(request):
        if "/ajax-api/" in request.url or request.url.endswith("/graphql"):
            t = request.timing
            api.append(max(0.0, t["responseEnd"] - t["requestStart"]) / 1000)

    page.on("requestfinished", finished)
    try:
        t0 = time.perf_counter()
        page.goto(f"{url}/#/{fragment}", wait_until="commit")
        ready(page)
        return time.perf_counter() - t0, sum(api)
    finally:
        ctx.close()


def charts_drawn(page, metrics=("loss", "acc"), timeout=300_000):
    for m in metrics:
        card = page.locator("[data-testid=experiment-view-compare-runs-card]").filter(has_text=m).first
        card.locator("path.js-line").first.wait_for(state="attached", timeout=timeout)


def measure(server: Server, data: dict, args, browser) -> dict:
    newest = f"r{args.runs - 1}"
    rid = data["hist_runs"][0]
    pages = {
        f"runs table ({args.runs} runs)": (
            f"experiments/{data['runs_exp']}/runs",
            lambda p: p.get_by_text(newest, exact=True).first.wait_for(state="visible", timeout=300_000),
        ),
        f"run metric charts ({args.steps} steps)": (
            f"experiments/{data['hist_exp']}/runs/{rid}/model-metrics",
            charts_drawn,
        ),
        f"runs chart view ({args.steps} steps)": (
            f"experiments/{data['hist_exp']}/runs?compareRunsMode=CHART",
            charts_drawn,
        ),
    }
    res = {}
    for name, (fragment, ready) in pages.items():
        timed(browser, server.url, fragment, ready)  # warm-up: server caches, the OS page cache
        runs = [timed(browser, server.url, fragment, ready) for _ in range(args.repeat)]
        res[name] = [r[0] for r in runs]
        res[name + " [API]"] = [r[1] for r in runs]
        print(f"  {server.kind:9} {name:32} median {statistics.median(res[name]):6.2f} s  "
              f"min {min(res[name]):6.2f} s  API {statistics.median(res[name + ' [API]']):6.3f} s", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    ap.add_argument("--ferroflow-bin", default=f"{target}/release/ferroflow")
    ap.add_argument("--mlflow", default=str(ROOT / ".venv/bin/mlflow"))
    ap.add_argument("--out", default=str(ROOT / "bench/out" / time.strftime("ui-%Y%m%d-%H%M%S")))
    ap.add_argument("--only", choices=["ferroflow", "mlflow"])
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for kind in ("ferroflow", "mlflow"):
            if args.only and kind != args.only:
                continue
            work = out / kind
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            server = Server(kind, args, work)
            try:
                t0 = time.monotonic()
                data = populate(server, args)
                print(f"{kind}: {args.runs} runs + 2 x 2 x {args.steps}-step histories loaded in "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
                results[kind] = measure(server, data, args, browser)
            finally:
                server.stop()
        browser.close()
    lines = [f"UI benchmark: {args.runs} runs, {args.steps}-step metrics, {args.repeat} visits each "
             f"(fresh browser context), median seconds from navigation to rendered content"]
    lines.append(f"{'page (seconds; [API] = server time)':40} {'ferroflow':>10} {'mlflow':>10} {'ratio':>7}")
    for name in next(iter(results.values())):
        f = statistics.median(results["ferroflow"][name]) if "ferroflow" in results else None
        m = statistics.median(results["mlflow"][name]) if "mlflow" in results else None
        ratio = f"{m / f:6.1f}x" if f and m else "-"
        lines.append(f"{name:40} {f if f is not None else float('nan'):10.3f} "
                     f"{m if m is not None else float('nan'):10.3f} {ratio:>7}")
    text = "\n".join(lines)
    print("\n" + text)
    (out / "summary.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
