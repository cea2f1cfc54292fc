#!/usr/bin/env python3
"""Fill the anchor's search experiment of a *real MLflow* SQLite store without HTTP.

setup_bench.py creates 10,000 search runs with 20,000 REST calls (~11 min on `mlflow server`).
This does the same writes in-process through MLflow's own SqlAlchemyStore (create_run +
log_batch per run: metrics acc/loss at step 0, param lr, tag group; run_name r<i>,
start_time base+i), so the rows are exactly what the server would write.

Usage (after `setup_bench.py URL --search-runs 0 --history-steps 10000` against mlflow server):
  mlflow_gen.py sqlite:////abs/mlflow.db --experiment-id ID [--runs 10000] [--artifact-root DIR]
"""
import argparse
import random
import sys
import time

from mlflow.entities import Metric, Param, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

ap = argparse.ArgumentParser()
ap.add_argument("db_uri")
ap.add_argument("--experiment-id", required=True)
ap.add_argument("--runs", type=int, default=10000)
ap.add_argument("--artifact-root", default="mlflow-artifacts:/")
a = ap.parse_args()

store = SqlAlchemyStore(a.db_uri, a.artifact_root)
rnd = random.Random(0)
now = int(time.time() * 1000)
t0 = time.time()
for i in range(a.runs):
    run = store.create_run(experiment_id=str(a.experiment_id), user_id="", start_time=now + i, tags=[], run_name=f"r{i}")
    store.log_batch(run.info.run_id,
                    metrics=[Metric("acc", rnd.random(), now, 0), Metric("loss", rnd.random(), now, 0)],
                    params=[Param("lr", str(rnd.choice([0.1, 0.01, 0.001])))],
                    tags=[RunTag("group", f"g{i % 10}")])
    if (i + 1) % 1000 == 0:
        print(f"  {i + 1} runs {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
print(f"created {a.runs} runs in experiment {a.experiment_id} in {time.time() - t0:.1f}s")
