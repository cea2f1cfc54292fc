"""MLflow's own web UI in front of the server, driven in a real headless Chromium (Debian's
`chromium`, through Playwright's `executable_path`): each page shows what the stock client
logged, no request the page makes fails, and a screenshot of each lands in the test output
(`$FERROFLOW_TEST_OUTPUT/ui`, or `ui-postgres` on PostgreSQL; default
`$TMPDIR/ferroflow-test-output`).

The same test runs against a real `mlflow server` (FERROFLOW_TEST_AGAINST=mlflow): the
expectations are the UI's behaviour, not ferroflow's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from helpers import unique_name

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("FERROFLOW_TEST_OUTPUT", Path(tempfile.gettempdir()) / "ferroflow-test-output")) / (
    "ui-postgres" if os.environ.get("FERROFLOW_TEST_BACKEND_STORE_URI", "").startswith("postgres") else "ui"
)
# Calls the UI makes that a server without auth answers 404, `mlflow server` included: the UI
# asks who is logged in and takes the 404 as "no auth".
EXPECTED_404 = ("/ajax-api/2.0/mlflow/users/current",)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("FERROFLOW_TEST_NO_BROWSER"):
            # scripts/test could not install it and listed the skip in its summary (a
            # failure under CI=1).
            pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
        pytest.fail("chromium is not installed (Debian: apt-get install chromium); scripts/test installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A browser page that records every request that failed or answered >= 400."""

    def __init__(self, browser, base, http_credentials: dict | None = None):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           http_credentials=http_credentials)
        self.page = self.context.new_page()
        self.failed: list[tuple[str, str]] = []
        self.page.on("requestfailed", self._on_failed)
        self.page.on("response", self._on_response)

    def _on_failed(self, request):
        # A request the page itself abandoned (navigation, a poll cut short) is not a failure.
        if request.failure and "ERR_ABORTED" in request.failure:
            return
        self.failed.append((request.url, request.failure or "failed"))

    def _on_response(self, response):
        if response.status >= 400 and not any(p in response.url for p in EXPECTED_404):
            self.failed.append((response.url, str(response.status)))

    def open(self, fragment: str, *texts: str, timeout=30_000):
        """Opens `#/fragment` and waits until every text is visible."""
        self.page.goto(f"{self.base}/#/{fragment}", wait_until="domcontentloaded")
        for t in texts:
            try:
                self.page.get_by_text(t, exact=False).first.wait_for(state="visible", timeout=timeout)
            except Exception:
                self.shot("FAILED-" + re.sub(r"[^A-Za-z0-9]+", "-", fragment)[:80])
                raise AssertionError(f"#/{fragment} never showed {t!r}; failed requests: {self.failed}")
        return self

    def shot(self, name: str):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(500)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def no_failed_requests(self):
        self.page.wait_for_timeout(1000)
        assert self.failed == [], self.failed

    def close(self):
        self.context.close()


@pytest.fixture
def page(browser, tracking_uri):
    p = Page(browser, tracking_uri)
    yield p
    p.close()


@pytest.fixture(scope="module")
def logged(tracking_uri, tmp_path_factory):
    """An experiment as a user leaves it: runs with params, tags and metric histories, a nested
    run, artifacts, a registered model with two versions (a stage and an alias), a logged model."""
    client = mlflow.MlflowClient(tracking_uri)
    name = unique_name("ui")
    exp = client.create_experiment(name)
    runs = {}
    for i, lr in enumerate([0.1, 0.01]):
        run = client.create_run(exp, run_name=f"train-{i}", tags={"team": "vision"})
        rid = run.info.run_id
        client.log_param(rid, "lr", str(lr))
        client.log_param(rid, "epochs", "20")
        for step in range(20):
            client.log_metric(rid, "loss", 1.0 / (step + 1 + i), step=step, timestamp=1_700_000_000_000 + step)
            client.log_metric(rid, "accuracy", 0.5 + 0.02 * step - 0.01 * i, step=step, timestamp=1_700_000_000_000 + step)
        runs[f"train-{i}"] = rid
    child = client.create_run(exp, run_name="child", tags={"mlflow.parentRunId": runs["train-0"]})
    client.log_metric(child.info.run_id, "loss", 0.25)
    client.set_terminated(child.info.run_id)
    d = tmp_path_factory.mktemp("ui-artifacts")
    (d / "notes.txt").write_text("hello from the ui test\n")
    (d / "config.json").write_text(json.dumps({"layers": 3}))
    client.log_artifact(runs["train-0"], str(d / "notes.txt"))
    client.log_artifact(runs["train-0"], str(d / "config.json"), artifact_path="configs")
    for rid in runs.values():
        client.set_terminated(rid)
    # A model with a signature (the version page shows its schema), two versions.
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"sepal_length": np.linspace(4, 8, 40), "petal_width": np.linspace(0.1, 2.5, 40)})
    y = (X["petal_width"] > 1.2).astype(int)
    model_name = unique_name("ui-model")
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=exp, run_name="fit-model") as run:
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(X, y), name="model", input_example=X.iloc[:2],
            registered_model_name=model_name,
        )
        mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit(X, y), name="model2", registered_model_name=model_name)
    client.transition_model_version_stage(model_name, "1", "Staging")
    client.set_registered_model_alias(model_name, "champion", "2")
    return {
        "client": client,
        "experiment_id": exp,
        "experiment": name,
        "runs": runs,
        "child": child.info.run_id,
        "model": model_name,
        "model_id": info.model_id,
        "fit_run": run.info.run_id,
    }


def test_experiments_list_and_runs_table(page, logged):
    page.open("experiments", logged["experiment"])
    page.shot("experiments-list")
    page.no_failed_requests()
    # An experiment opens on MLflow 3's overview, whose charts ask traces/metrics.
    page.open(f"experiments/{logged['experiment_id']}", logged["experiment"])
    page.shot("experiment-overview")
    page.no_failed_requests()
    page.open(f"experiments/{logged['experiment_id']}/runs", "train-0", "train-1")
    page.shot("runs-table")
    page.no_failed_requests()


def test_run_overview_metrics_and_artifacts(page, logged):
    exp, rid = logged["experiment_id"], logged["runs"]["train-0"]
    page.open(f"experiments/{exp}/runs/{rid}", "train-0", "lr", "0.1", "vision")
    page.shot("run-overview")
    page.no_failed_requests()
    page.open(f"experiments/{exp}/runs/{rid}/model-metrics", "loss", "accuracy")
    page.shot("run-metrics")
    page.no_failed_requests()
    page.open(f"experiments/{exp}/runs/{rid}/artifacts", "notes.txt", "configs")
    page.page.get_by_text("notes.txt").first.click()
    page.page.get_by_text("hello from the ui test").first.wait_for(state="visible", timeout=30_000)
    page.shot("run-artifact-file")
    page.no_failed_requests()


def test_compare_runs(page, logged):
    ids = json.dumps(list(logged["runs"].values()))
    exps = json.dumps([logged["experiment_id"]])
    page.open(f"compare-runs?runs={ids}&experiments={exps}", "train-0", "train-1", "lr")
    page.shot("compare-runs")
    page.no_failed_requests()


def test_models_list_model_and_version(page, logged):
    name = logged["model"]
    # The list is paged by name: find the model with the list's search box, as a user does.
    page.open("models", "Registered Models")
    search = page.page.get_by_placeholder(re.compile("search registered", re.I)).first
    search.fill(name)
    search.press("Enter")
    page.page.get_by_text(name).first.wait_for(state="visible", timeout=30_000)
    page.shot("models-list")
    page.no_failed_requests()
    page.open(f"models/{name}", "Version 1", "Version 2", "champion")
    page.shot("model")
    page.no_failed_requests()
    # The schema comes from the version's MLmodel (GET /model-versions/get-artifact).
    page.open(f"models/{name}/versions/1", "Staging", "Inputs (2)", "Outputs (1)")
    page.page.get_by_text("Inputs (2)").first.click()
    page.page.get_by_text("sepal_length").first.wait_for(state="visible", timeout=30_000)
    page.page.get_by_text("petal_width").first.wait_for(state="visible", timeout=30_000)
    page.shot("model-version")
    page.no_failed_requests()


def test_logged_model(page, logged):
    page.open(f"experiments/{logged['experiment_id']}/models/{logged['model_id']}", logged["model_id"])
    page.shot("logged-model")
    page.no_failed_requests()


def test_runs_chart_view(page, logged):
    page.open(f"experiments/{logged['experiment_id']}/runs", "train-0", "train-1")
    # The view switch is a radio group of icons: table, chart, artifacts.
    page.page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()
    cards = page.page.get_by_test_id("experiment-view-compare-runs-card")
    for metric in ("loss", "accuracy"):
        card = cards.filter(has_text=metric).first
        card.wait_for(state="visible", timeout=30_000)
        # Each chart is a plotly plot with a line per run, named in its legend.
        card.locator("svg.main-svg").first.wait_for(state="attached", timeout=30_000)
        card.get_by_text(f"train-0 ({metric})").first.wait_for(state="visible", timeout=30_000)
        card.get_by_text(f"train-1 ({metric})").first.wait_for(state="visible", timeout=30_000)
    page.shot("runs-charts")
    page.no_failed_requests()


def _until(check, what: str, timeout=30.0):
    """Polls `check` (the REST view of what the UI just saved) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"the UI's edit never reached the server: {what}")
        time.sleep(0.2)


def test_edit_flows_reach_the_server(page, logged):
    """Rename a run, add a tag, transition a stage and set an alias through the UI's own forms;
    the REST API (the stock client) sees each change."""
    client, exp = logged["client"], logged["experiment_id"]
    rid = client.create_run(exp, run_name="to-rename").info.run_id
    page.open(f"experiments/{exp}/runs/{rid}", "to-rename", "Add tags")
    page.page.get_by_test_id("overflow-menu-trigger").click()
    page.page.get_by_test_id("overflow-rename-button").click()
    name_input = page.page.get_by_test_id("rename-modal-input")
    name_input.fill("renamed-in-ui")
    page.page.get_by_role("dialog").get_by_role("button", name="Save").click()
    _until(lambda: client.get_run(rid).info.run_name == "renamed-in-ui", "run name")
    page.page.get_by_text("renamed-in-ui").first.wait_for(state="visible", timeout=30_000)

    page.page.get_by_role("button", name="Add tags").click()
    dialog = page.page.get_by_role("dialog").filter(has=page.page.get_by_role("button", name="Save tags"))
    key = dialog.get_by_role("combobox")
    key.fill("owner")
    key.press("Enter")
    dialog.get_by_label("Value").fill("alice")
    dialog.get_by_role("button", name="Add tag").click()
    dialog.get_by_role("button", name="Save tags").click()
    _until(lambda: client.get_run(rid).data.tags.get("owner") == "alice", "run tag owner=alice")
    page.shot("edit-run")
    page.no_failed_requests()

    model = unique_name("ui-edit")
    client.create_registered_model(model)
    # A copy of a version with real artifacts: the page reads its MLmodel.
    v1 = client.get_model_version(logged["model"], "1")
    client.create_model_version(model, v1.source, v1.run_id, model_id=logged["model_id"])
    page.open(f"models/{model}/versions/1", "Version 1")
    # Aliases are edited in the default (new) registry view.
    page.page.get_by_title("Add aliases").click()
    dialog = page.page.get_by_role("dialog").filter(has=page.page.get_by_role("button", name="Save aliases"))
    alias = dialog.get_by_role("combobox")
    alias.fill("candidate")
    alias.press("Enter")
    dialog.get_by_role("button", name="Save aliases").click()
    _until(lambda: client.get_model_version_by_alias(model, "candidate").version == "1", "alias candidate")
    # Stages are edited in the classic view (the new one calls them deprecated).
    page.page.get_by_role("switch", name="New model registry UI").click()
    page.page.get_by_role("button", name="Disable").click()
    page.page.get_by_role("button", name="Disable").wait_for(state="hidden", timeout=30_000)
    page.page.get_by_test_id("descriptions-item").filter(has_text="Stage").get_by_text("None").click()
    page.page.get_by_role("menuitem").filter(has_text="Production").click()
    page.page.get_by_role("dialog").get_by_role("button", name="OK").click()
    _until(lambda: client.get_model_version(model, "1").current_stage == "Production", "stage Production")
    page.page.get_by_test_id("descriptions-item").filter(has_text="Stage").get_by_text("Production").first.wait_for(
        state="visible", timeout=30_000
    )
    page.shot("edit-model-version")
    page.no_failed_requests()
