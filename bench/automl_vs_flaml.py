"""ferroflow AutoML against FLAML: same time budget, same train/test split, same primary metric.

    bench/automl_vs_flaml.sh                       # the wrapper: installs FLAML, finds the binary
    FERROFLOW_BIN=target/release/ferroflow BUDGET=60 DATASETS=iris,wine .venv/bin/python bench/automl_vs_flaml.py

Tested with flaml[automl]==2.7.0 (lightgbm 4.7.0, xgboost 2.1.4), scikit-learn 1.9.1,
numpy 2.4.6, pandas 3.1.1, Python 3.11.

Datasets: scikit-learn's bundled iris, wine, breast_cancer, digits (classification) and
diabetes (regression), plus make_classification(50000, 20 features, 10 informative,
random_state=0) and make_regression(50000, 20 features, noise=10, random_state=0).
Each is split once, 80/20 (stratified for classification, random_state=0). Both tools read the
same CSV (features, `target`, and a `split` column of train/test): ferroflow gets it as an
uploaded dataset with `split_col="split"` (it carves its own validation from the train rows, or
uses 5-fold CV below 2,000 rows, and reports its metrics on exactly the test rows); FLAML gets
the train rows as X_train/y_train and the script scores its predictions on the test rows.

Primary metric: binary -> roc_auc, multiclass -> accuracy, regression -> r2 (the same for both).

Trials: ferroflow's summary `trials` (and `trials_failed`); FLAML's finished trials summed over
learners (`_iter_per_learner`) -- `len(automl.config_history)` only counts the trials that
improved on the best so far (kept in the JSON as `improvements`).

Memory: a fresh ferroflow server per dataset, `VmHWM` of its process after the run; each FLAML
fit runs in a fresh Python subprocess (`--flaml-worker`), peak = its ru_maxrss after the fit
(this includes the interpreter and the imports of pandas/sklearn/flaml/lightgbm/xgboost, whose
RSS before the fit is in the JSON as `flaml.rss_before_fit_mib`). The tools run one after the
other, never at the same time.

Environment: FERROFLOW_BIN (required), BUDGET (seconds, default 60), DATASETS (comma/space
separated subset; default all), OUT (JSON path; default /tmp/automl_vs_flaml-<time>.json),
WORK (scratch dir; default a new /tmp dir, kept), FLAML_N_JOBS (default -1).
"""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ALL_DATASETS = [
    "iris",
    "wine",
    "breast_cancer",
    "digits",
    "diabetes",
    "make_classification_50k",
    "make_regression_50k",
]


def load(name):
    """(X DataFrame, y Series, problem, metric) for a dataset name."""
    import numpy as np
    import pandas as pd
    from sklearn import datasets

    if name == "make_classification_50k":
        X, y = datasets.make_classification(
            n_samples=50000, n_features=20, n_informative=10, random_state=0
        )
        cols = [f"x{i}" for i in range(X.shape[1])]
    elif name == "make_regression_50k":
        X, y = datasets.make_regression(
            n_samples=50000, n_features=20, noise=10, random_state=0
        )
        cols = [f"x{i}" for i in range(X.shape[1])]
    else:
        b = getattr(datasets, f"load_{name}")()
        X, y = b.data, b.target
        # Plain names: LightGBM refuses JSON special characters in feature names.
        cols = [re.sub(r"[^0-9A-Za-z_]+", "_", str(c)).strip("_") for c in b.feature_names]
    problem = "regression" if name in ("diabetes", "make_regression_50k") else "classification"
    if problem == "classification":
        y = np.asarray(y).astype(int)
        metric = "roc_auc" if len(np.unique(y)) == 2 else "accuracy"
    else:
        y = np.asarray(y, dtype=float)
        metric = "r2"
    return pd.DataFrame(X, columns=cols), pd.Series(y, name="target"), problem, metric


def write_csv(name, path):
    """Splits once (80/20, stratified for classification, seed 0) and writes one CSV."""
    from sklearn.model_selection import train_test_split

    X, y, problem, metric = load(name)
    idx = list(range(len(y)))
    tr, te = train_test_split(
        idx,
        test_size=0.2,
        random_state=0,
        stratify=y if problem == "classification" else None,
    )
    df = X.copy()
    df["target"] = y
    # Train rows then test rows, each in the split's shuffled order (the bundled datasets are
    # sorted by class).
    out = df.iloc[tr + te].reset_index(drop=True)
    out["split"] = ["train"] * len(tr) + ["test"] * len(te)
    out.to_csv(path, index=False)
    return {
        "problem": problem,
        "metric": metric,
        "rows": len(y),
        "features": X.shape[1],
        "train_rows": len(tr),
        "test_rows": len(te),
        "classes": int(y.nunique()) if problem == "classification" else None,
    }


# ---------------------------------------------------------------------------------- FLAML side


def flaml_worker(csv_path, problem, metric, budget, result_path):
    """Runs in a fresh process: one FLAML fit, scored on the test rows."""
    import pandas as pd
    from flaml import AutoML
    import flaml
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    df = pd.read_csv(csv_path)
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    features = [c for c in df.columns if c not in ("target", "split")]
    X_train, y_train = train[features], train["target"]
    X_test, y_test = test[features], test["target"]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    automl = AutoML()
    t0 = time.monotonic()
    automl.fit(
        X_train,
        y_train,
        task=problem,
        metric=metric,
        time_budget=budget,
        seed=0,
        n_jobs=int(os.environ.get("FLAML_N_JOBS", "-1")),
        verbose=0,
    )
    fit_seconds = time.monotonic() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if metric == "roc_auc":
        score = roc_auc_score(y_test, automl.predict_proba(X_test)[:, 1])
    elif metric == "accuracy":
        score = accuracy_score(y_test, automl.predict(X_test))
    else:
        score = r2_score(y_test, automl.predict(X_test))
    with open(result_path, "w") as f:
        json.dump(
            {
                "score": float(score),
                # config_history only holds the improvements; every finished trial counts here.
                "trials": sum(automl._iter_per_learner.values()),
                "trials_per_learner": dict(automl._iter_per_learner),
                "improvements": len(automl.config_history),
                "modelcount": getattr(automl, "modelcount", None),
                "best_estimator": automl.best_estimator,
                "best_config": automl.best_config,
                "best_validation_loss": automl.best_loss,
                "fit_seconds": fit_seconds,
                "peak_rss_mib": peak,
                "rss_before_fit_mib": rss_before,
                "children_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                / 1024,
                "flaml_version": flaml.__version__,
            },
            f,
            default=str,
        )


def run_flaml(csv_path, info, budget, work):
    result_path = os.path.join(work, "flaml.json")
    t0 = time.monotonic()
    with open(os.path.join(work, "flaml.log"), "w") as log:
        proc = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--flaml-worker",
                csv_path,
                info["problem"],
                info["metric"],
                str(budget),
                result_path,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        return {"error": f"FLAML worker exited {proc.returncode}, see {work}/flaml.log", "wall_seconds": wall}
    with open(result_path) as f:
        r = json.load(f)
    r["wall_seconds"] = wall  # process start to exit: imports, read, fit, scoring
    return r


# ------------------------------------------------------------------------------ ferroflow side


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            try:
                return r.status, json.loads(raw or b"{}")
            except ValueError:  # /health answers plain text
                return r.status, {"text": raw.decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return e.code, {"error": e.read().decode(errors="replace")}


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def run_ferroflow(binary, csv_path, info, budget, work):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "ferroflow-server.log"), "w")
    server = subprocess.Popen(
        [
            binary,
            "server",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{work}/mlruns.db",
            "--artifacts-destination",
            f"{work}/artifacts",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            try:
                if http("GET", f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("ferroflow server did not come up")
        with open(csv_path, "rb") as f:
            status, body = http(
                "POST", f"{base}/api/2.0/automl/datasets?name=train.csv", f.read(), "text/csv"
            )
        if status != 200:
            return {"error": f"upload: {status} {body}"}
        request = {
            "dataset": body["dataset"],
            "target_col": "target",
            "problem_type": info["problem"],
            "primary_metric": info["metric"],
            "timeout_minutes": budget / 60.0,
            "seed": 0,
            "split_col": "split",
        }
        t0 = time.monotonic()
        status, body = http("POST", f"{base}/api/2.0/automl/runs", request)
        if status != 200:
            return {"error": f"start: {status} {body}"}
        run_id = body["automl_run"]["id"]
        while True:
            time.sleep(0.25)
            status, body = http("GET", f"{base}/api/2.0/automl/runs/{run_id}")
            if status == 200 and body["automl_run"]["state"] != "RUNNING":
                break
            if time.monotonic() - t0 > budget * 3 + 300:
                return {"error": "no result after 3x the budget + 5 min", "wall_seconds": time.monotonic() - t0}
        wall = time.monotonic() - t0
        peak = vm_hwm_mib(server.pid)
        run = body["automl_run"]
        with open(os.path.join(work, "ferroflow-run.json"), "w") as f:
            json.dump(run, f, indent=1)
        s = run.get("summary") or {}
        out = {
            "state": run["state"],
            "wall_seconds": wall,  # POST runs -> state != RUNNING (search, refit, export, logging)
            "peak_rss_mib": peak,
            "elapsed_seconds": s.get("elapsed_seconds"),
            "stop_reason": s.get("stop_reason"),
            "trials": s.get("trials"),
            "trials_failed": s.get("trials_failed"),
            "best_estimator": (s.get("best_trial") or {}).get("estimator"),
            "best_params": (s.get("best_trial") or {}).get("params"),
            "best_validation": (s.get("best_trial") or {}).get("validation"),
            "best_overall_not_exportable": s.get("best_overall_not_exportable"),
            "test_metrics": s.get("test_metrics"),
            "split": s.get("split"),
            "rows": s.get("rows"),
            "score": (s.get("test_metrics") or {}).get(info["metric"]),
            "leaderboard_top": s.get("leaderboard_top"),
        }
        if run["state"] != "SUCCEEDED":
            out["error"] = run.get("error") or run["state"]
        return out
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# ------------------------------------------------------------------------------------- report


def fmt(v, digits=4):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def verdict(ff, fl):
    if ff is None or fl is None:
        return "–"
    if ff >= fl:
        return "≥"
    return "within 1%" if ff >= fl - 0.01 * abs(fl) else "**below**"


def table(results, budget):
    head = (
        "| dataset | rows | metric | ferroflow | FLAML | ratio (diff) | | ferroflow trials (failed) "
        "| FLAML trials | ferroflow best | FLAML best | ferroflow peak RSS MiB | FLAML peak RSS MiB "
        "| ferroflow wall s | FLAML wall s |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in results:
        ff, fl = r["ferroflow"], r["flaml"]
        a, b = ff.get("score"), fl.get("score")
        ratio = f"{a / b:.4f} ({a - b:+.4f})" if a is not None and b else "–"
        ffb = ff.get("best_estimator") or ff.get("error", "–")
        if ff.get("best_overall_not_exportable"):
            ffb += f" (best overall {ff['best_overall_not_exportable'].get('estimator')})"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["dataset"],
                    f"{r['rows']:,}",
                    r["metric"],
                    fmt(a),
                    fmt(b) if "error" not in fl else "error",
                    ratio,
                    verdict(a, b),
                    f"{fmt(ff.get('trials'))} ({fmt(ff.get('trials_failed'))})",
                    fmt(fl.get("trials")),
                    ffb,
                    fmt(fl.get("best_estimator")),
                    fmt(ff.get("peak_rss_mib"), 1),
                    fmt(fl.get("peak_rss_mib"), 1),
                    fmt(ff.get("wall_seconds"), 1),
                    fmt(fl.get("wall_seconds"), 1),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main():
    binary = os.environ.get("FERROFLOW_BIN")
    if not binary or not os.access(binary, os.X_OK):
        sys.exit(f"FERROFLOW_BIN must name the ferroflow binary (got {binary!r})")
    binary = os.path.abspath(binary)
    budget = float(os.environ.get("BUDGET", "60"))
    names = [d for d in re.split(r"[,\s]+", os.environ.get("DATASETS", "")) if d] or ALL_DATASETS
    unknown = set(names) - set(ALL_DATASETS)
    if unknown:
        sys.exit(f"unknown datasets {sorted(unknown)}; known: {ALL_DATASETS}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = os.environ.get("WORK") or f"/tmp/automl_vs_flaml-{stamp}"
    out_path = os.environ.get("OUT") or f"/tmp/automl_vs_flaml-{stamp}.json"
    os.makedirs(root, exist_ok=True)
    print(f"budget {budget:g} s, work dir {root}, results {out_path}", file=sys.stderr)
    results = []
    doc = {
        "budget_seconds": budget,
        "ferroflow_bin": binary,
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "work_dir": root,
        "results": results,
    }
    for name in names:
        work = os.path.join(root, name)
        os.makedirs(work, exist_ok=True)
        csv_path = os.path.join(work, "data.csv")
        info = write_csv(name, csv_path)
        print(f"{name}: {info['rows']} rows, {info['metric']}; ferroflow …", file=sys.stderr, flush=True)
        ff = run_ferroflow(binary, csv_path, info, budget, work)
        print(f"  ferroflow {fmt(ff.get('score'))} in {fmt(ff.get('wall_seconds'), 1)} s "
              f"{ff.get('error', '')}; FLAML …", file=sys.stderr, flush=True)
        fl = run_flaml(csv_path, info, budget, work)
        print(f"  FLAML {fmt(fl.get('score'))} in {fmt(fl.get('wall_seconds'), 1)} s "
              f"{fl.get('error', '')}", file=sys.stderr, flush=True)
        results.append({"dataset": name, **info, "ferroflow": ff, "flaml": fl})
        with open(out_path, "w") as f:  # after every dataset, so a partial run leaves a file
            json.dump(doc, f, indent=1, default=str)
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    doc["table"] = table(results, budget)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    print(doc["table"])
    print(f"\nJSON: {out_path}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flaml-worker":
        _, _, csv_path, problem, metric, budget, result_path = sys.argv
        flaml_worker(csv_path, problem, metric, float(budget), result_path)
    else:
        main()
