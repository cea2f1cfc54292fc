#!/usr/bin/env python3
"""Registry search latency over N registered models x V versions (MLflow REST API).

Usage: registry_search.py BASE_URL [--models 10000] [--versions 10] [--n 20] [--concurrency 16]

Creates the models and versions over HTTP (concurrently), then times, sequentially (n runs
each, after one warm-up): registered-models/search (the filter the mlflow client always adds,
alone and with a name LIKE filter), and model-versions/search by model name. Prints p50/p95.
"""
import argparse
import asyncio
import statistics
import time

import httpx

PROMPT_FILTER = "tags.`mlflow.prompt.is_prompt` != 'true'"


async def populate(base, models, versions, concurrency):
    api = base.rstrip("/") + "/api/2.0/mlflow"
    async with httpx.AsyncClient(timeout=60) as c:
        exp = (await c.post(f"{api}/experiments/create", json={"name": f"registry-bench-{time.time_ns()}"})).json()["experiment_id"]
        run = (await c.post(f"{api}/runs/create", json={"experiment_id": exp})).json()["run"]["info"]["run_id"]
        sem = asyncio.Semaphore(concurrency)
        prefix = f"model-{time.time_ns() % 100000}-"

        async def one(i):
            async with sem:
                name = f"{prefix}{i:05d}"
                r = await c.post(f"{api}/registered-models/create", json={"name": name, "tags": [{"key": "team", "value": f"t{i % 10}"}]})
                r.raise_for_status()
                for _ in range(versions):
                    r = await c.post(f"{api}/model-versions/create", json={"name": name, "source": f"runs:/{run}/model", "run_id": run})
                    r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(models)))
        el = time.perf_counter() - t0
        print(f"created {models} models x {versions} versions in {el:.1f}s ({models * (versions + 1) / el:.0f} req/s)")
        return prefix


def timed(client, method, url, n, **kw):
    client.request(method, url, **kw).raise_for_status()
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.request(method, url, **kw)
        lat.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    lat.sort()
    return lat[len(lat) // 2], lat[int(0.95 * (len(lat) - 1))], r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    prefix = asyncio.run(populate(a.base, a.models, a.versions, a.concurrency))
    api = a.base.rstrip("/") + "/api/2.0/mlflow"
    probe = f"{prefix}{a.models // 2:05d}"
    # Both searches are GETs in MLflow's API (query string, repeated keys for lists).
    cases = [
        ("registered-models/search, client's prompt filter, max_results=100", "/registered-models/search",
         {"filter": PROMPT_FILTER, "max_results": 100}, "registered_models"),
        (f"registered-models/search name LIKE '{prefix}012%' + prompt filter", "/registered-models/search",
         {"filter": f"name LIKE '{prefix}012%' AND {PROMPT_FILTER}", "max_results": 100}, "registered_models"),
        ("registered-models/search order_by last_updated_timestamp DESC", "/registered-models/search",
         {"filter": PROMPT_FILTER, "max_results": 100, "order_by": ["last_updated_timestamp DESC"]}, "registered_models"),
        (f"model-versions/search name = '{probe}'", "/model-versions/search",
         {"filter": f"name = '{probe}'", "max_results": 100}, "model_versions"),
    ]
    with httpx.Client(timeout=60) as c:
        for label, path, params, field in cases:
            p50, p95, r = timed(c, "GET", api + path, a.n, params=params)
            print(f"{label}: n={a.n} p50={p50:.1f}ms p95={p95:.1f}ms [{len(r.json().get(field, []))} results]")

if __name__ == "__main__":
    main()
