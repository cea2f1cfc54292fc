#!/usr/bin/env python3
"""Import throughput of `ferroflow import-mlflow`: an MLflow 3.17.2 SQLite store (schema made
by a real `mlflow server`) holding N runs (default 10,000; name, tags, param, two metrics each,
as bench/ui_bench.py writes them) and one run with a P-point metric history (default
1,000,000), imported into a fresh ferroflow store on SQLite and on PostgreSQL
(FERROFLOW_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432; a new database is
made for the run). Prints rows copied, seconds and rows/s per target; checks that the count
table reports no missing row.

With --client it instead runs tests/python/test_import_mlflow.py's main test at that scale (the
long mode of that test): the store is written by a real `mlflow server` through the stock client
(N runs and a P-point history logged with log_batch), imported, and every entity read back through
the client from ferroflow must equal MLflow's own answers. Prints the test's wall time.

Usage: bench/import_mlflow.py [--runs 10000] [--points 1000000] [--ferroflow-bin target/release/ferroflow] [--client]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_bench import ROOT, Server, create_experiment, fill_mlflow_runs  # noqa: E402


def fill_history(db: Path, exp: str, points: int):
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    rid = uuid.uuid4().hex
    t0 = int(time.time() * 1000)
    con.execute("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rid, "history", "UNKNOWN", "", "", "bench", "FINISHED", t0, t0 + points, "", "active",
                 f"mlflow-artifacts:/{exp}/{rid}/artifacts", int(exp)))
    con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
                    (("loss", 1.0 / (s + 1), t0 + s, rid, s, 0) for s in range(points)))
    con.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
                ("loss", 1.0 / points, t0 + points - 1, points - 1, 0, rid))
    con.execute("COMMIT")
    con.close()


def client_mode(args) -> int:
    env = dict(os.environ, FERROFLOW_IMPORT_RUNS=str(args.runs), FERROFLOW_IMPORT_POINTS=str(args.points),
               FERROFLOW_BIN=str(Path(args.ferroflow_bin).resolve()))
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                         "test_import_mlflow.py", "-k", f"copies_everything and {args.source}"],
                        cwd=ROOT / "tests/python", env=env).returncode
    print(f"stock-client import test ({args.source} source), {args.runs} runs + {args.points}-point history: "
          f"{'passed' if rc == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s", flush=True)
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    ap.add_argument("--ferroflow-bin", default=f"{target}/release/ferroflow")
    ap.add_argument("--mlflow", default=str(ROOT / ".venv/bin/mlflow"))
    ap.add_argument("--out", default=str(ROOT / "bench/out" / time.strftime("import-%Y%m%d-%H%M%S")))
    ap.add_argument("--client", action="store_true",
                    help="run the stock-client import test at this scale instead of timing the import")
    ap.add_argument("--source", choices=["native", "mysql"], default="native",
                    help="with --client: the MLflow store's backend (native: SQLite, or PostgreSQL under "
                         "FERROFLOW_TEST_BACKEND_STORE_URI; mysql: MariaDB)")
    args = ap.parse_args()
    if args.client:
        return client_mode(args)
    out = Path(args.out)
    work = out / "mlflow"
    work.mkdir(parents=True, exist_ok=True)
    server = Server("mlflow", args, work)
    server.start()
    exp = create_experiment(server.url, "import-bench")
    server.stop()
    t0 = time.monotonic()
    fill_mlflow_runs(server.db, exp, args.runs)
    fill_history(server.db, exp, args.points)
    print(f"MLflow store: {args.runs} runs + a {args.points}-point history written in "
          f"{time.monotonic() - t0:.0f} s ({server.db.stat().st_size / 2**20:.0f} MiB)", flush=True)
    pg = os.environ.get("FERROFLOW_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    db = f"import_bench_{os.getpid()}"
    targets = [("SQLite", f"sqlite:///{out / 'ferroflow.db'}")]
    if subprocess.run(["psql", f"{pg}/postgres", "-q", "-c", f"CREATE DATABASE {db}"]).returncode == 0:
        targets.append(("PostgreSQL", f"{pg}/{db}"))
    lines = []
    for name, uri in targets:
        t0 = time.monotonic()
        done = subprocess.run([args.ferroflow_bin, "import-mlflow", "--from", f"sqlite:///{server.db}", "--to", uri],
                              capture_output=True, text=True)
        secs = time.monotonic() - t0
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        rows = sum(int(line.rsplit(None, 3)[2]) for line in done.stdout.splitlines()[1:] if line.strip())
        lines.append(f"{name:11} {rows:>10} rows in {secs:6.1f} s = {rows / secs:>9.0f} rows/s")
        print(lines[-1], flush=True)
    if len(targets) > 1:
        subprocess.run(["psql", f"{pg}/postgres", "-q", "-c", f"DROP DATABASE {db}"])
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
