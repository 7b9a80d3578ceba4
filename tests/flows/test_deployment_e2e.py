"""End to end as users run it: a Prefect server, a process work pool, `prefect deploy` from
prefect.yaml, a worker, and `prefect deployment run --watch` on a small FER2013 subset: the
`prepare` deployment, and the `batch` deployment, whose predictions on photos are those of
`fer predict`'s in-process run (the deployment door of tests/flows/test_doors.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pandas as pd
import pytest

from fer_core.datasets.planted import backgrounds, plant_face
from fer_core.infer.batch import predict_paths
from fer_core.infer.predict import PredictConfig
from fer_core.models.weights import DEFAULT_CHECKPOINT
from tests.conftest import REPO, extract_fer2013_subset

PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(api: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"prefect server not healthy at {api} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.fer2013
def test_deployment_run_on_server_and_worker(tmp_path):
    classes = ("angry", "happy", "sad", "surprise")
    data = extract_fer2013_subset(tmp_path / "fer", per_class={
        **{f"train/{c}": 10 for c in classes}, **{f"test/{c}": 3 for c in classes}})
    out = tmp_path / "run"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "FER_REPO_DIR": str(REPO), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    try:
        procs.append(subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
            stdout=open(logs / "server.log", "w"), stderr=subprocess.STDOUT))
        wait_healthy(api, procs[0])
        r = cli("work-pool", "create", "e2e", "--type", "process")
        assert r.returncode == 0, r.stdout + r.stderr
        r = cli("--no-prompt", "deploy", "--name", "prepare", "--pool", "e2e")
        assert r.returncode == 0, r.stdout + r.stderr
        procs.append(subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "e2e", "--limit", "1"], env=env, cwd=REPO,
            stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT))
        # A config section as a JSON object, as the UI's typed form sends it.
        r = cli("deployment", "run", "prepare/prepare", "-p", f"data={data}", "-p", f"out={out}",
                "-p", "class_map=fer2013", "-p", 'options={"quality": {"min_images": 5}}',
                "--watch", "--watch-timeout", "900", timeout=960)
        worker_log = (logs / "worker.log").read_text()
        assert r.returncode == 0, r.stdout + r.stderr + worker_log[-3000:]
        assert "Completed" in r.stdout
        assert (out / "reports" / "alignment.csv").is_file()
        assert (out / "sets" / "train" / "images.npy").is_file()
        config = json.loads((out / "prepare.json").read_text())["config"]
        assert config["quality"]["min_images"] == 5 and config["ingest"]["class_map"]

        artifacts = httpx.post(f"{api}/artifacts/filter", json={}, timeout=30).json()
        keys = {a["key"] for a in artifacts}
        assert {"table-1-distribution", "table-2-split", "table-3-alignment",
                "table-4-augmentation-plan", "table-5-augmentation", "figure-2-distribution",
                "run-folder", "alignment-progress"} <= keys
        table = next(a for a in artifacts if a["key"] == "table-2-split")
        assert "Happiness" in str(table["data"])

        photos = tmp_path / "photos"
        photos.mkdir()
        rng, backs = np.random.default_rng(3), backgrounds()
        for face in sorted((data / "test").rglob("*.jpg"))[::3]:
            photo, _ = plant_face(cv2.imread(str(face), cv2.IMREAD_GRAYSCALE), backs, rng)
            cv2.imwrite(str(photos / f"{face.parent.name}_{face.stem}.png"), photo)
        r = cli("--no-prompt", "deploy", "--name", "batch", "--pool", "e2e")
        assert r.returncode == 0, r.stdout + r.stderr
        served = tmp_path / "batch.csv"
        r = cli("deployment", "run", "predict/batch", "-p", f'inputs=["{photos}"]',
                "-p", f"model={DEFAULT_CHECKPOINT}", "-p", f"out={served}", "--watch",
                "--watch-timeout", "600", timeout=660)
        assert r.returncode == 0, r.stdout + r.stderr + (logs / "worker.log").read_text()[-3000:]
        local = predict_paths([str(photos)], DEFAULT_CHECKPOINT, PredictConfig(),
                              out=tmp_path / "local.csv")
        a, b = pd.read_csv(served), pd.read_csv(local["results"])
        assert len(a) == len(b) >= 4
        assert list(a["class"].fillna("")) == list(b["class"].fillna(""))
        np.testing.assert_allclose(a.filter(like="p_").to_numpy(dtype=float),
                                   b.filter(like="p_").to_numpy(dtype=float), atol=1e-4)
    finally:
        for proc in reversed(procs):
            stop(proc)
    assert all(p.poll() is not None for p in procs), "server and worker are stopped"
