#!/usr/bin/env python3
"""Feature-store benchmark driver for ferroflow (see bench/features.sh and bench/README.md).

Subcommands:
  gen     write the Parquet data sets (numpy/pyarrow) into --data
  run     drive one ferroflow server over /api/2.0/feature-store: --phases is a comma list of
          create   schema create + 10M-row overwrite (Parquet body) of `users`
          merge    1M-row merge (half updates, half new keys) into `users`, checked on sample keys
          ftables  create + overwrite the two timestamped tables `clicks`, `spend`
          pit      point-in-time training sets (small spine, then the full spine), output parquet,
                   wall time and server VmHWM, output checked against pandas.merge_asof
          online   publish clicks+spend, lookup latency 1 / 100 keys x 10 features (5 + 5)
          onlinebig  publish users (10 features, one table) and the same lookups against it
          cleanup  delete clicks/spend (and users) through the API (removes online rows)
  report  print the results table from the JSON-lines file

Every figure is appended to --out as one JSON object per line:
  {"config", "figure", "value", "unit", ...extra}
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

API = "/api/2.0/feature-store"
PARQUET = "application/vnd.apache.parquet"
T0_US = 1704067200 * 1_000_000  # 2024-01-01T00:00:00Z
DAY_US = 86400 * 1_000_000
RANGE_US = 90 * DAY_US
N_FEAT = 10
N_TS_FEAT = 5


# ---------------------------------------------------------------- data generation

def _write(table, path):
    pq.write_table(table, path, compression="snappy")
    return os.path.getsize(path)


def ts_table(rng, ft_users, per, prefix):
    """`per` rows per user, distinct timestamps per user, spread over 90 days, shuffled."""
    n = ft_users * per
    uid = np.repeat(np.arange(ft_users, dtype=np.int64), per)
    slot = np.tile(np.arange(per, dtype=np.int64), ft_users)
    span = RANGE_US // per
    ts = T0_US + slot * span + rng.integers(0, span, n, dtype=np.int64)
    perm = rng.permutation(n)
    cols = {"user_id": pa.array(uid[perm]), "ts": pa.array(ts[perm], pa.timestamp("us", tz="UTC"))}
    for j in range(N_TS_FEAT):
        cols[f"{prefix}{j}"] = pa.array(rng.random(n))
    return pa.table(cols)


def cmd_gen(a):
    os.makedirs(a.data, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    t = time.perf_counter()
    sizes = {}
    # users: ROWS rows, user_id 0..ROWS-1, f0..f9
    cols = {"user_id": pa.array(np.arange(a.rows, dtype=np.int64))}
    for j in range(N_FEAT):
        cols[f"f{j}"] = pa.array(rng.random(a.rows))
    sizes["users"] = _write(pa.table(cols), f"{a.data}/users.parquet")
    del cols
    # merge: half existing keys (random, distinct), half new keys, shuffled
    n_upd = a.merge_rows // 2
    upd = rng.choice(a.rows, n_upd, replace=False).astype(np.int64)
    new = np.arange(a.rows, a.rows + a.merge_rows - n_upd, dtype=np.int64)
    keys = np.concatenate([upd, new])
    rng.shuffle(keys)
    cols = {"user_id": pa.array(keys)}
    for j in range(N_FEAT):
        cols[f"f{j}"] = pa.array(rng.random(a.merge_rows) + 10.0)  # distinguishable from the base
    sizes["merge"] = _write(pa.table(cols), f"{a.data}/merge.parquet")
    # timestamped feature tables
    per = max(1, a.ft_rows // a.ft_users)
    sizes["clicks"] = _write(ts_table(rng, a.ft_users, per, "a"), f"{a.data}/clicks.parquet")
    sizes["spend"] = _write(ts_table(rng, a.ft_users, per, "b"), f"{a.data}/spend.parquet")
    # spine: 2% of the users have no features; event times from 5 days before the first
    # feature row to 5 days after the last one (so some rows match nothing)
    n = a.spine_rows
    spine = pa.table({
        "user_id": pa.array(rng.integers(0, int(a.ft_users * 1.02), n, dtype=np.int64)),
        "event_ts": pa.array(rng.integers(T0_US - 5 * DAY_US, T0_US + RANGE_US + 5 * DAY_US, n,
                                          dtype=np.int64), pa.timestamp("us", tz="UTC")),
        "label": pa.array(rng.integers(0, 2, n, dtype=np.int64)),
    })
    sizes["spine"] = _write(spine, f"{a.data}/spine.parquet")
    small = min(a.small_spine_rows, n)
    sizes["spine_small"] = _write(spine.slice(0, small), f"{a.data}/spine_small.parquet")
    meta = dict(rows=a.rows, merge_rows=a.merge_rows, ft_rows=per * a.ft_users, ft_users=a.ft_users,
                per_user=per, spine_rows=n, small_spine_rows=small, seed=a.seed, bytes=sizes)
    json.dump(meta, open(f"{a.data}/meta.json", "w"), indent=1)
    print(f"generated in {time.perf_counter() - t:.1f} s: " +
          ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))


# ---------------------------------------------------------------- helpers

def proc_status(pid, field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # MiB
    except OSError:
        pass
    return None


def reset_hwm(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs the right to write clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Bench:
    def __init__(self, a):
        import httpx
        self.a = a
        self.url = a.url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(None, connect=10.0))
        self.meta = json.load(open(f"{a.data}/meta.json"))

    def record(self, figure, value, unit, **extra):
        rec = {"config": self.a.config, "figure": figure, "value": value, "unit": unit, **extra}
        with open(self.a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        ex = " ".join(f"{k}={v}" for k, v in extra.items() if k not in ("response",))
        v = f"{value:,.3f}" if isinstance(value, float) else f"{value}"
        print(f"  [{self.a.config}] {figure}: {v} {unit} {ex}", flush=True)

    def call(self, method, path, *, expect=200, **kw):
        r = self.http.request(method, API + path, **kw)
        if r.status_code != expect:
            body = r.text[:2000]
            raise SystemExit(f"{method} {API}{path} -> {r.status_code}: {body}")
        return r

    def post_parquet(self, path, params, file):
        with open(file, "rb") as f:
            return self.call("POST", path, params=params, content=f,
                             headers={"Content-Type": PARQUET})

    def timed(self, label, fn):
        """Run fn() with the server's VmHWM reset first; returns (result, seconds, hwm MiB, rss before)."""
        pid = self.a.pid
        rss0 = proc_status(pid, "VmRSS")
        reset_hwm(pid)
        t = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t
        return res, dt, proc_status(pid, "VmHWM"), rss0

    # ------------------------------------------------------------ phases

    def create_table(self, name, pks, schema, ts_key=None):
        body = {"name": name, "primary_keys": pks, "schema": schema,
                "description": "bench/features_bench.py"}
        if ts_key:
            body["timestamp_key"] = ts_key
        return self.call("POST", "/feature-tables/create", json=body).json()

    def phase_create(self):
        schema = [{"name": "user_id", "type": "long", "nullable": False}] + \
                 [{"name": f"f{j}", "type": "double"} for j in range(N_FEAT)]
        _, dt, _, _ = self.timed("create", lambda: self.create_table("users", ["user_id"], schema))
        self.record("users create (schema only)", dt * 1e3, "ms")
        res, dt, hwm, rss0 = self.timed("overwrite", lambda: self.post_parquet(
            "/feature-tables/write", {"name": "users", "mode": "overwrite"},
            f"{self.a.data}/users.parquet").json())
        self.record(f"users overwrite {self.meta['rows']:,} rows (Parquet body)", dt, "s",
                    server_hwm_mib=hwm, rss_before_mib=rss0, num_rows=res.get("num_rows"),
                    version=res.get("version"),
                    body_mib=round(self.meta["bytes"]["users"] / 2**20, 1))

    def phase_merge(self):
        res, dt, hwm, rss0 = self.timed("merge", lambda: self.post_parquet(
            "/feature-tables/write", {"name": "users", "mode": "merge"},
            f"{self.a.data}/merge.parquet").json())
        m = res.get("metrics") or {}
        self.record(f"users merge {self.meta['merge_rows']:,} rows into {self.meta['rows']:,}", dt, "s",
                    server_hwm_mib=hwm, rss_before_mib=rss0, num_rows=res.get("num_rows"),
                    version=res.get("version"), metrics=m)
        self.check_merge(res)

    def check_merge(self, res):
        rows, mrows = self.meta["rows"], self.meta["merge_rows"]
        merge = pq.read_table(f"{self.a.data}/merge.parquet")
        mk = merge.column("user_id").to_numpy()
        upd = mk[mk < rows][:3].tolist()
        new = mk[mk >= rows][:3].tolist()
        in_merge = set(mk.tolist()) if len(mk) < 5_000_000 else None
        untouched = [k for k in (0, 1, 2, 3, 4, 5, rows // 2, rows - 1)
                     if in_merge is not None and k not in in_merge][:3]
        keys = upd + new + untouched
        r = self.call("POST", "/feature-tables/read",
                      json={"name": "users", "keys": [{"user_id": k} for k in keys],
                            "format": "json"}).json()
        got = {int(rec["user_id"]): rec for rec in r.get("records", [])}
        users = pq.read_table(f"{self.a.data}/users.parquet")
        problems = []
        wanted = set(upd + new)
        mi = {int(k): i for i, k in enumerate(mk.tolist()) if k in wanted}
        for k in keys:
            if k not in got:
                problems.append(f"key {k} missing from read")
                continue
            src = merge.slice(mi[k], 1) if k in mi else users.slice(k, 1)
            exp = src.column("f0")[0].as_py()
            if abs(float(got[k]["f0"]) - exp) > 1e-12:
                problems.append(f"key {k}: f0 {got[k]['f0']} != {exp}")
        m = res.get("metrics") or {}
        for key, want in (("num_target_rows_updated", len(mk[mk < rows])),
                          ("num_target_rows_inserted", len(mk[mk >= rows]))):
            if key in m and int(m[key]) != want:
                problems.append(f"metrics {key}={m[key]} != {want}")
        self.record("merge check (sample keys + Delta metrics)", "ok" if not problems else "FAIL", "",
                    problems=problems, keys=len(keys))

    def phase_ftables(self):
        for name, prefix in (("clicks", "a"), ("spend", "b")):
            schema = [{"name": "user_id", "type": "long", "nullable": False},
                      {"name": "ts", "type": "timestamp", "nullable": False}] + \
                     [{"name": f"{prefix}{j}", "type": "double"} for j in range(N_TS_FEAT)]
            self.create_table(name, ["user_id"], schema, ts_key="ts")
            res, dt, hwm, _ = self.timed(name, lambda: self.post_parquet(
                "/feature-tables/write", {"name": name, "mode": "overwrite"},
                f"{self.a.data}/{name}.parquet").json())
            self.record(f"{name} create+overwrite {self.meta['ft_rows']:,} rows", dt, "s",
                        server_hwm_mib=hwm, num_rows=res.get("num_rows"))

    def upload(self, local, art_path):
        with open(local, "rb") as f:
            r = self.http.put(f"/api/2.0/mlflow-artifacts/artifacts/{art_path}", content=f,
                              headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 200:
            raise SystemExit(f"PUT artifacts/{art_path} -> {r.status_code}: {r.text[:500]}")
        return f"mlflow-artifacts:/{art_path}"

    def phase_pit(self):
        spines = []
        if self.meta["small_spine_rows"] < self.meta["spine_rows"]:
            spines.append(("spine_small", self.meta["small_spine_rows"]))
        spines.append(("spine", self.meta["spine_rows"]))
        for fname, n in spines:
            art = f"bench-features/{self.a.config}/{fname}.parquet"
            t = time.perf_counter()
            uri = self.upload(f"{self.a.data}/{fname}.parquet", art)
            up = time.perf_counter() - t
            body = {
                "spine": {"uri": uri},
                "feature_lookups": [
                    {"table_name": "clicks", "lookup_key": ["user_id"],
                     "feature_names": [f"a{j}" for j in range(N_TS_FEAT)],
                     "timestamp_lookup_key": "event_ts"},
                    {"table_name": "spend", "lookup_key": ["user_id"],
                     "feature_names": [f"b{j}" for j in range(N_TS_FEAT)],
                     "timestamp_lookup_key": "event_ts"},
                ],
                "label": "label",
                "output": {"format": "parquet"},
            }
            res, dt, hwm, rss0 = self.timed("pit", lambda: self.call(
                "POST", "/training-sets/create", json=body).json())
            ts = res.get("training_set", res)
            self.record(f"training set, spine {n:,} rows x 2 tables of {self.meta['ft_rows']:,} rows",
                        dt, "s", server_hwm_mib=hwm, rss_before_mib=rss0,
                        num_rows=ts.get("num_rows"), spine_upload_s=round(up, 3),
                        location=ts.get("location"))
            if self.a.verify:
                self.check_pit(ts, fname, n)

    def output_files(self, location):
        loc = location or ""
        if loc.startswith("mlflow-artifacts:"):
            loc = os.path.join(self.a.artifacts, loc.split(":", 1)[1].lstrip("/"))
        elif loc.startswith("file://"):
            loc = loc[len("file://"):]
        elif not os.path.isabs(loc):
            loc = os.path.join(self.a.artifacts, loc)
        if os.path.isfile(loc):
            return [loc]
        return sorted(f for f in glob.glob(f"{loc}/**/*.parquet", recursive=True)
                      if "_delta_log" not in f)

    def check_pit(self, ts, fname, n):
        import pandas as pd
        problems = []
        files = self.output_files(ts.get("location"))
        if not files and ts.get("storage_location"):
            files = self.output_files(ts.get("storage_location"))
        if not files:
            self.record(f"training set check ({n:,})", "FAIL", "",
                        problems=[f"no parquet under {ts.get('location')}"])
            return
        out = pa.concat_tables([pq.read_table(f) for f in files]).combine_chunks()
        if out.num_rows != n:
            problems.append(f"{out.num_rows} rows, spine has {n}")
        want_cols = ["user_id", "event_ts", "label"] + [f"a{j}" for j in range(N_TS_FEAT)] + \
                    [f"b{j}" for j in range(N_TS_FEAT)]
        missing = [c for c in want_cols if c not in out.column_names]
        if missing:
            problems.append(f"missing columns {missing} (has {out.column_names})")
            self.record(f"training set check ({n:,})", "FAIL", "", problems=problems)
            return
        got = to_frame(out, want_cols)
        exp = to_frame(pq.read_table(f"{self.a.data}/{fname}.parquet"), ["user_id", "event_ts", "label"])
        for name, prefix in (("clicks", "a"), ("spend", "b")):
            ft = to_frame(pq.read_table(f"{self.a.data}/{name}.parquet"),
                          ["user_id", "ts"] + [f"{prefix}{j}" for j in range(N_TS_FEAT)])
            exp["_i"] = np.arange(len(exp))
            m = pd.merge_asof(exp.sort_values("event_ts"), ft.sort_values("ts"), left_on="event_ts",
                              right_on="ts", by="user_id", direction="backward",
                              allow_exact_matches=True)
            exp = m.sort_values("_i").drop(columns=["_i", "ts"]).reset_index(drop=True)
        key = ["user_id", "event_ts", "label"]
        got = got.sort_values(key, kind="stable").reset_index(drop=True)
        exp = exp[want_cols].sort_values(key, kind="stable").reset_index(drop=True)
        if len(got) == len(exp):
            for c in key:
                if not np.array_equal(got[c].to_numpy(), exp[c].to_numpy()):
                    problems.append(f"spine column {c} differs")
            for c in want_cols[3:]:
                g, e = got[c].to_numpy(float), exp[c].to_numpy(float)
                bad = ~((g == e) | (np.isnan(g) & np.isnan(e)))
                if bad.any():
                    i = int(np.argmax(bad))
                    problems.append(f"{c}: {int(bad.sum())} rows differ, e.g. user {got.user_id[i]} "
                                    f"at {got.event_ts[i]}: {g[i]} != {e[i]}")
        nulls = int(np.isnan(exp["a0"].to_numpy(float)).sum())
        self.record(f"training set check ({n:,}) vs pandas.merge_asof", "ok" if not problems else "FAIL",
                    "", problems=problems[:10], expected_null_rows=nulls)

    def publish(self, name):
        res, dt, hwm, _ = self.timed("publish", lambda: self.call(
            "POST", "/online/publish", json={"name": name, "mode": "full"}).json())
        return res, dt, hwm

    def phase_online(self, big=False):
        if big:
            tables = [("users", [f"f{j}" for j in range(N_FEAT)])]
            keyspace = self.meta["rows"] + self.meta["merge_rows"] - self.meta["merge_rows"] // 2
            tag = "users (1 table x 10)"
        else:
            tables = [("clicks", [f"a{j}" for j in range(N_TS_FEAT)]),
                      ("spend", [f"b{j}" for j in range(N_TS_FEAT)])]
            keyspace = self.meta["ft_users"]
            tag = "clicks+spend (2 tables x 5)"
        for name, _ in tables:
            res, dt, hwm = self.publish(name)
            self.record(f"online publish full {name}", dt, "s", server_hwm_mib=hwm, response=res)
        self.check_online(tables, big)
        rng = np.random.default_rng(7)
        for nkeys in (1, 100):
            bodies = []
            for _ in range(min(self.a.lookup_n, 1000)):
                ks = [{"user_id": int(k)} for k in rng.integers(0, keyspace, nkeys)]
                bodies.append(json.dumps({"lookups": [
                    {"table_name": t, "keys": ks, "feature_names": f} for t, f in tables]}).encode())
            lat = self.lookup_loop(bodies, nkeys, len(tables))
            self.record(f"lookup {nkeys} key(s) x 10 features, {tag}: python p50", pct(lat, 50), "ms",
                        p99=round(pct(lat, 99), 3), mean=round(float(np.mean(lat)), 3), n=len(lat),
                        client="http.client keep-alive, sequential")
            if shutil.which("wrk") and self.a.wrk_duration != "0":
                body_file = os.path.join(self.a.wrk_dir, f"lookup-{self.a.config}-{nkeys}-{int(big)}.json")
                open(body_file, "wb").write(bodies[0])
                for c in self.a.wrk_conns.split():
                    w = run_wrk(f"{self.url}{API}/online/lookup", body_file, int(c), self.a.wrk_duration,
                                self.a.bench_dir)
                    self.record(f"lookup {nkeys} key(s) x 10 features, {tag}: wrk c={c} p50", w["p50"], "ms",
                                p99=w["p99"], rps=w["rps"], errors=w["errors"])

    def check_online(self, tables, big):
        import pandas as pd
        problems = []
        if big:
            users = pq.read_table(f"{self.a.data}/users.parquet")
            merge = pq.read_table(f"{self.a.data}/merge.parquet")
            mk = merge.column("user_id").to_numpy()
            keys = [int(mk[0]), int(mk[1]), 0, self.meta["rows"] - 1, self.meta["rows"] * 10]
            latest = {}
            for k in keys:
                hit = np.nonzero(mk == k)[0]
                if len(hit):
                    latest[k] = merge.slice(int(hit[0]), 1).to_pylist()[0]
                elif k < self.meta["rows"]:
                    latest[k] = users.slice(k, 1).to_pylist()[0]
        else:
            keys = [0, 1, 12345 % self.meta["ft_users"], self.meta["ft_users"] + 5]
            latest = {}
            for name, _ in tables:
                df = to_frame(pq.read_table(f"{self.a.data}/{name}.parquet"), None)
                df = df[df.user_id.isin(keys)].sort_values("ts").groupby("user_id").tail(1)
                for rec in df.to_dict("records"):
                    latest.setdefault(int(rec["user_id"]), {}).update(rec)
        body = {"lookups": [{"table_name": t, "keys": [{"user_id": k} for k in keys], "feature_names": f}
                            for t, f in tables]}
        r = self.call("POST", "/online/lookup", json=body).json()
        for res, (t, feats) in zip(r.get("results", []), tables):
            rows = res.get("rows", [])
            if len(rows) != len(keys):
                problems.append(f"{t}: {len(rows)} rows for {len(keys)} keys")
                continue
            for k, row in zip(keys, rows):
                if k not in latest:
                    if row is not None:
                        problems.append(f"{t} key {k}: expected null, got {row}")
                    continue
                if row is None:
                    problems.append(f"{t} key {k}: null")
                    continue
                for f in feats:
                    if row.get(f) is None or abs(float(row[f]) - float(latest[k][f])) > 1e-12:
                        problems.append(f"{t} key {k} {f}: {row.get(f)} != {latest[k][f]}")
        if len(r.get("results", [])) != len(tables):
            problems.append(f"{len(r.get('results', []))} results for {len(tables)} lookups: {str(r)[:300]}")
        self.record("online lookup check (latest row per key, null for unknown key)",
                    "ok" if not problems else "FAIL", "", problems=problems[:10])

    def lookup_loop(self, bodies, nkeys, ntables):
        """Sequential POSTs on one keep-alive connection (http.client: less client overhead than
        httpx); the time covers sending the request and reading the whole response body."""
        import http.client
        from urllib.parse import urlparse
        u = urlparse(self.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        hdr = {"Content-Type": "application/json"}
        path = API + "/online/lookup"

        def post(b):
            conn.request("POST", path, body=b, headers=hdr)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise SystemExit(f"lookup -> {r.status}: {data[:500]!r}")
            return data

        for i in range(self.a.warmup):
            post(bodies[i % len(bodies)])
        lat = np.empty(self.a.lookup_n)
        pc = time.perf_counter_ns
        for i in range(self.a.lookup_n):
            b = bodies[i % len(bodies)]
            t = pc()
            data = post(b)
            lat[i] = (pc() - t) / 1e6
        conn.close()
        res = json.loads(data)["results"]
        assert len(res) == ntables and len(res[0]["rows"]) == nkeys, str(res)[:300]
        return lat

    def phase_cleanup(self):
        for name in ("clicks", "spend", "users"):
            r = self.http.request("DELETE", API + "/feature-tables/delete", json={"name": name})
            print(f"  delete {name}: {r.status_code}")


def to_frame(table, cols):
    """Arrow table -> pandas with timestamps as int64 microseconds (no tz games)."""
    import pandas as pd
    cols = cols or table.column_names
    data = {}
    for c in cols:
        col = table.column(c)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", tz=col.type.tz)).cast(pa.int64())
        data[c] = col.to_numpy(zero_copy_only=False)
    return pd.DataFrame(data)


def pct(a, q):
    return float(np.percentile(a, q))


def _ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return None
    v = float(m.group(1))
    return {"us": v / 1e3, "ms": v, "s": v * 1e3, "m": v * 6e4}[m.group(2)]


def run_wrk(url, body_file, conns, duration, bench_dir):
    env = dict(os.environ, BODY_FILE=body_file)
    out = subprocess.run(["wrk", "-t", "1" if conns < 2 else "2", "-c", str(conns), "-d", duration,
                          "--latency", "-s", os.path.join(bench_dir, "post.lua"), url],
                         env=env, capture_output=True, text=True).stdout
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.findall(r"(Non-2xx.*|Socket errors.*)", out)
    return {"p50": _ms(p50.group(1)) if p50 else None, "p99": _ms(p99.group(1)) if p99 else None,
            "rps": round(float(rps.group(1))) if rps else None, "errors": errs, "raw": out}


def cmd_run(a):
    b = Bench(a)
    failed = 0
    for ph in [p for p in a.phases.split(",") if p]:
        print(f"== {a.config}: {ph}", flush=True)
        t = time.perf_counter()
        try:
            {"create": b.phase_create, "merge": b.phase_merge, "ftables": b.phase_ftables,
             "pit": b.phase_pit, "online": b.phase_online,
             "onlinebig": lambda: b.phase_online(big=True), "cleanup": b.phase_cleanup}[ph]()
        except (Exception, SystemExit) as e:  # one failed phase does not stop the others
            failed += 1
            b.record(f"phase {ph}", "FAILED", "", problems=[f"{type(e).__name__}: {e}"[:1500]])
        print(f"   ({ph} phase {time.perf_counter() - t:.1f} s)", flush=True)
    sys.exit(1 if failed else 0)


def fmt(v, unit):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if unit == "s":
            return f"{v:,.2f} s"
        if unit == "ms":
            return f"{v:,.3f} ms" if v < 10 else f"{v:,.1f} ms"
        return f"{v:,} {unit}".strip()
    return f"{v} {unit}".strip()


def cmd_report(a):
    recs = [json.loads(l) for l in open(a.out) if l.strip()]
    lines = ["| config | figure | value | p99 / extra |", "|---|---|---|---|"]
    for r in recs:
        extra = []
        if "p99" in r:
            extra.append(f"p99 {fmt(r['p99'], r['unit'])}")
        if r.get("rps"):
            extra.append(f"{r['rps']:,} req/s")
        if r.get("errors"):
            extra.append(" ".join(r["errors"]))
        for k in ("server_hwm_mib", "peak_rss_mib"):
            if r.get(k) is not None:
                extra.append(f"{'server ' if k.startswith('server') else ''}peak RSS {r[k]:,.0f} MiB")
        if r.get("num_rows") is not None:
            extra.append(f"{r['num_rows']:,} rows")
        if r.get("note"):
            extra.append(r["note"])
        if r.get("problems"):
            extra.append("; ".join(r["problems"])[:300])
        lines.append(f"| {r['config']} | {r['figure']} | {fmt(r['value'], r['unit'])} | {', '.join(extra)} |")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--data", required=True)
    g.add_argument("--rows", type=int, default=10_000_000)
    g.add_argument("--merge-rows", type=int, default=1_000_000)
    g.add_argument("--ft-rows", type=int, default=1_000_000)
    g.add_argument("--ft-users", type=int, default=100_000)
    g.add_argument("--spine-rows", type=int, default=1_000_000)
    g.add_argument("--small-spine-rows", type=int, default=100_000)
    g.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--artifacts", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--phases", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--lookup-n", type=int, default=5000)
    r.add_argument("--warmup", type=int, default=500)
    r.add_argument("--wrk-duration", default="10s")
    r.add_argument("--wrk-conns", default="1 16")
    r.add_argument("--wrk-dir", default="/tmp")
    r.add_argument("--verify", type=int, default=1)
    r.add_argument("--bench-dir", default=os.path.dirname(os.path.abspath(__file__)))
    q = sub.add_parser("report")
    q.add_argument("--out", required=True)
    a = p.parse_args()
    {"gen": cmd_gen, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
