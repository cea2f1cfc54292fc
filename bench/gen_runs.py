#!/usr/bin/env python3
"""Insert N runs straight into a ferroflow SQLite backend store (no HTTP), for search benchmarks.

Each run gets what setup_bench.py's search runs get over the REST API:
  runs row (status RUNNING, as runs/create leaves it; name r<i>; start_time = base + i),
  tags mlflow.runName=r<i> and group=g<i % 10>, param lr in {0.1, 0.01, 0.001},
  metrics acc and loss (uniform [0,1), step 0) in both `metrics` (history) and `latest_metrics`.
Handles both metric-history layouts of migrations/sqlite/0001_tracking.sql: `metrics` keyed by
(run_uuid, key, ...) and, since commit b47f2a1, `metric_series` (series_id per run/key) +
`metrics` keyed by (series_id, timestamp, step, value, is_nan).

The schema must already exist: start ferroflow once on the file (it applies
migrations/sqlite/*.sql) and stop it before running this script (it takes the database
exclusively while loading). The experiment is created here unless --experiment-id names one.

Usage: gen_runs.py DB_PATH --runs 1000000 [--experiment-name NAME | --experiment-id ID]
                   [--batch 50000] [--seed 0] [--artifact-root mlflow-artifacts:/]
Prints the experiment id on the last line (machine-readable: "experiment_id=<id>").
"""
import argparse
import random
import sqlite3
import sys
import time
import uuid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--experiment-name", default=None)
    ap.add_argument("--experiment-id", type=int, default=None)
    ap.add_argument("--batch", type=int, default=50_000, help="runs per transaction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--artifact-root", default="mlflow-artifacts:/")
    a = ap.parse_args()

    con = sqlite3.connect(a.db, isolation_level=None)
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = {"experiments", "runs", "metrics", "latest_metrics", "params", "tags"} - have
    if missing:
        print(f"{a.db}: schema missing tables {sorted(missing)}; start ferroflow on it once first", file=sys.stderr)
        return 2
    metric_cols = [r[1] for r in con.execute("PRAGMA table_info(metrics)")]
    series_layout = "series_id" in metric_cols
    if not series_layout and "run_uuid" not in metric_cols:
        print(f"unknown metrics layout {metric_cols}", file=sys.stderr)
        return 2
    next_series = 1
    if series_layout:
        next_series = con.execute("SELECT coalesce(max(series_id), 0) + 1 FROM metric_series").fetchone()[0]
    # Bulk-load settings for this connection only. The database stays in WAL mode (persistent),
    # which the server expects; synchronous=OFF only affects durability of this load.
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -1048576")  # 1 GiB page cache: secondary-index inserts are random
    con.execute("PRAGMA temp_store = MEMORY")
    con.execute("PRAGMA foreign_keys = OFF")  # rows are inserted parent-first anyway

    now = int(time.time() * 1000)
    root = a.artifact_root.rstrip("/")
    if a.experiment_id is None:
        name = a.experiment_name or f"gen-search-{a.runs}-{now}"
        cur = con.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) "
            "VALUES (?, '', 'active', ?, ?)", (name, now, now))
        exp_id = cur.lastrowid
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (f"{root}/{exp_id}", exp_id))
    else:
        exp_id = a.experiment_id
        if con.execute("SELECT 1 FROM experiments WHERE experiment_id = ?", (exp_id,)).fetchone() is None:
            print(f"experiment {exp_id} not found", file=sys.stderr)
            return 2
    exp_loc = con.execute("SELECT artifact_location FROM experiments WHERE experiment_id = ?", (exp_id,)).fetchone()[0].rstrip("/")

    rnd = random.Random(a.seed)
    lrs = ("0.1", "0.01", "0.001")
    t0 = time.time()
    done = 0
    while done < a.runs:
        n = min(a.batch, a.runs - done)
        runs, tags, params, metrics, latest, series = [], [], [], [], [], []
        for i in range(done, done + n):
            rid = uuid.uuid4().hex  # random ids (values below are seeded, ids are not)
            name = f"r{i}"
            st = now + i
            acc, loss = rnd.random(), rnd.random()
            runs.append((rid, exp_id, name, "", "RUNNING", st, None, None, "active", f"{exp_loc}/{rid}/artifacts"))
            tags.append((rid, "mlflow.runName", name))
            tags.append((rid, "group", f"g{i % 10}"))
            params.append((rid, "lr", rnd.choice(lrs)))
            for key, val in (("acc", acc), ("loss", loss)):
                if series_layout:
                    series.append((next_series, rid, key))
                    metrics.append((next_series, now, 0, val, 0))
                    next_series += 1
                else:
                    metrics.append((rid, key, val, now, 0, 0))
                latest.append((rid, key, val, now, 0, 0))
        # Primary-key order makes the WITHOUT ROWID inserts append-mostly within the batch.
        for rows in (runs, tags, params, metrics, latest):
            rows.sort(key=lambda r: (r[0], r[1]))
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
            "deleted_time, lifecycle_stage, artifact_uri) VALUES (?,?,?,?,?,?,?,?,?,?)", runs)
        con.executemany("INSERT INTO tags (run_uuid, key, value) VALUES (?,?,?)", tags)
        con.executemany("INSERT INTO params (run_uuid, key, value) VALUES (?,?,?)", params)
        if series_layout:
            con.executemany("INSERT INTO metric_series (series_id, run_uuid, key) VALUES (?,?,?)", series)
            con.executemany(
                "INSERT INTO metrics (series_id, timestamp, step, value, is_nan) VALUES (?,?,?,?,?)", metrics)
        else:
            con.executemany(
                "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
        con.executemany(
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?,?,?,?,?,?)", latest)
        con.execute("COMMIT")
        done += n
        el = time.time() - t0
        print(f"  {done:>9,} runs  {el:6.1f}s  ({done / el:,.0f} runs/s)", file=sys.stderr, flush=True)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print(f"inserted {a.runs:,} runs into experiment {exp_id} in {time.time() - t0:.1f}s", file=sys.stderr)
    print(f"experiment_id={exp_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
