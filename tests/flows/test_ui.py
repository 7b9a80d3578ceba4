"""The Prefect UI shows every run whole, checked against a real `prefect server start` after
`fer demo` (the pipeline flow) ran twice on it: every task run's recorded inputs are of a
kind the UI renders, training has a task upstream, the artifacts name the paper's Tables
1-5 and Figures 2-5 within Prefect's event size limit, and the server refused no event.
The ``browser`` tests open the UI's pages in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)

from tests.conftest import in_ci
from tests.flows.test_deployment_e2e import free_port, stop, wait_healthy

FER = str(Path(sys.executable).parent / "fer")
PREFECT = str(Path(sys.executable).parent / "prefect")
# What the UI's task run list and task page render (prefect's ui-library TaskInput kinds).
RENDERED = {"constant", "parameter", "task_run"}
EVENT_LIMIT = 1_500_000  # PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES' default


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A Prefect server with two `fer demo` runs (the second one cached): (api, ui, log)."""
    root = tmp_path_factory.mktemp("ui")
    port = int(os.environ.get("FER_UI_TEST_PORT") or free_port())  # a fixed one when shared
    ui, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    # The UI's pages call the API at PREFECT_UI_API_URL (default port 4200).
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_API_URL": api}
    env.pop("PREFECT_API_URL", None)
    log = root / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                  env=env)
    try:
        wait_healthy(api, server)
        env["PREFECT_API_URL"] = api
        for _ in range(2):
            r = subprocess.run([FER, "demo", "--out", str(root / "demo"), "--per-class", "8",
                                "--epochs", "2"], capture_output=True, text=True, env=env,
                               timeout=1500)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            assert "FutureWarning" not in r.stderr, r.stderr[-3000:]
        yield api, ui, log
    finally:
        stop(server)


def client(api: str):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api=api)


def pipeline_runs(api: str):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with client(api) as c:
        runs = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["pipeline"])))
        assert len(runs) == 2
        return sorted(runs, key=lambda r: r.start_time)


def task_runs(api: str, flow_run_ids: list) -> list:

    with client(api) as c:
        return c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=flow_run_ids)))


def test_every_task_input_is_renderable_and_training_has_an_upstream(served):
    api, _, _ = served
    for run in pipeline_runs(api):
        with client(api) as c:
            subflows = c.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        tasks = task_runs(api, [run.id, *(s.id for s in subflows)])
        assert {"save-sets", "reports", "merge-alignment"} <= {t.name for t in tasks}
        for t in tasks:
            kinds = {i.input_type for inputs in t.task_inputs.values() for i in inputs}
            assert kinds <= RENDERED, (t.name, t.task_inputs)
        # preparation -> training -> publish, on the first run and on the cached rerun
        assert "save-sets" in upstream(tasks, "train-"), upstream(tasks, "train-")
        assert any(n.startswith("train-") for n in upstream(tasks, "publish-model"))
        assert {"split", "plan-align-batches"} <= upstream(tasks, "merge-alignment")
        assert "merge-alignment" in upstream(tasks, "resize-")
        assert "merge-alignment" in upstream(tasks, "reports")


def upstream(tasks: list, name: str) -> set[str]:
    """The names of the task runs the (first) task run named ``name...`` takes inputs from."""
    by_id = {t.id: t for t in tasks}
    t = next(t for t in tasks if t.name.startswith(name))
    return {by_id[i.id].name for inputs in t.task_inputs.values() for i in inputs
            if i.input_type == "task_run" and i.id in by_id}


def test_artifacts_name_the_paper_and_fit_in_an_event(served):
    api, _, log = served
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    last = pipeline_runs(api)[-1]
    with client(api) as c:
        artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[last.id])))
    described = {a.key: a.description or "" for a in artifacts}
    for n, key in enumerate(("table-1-distribution", "table-2-split", "table-3-alignment",
                             "table-4-augmentation-plan", "table-5-augmentation"), start=1):
        assert described[key].startswith(f"**Table {n}: "), described[key]
        assert ".csv`" in described[key], described[key]
    assert described["table-1-distribution"].startswith(
        "**Table 1: distribution before and after SHA-1 duplicate removal**")
    assert "augmentation plan per class" in described["table-4-augmentation-plan"]
    for n, key in ((2, "figure-2-distribution"), (3, "figure-3-preprocessed"),
                   (4, "figure-4-augmented"), (5, "figure-5-augmented-distribution")):
        assert described[key].startswith(f"**Figure {n}: ") and ".png`" in described[key]
    assert not any("file://" in str(a.data) + (a.description or "") for a in artifacts)
    assert "What this run did: " in described["stages"]
    largest = max(len(a.model_dump_json()) for a in artifacts)
    assert largest < EVENT_LIMIT / 3, largest  # well under the limit
    assert "Refusing to publish event" not in log.read_text()


# --- in a browser ------------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if in_ci():
            pytest.fail("chromium not found (.ci/run installs it: apt-get install -y "
                        "chromium); CI is set, so the browser tests fail instead of skipping",
                        pytrace=False)
        pytest.skip("chromium not found (apt-get install chromium)")
    return found


class Browser:
    """Headless Chromium driven over the DevTools protocol: open a page, click a tab as a
    user does (the UI's tabs are not all reachable by URL), read the text, screenshot."""

    def __init__(self, profile: Path):
        import httpx
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--window-size=1500,1100",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                target = next(p for p in pages if p["type"] == "page")
                break
            except (httpx.HTTPError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=2**26)
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body.innerText")
        return result["result"].get("value", "")

    def open(self, url: str, *needles: str, timeout: float = 90) -> str:
        self.call("Page.navigate", url=url)
        return self.wait_for(*needles, timeout=timeout)

    def click(self, label: str, *needles: str) -> str:
        # The innermost visible element with exactly this text (a tab's label may sit
        # beside an icon).
        script = ("(() => { const e = [...document.querySelectorAll('body *')].filter(e => "
                  "e.offsetParent !== null && "
                  f"e.textContent.trim() === {json.dumps(label)}).pop(); "
                  "if (e) { e.click(); return true } return false })()")
        assert self.call("Runtime.evaluate", expression=script)["result"]["value"], label
        return self.wait_for(*needles)

    def wait_for(self, *needles: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles) or time.monotonic() > deadline:
                time.sleep(1.0)  # let the page settle for the screenshot
                return self.text()
            time.sleep(0.5)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.ws.close()
        stop(self.proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def shots() -> Path:
    """Where the screenshots go: $FER_UI_SHOTS (bench/ui_pages.py: bench/results/), else
    a temporary folder."""
    return Path(os.environ.get("FER_UI_SHOTS") or tempfile.mkdtemp(prefix="fer-ui-"))


@pytest.mark.browser
def test_the_task_runs_tab_lists_the_task_runs(served, browser):
    api, ui, _ = served
    run = pipeline_runs(api)[0]
    out = shots()
    text = browser.open(f"{ui}/runs/flow-run/{run.id}", "publish-model", "save-sets")
    browser.screenshot(out / "ui_run_graph_and_logs.png")
    # The parent run's log names the task of each line.
    assert "Finished in state Completed()" in text and "merge-alignment" in text
    text = browser.click("Task Runs", "save-sets", "merge-alignment", "reports")
    browser.screenshot(out / "ui_task_runs.png")
    assert "No task runs" not in text
    for name in ("save-sets", "reports", "merge-alignment", "split", "train-compact_cnn"):
        assert name in text, (name, text[-3000:])
    text = browser.click("Artifacts", "table-1-distribution")
    browser.screenshot(out / "ui_artifacts.png")
    assert "Table 1: distribution before and after SHA-1 duplicate removal" in text


@pytest.mark.browser
def test_the_reports_task_page_has_content(served, browser):
    api, ui, _ = served
    run = pipeline_runs(api)[0]
    reports = next(t for t in task_runs(api, [run.id]) if t.name == "reports")
    text = browser.open(f"{ui}/runs/task-run/{reports.id}", "Finished in state")
    browser.screenshot(out := shots() / "ui_reports_task.png")
    assert "reports" in text and "Finished in state Completed()" in text, text[-2000:]
    text = browser.click("Task inputs", "manifest", "task_run")
    browser.screenshot(out.with_name("ui_reports_task_inputs.png"))
    assert "manifest" in text and "task_run" in text, text[-2000:]
    assert "flow_run" not in text
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with client(api) as c:
        figure = c.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["figure-4-augmented"])))[0]
    text = browser.open(f"{ui}/artifacts/artifact/{figure.id}", "Full size")
    browser.screenshot(out.with_name("ui_figure_4_artifact.png"))
    assert "Figure 4: the pre-processed face with Poisson, speckle and Gaussian noise" in text
    shown = browser.call("Runtime.evaluate", returnByValue=True, expression=(
        "[...document.images].filter(i => i.src.startsWith('data:image/'))"
        ".map(i => i.naturalWidth)"))["result"]["value"]
    assert len(shown) == 1 and shown[0] > 100, shown  # the inlined figure, decoded
    browser.open(f"{ui}/deployments", "Deployments")  # `fer demo` deploys nothing: empty
    browser.screenshot(out.with_name("ui_deployments.png"))
