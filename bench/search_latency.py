#!/usr/bin/env python3
"""Sequential runs/search latency over one experiment (e.g. the 1M runs of gen_runs.py).

Same query as the anchor's latency.py (c): filter "metrics.acc > 0.5", order_by ["metrics.acc DESC"],
max_results=100, ACTIVE_ONLY; one warm-up request, then --n timed requests, one at a time.
Also times the unfiltered start_time-ordered page and the second page (page_token) of the main query.

Usage: search_latency.py BASE_URL --experiment-id ID [--n 20]
"""
import argparse
import statistics
import time

import httpx

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--experiment-id", required=True)
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--timeout", type=float, default=600)
a = ap.parse_args()
B = a.base.rstrip("/") + "/api/2.0/mlflow"


def measure(name, fn, check):
    info = check(fn())  # warm-up
    ts = []
    for _ in range(a.n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    print(f"{name}: n={a.n} min={ts[0]:.1f}ms p50={statistics.median(ts):.1f}ms "
          f"p95={ts[int(0.95 * (len(ts) - 1))]:.1f}ms mean={statistics.mean(ts):.1f}ms  [{info}]", flush=True)


with httpx.Client(timeout=a.timeout) as c:
    def search(**kw):
        body = {"experiment_ids": [str(a.experiment_id)], "filter": "metrics.acc > 0.5",
                "order_by": ["metrics.acc DESC"], "max_results": 100, "run_view_type": "ACTIVE_ONLY", **kw}
        r = c.post(B + "/runs/search", json=body)
        r.raise_for_status()
        return r

    def check(r):
        j = r.json()
        runs = j.get("runs", [])
        accs = [next(m["value"] for m in x["data"]["metrics"] if m["key"] == "acc") for x in runs]
        assert all(v > 0.5 for v in accs) and accs == sorted(accs, reverse=True), "wrong filter/order"
        return f"{len(runs)} runs, next_page_token={'yes' if j.get('next_page_token') else 'no'}, {len(r.content)} bytes"

    measure("runs/search acc>0.5 order_by acc DESC max_results=100", search, check)
    token = search().json().get("next_page_token")
    if token:
        measure("runs/search same query, page 2 (page_token)", lambda: search(page_token=token), check)
    measure("runs/search (no filter) order_by start_time DESC max_results=100",
            lambda: search(filter="", order_by=["attributes.start_time DESC"]),
            lambda r: f"{len(r.json().get('runs', []))} runs")
