"""The Docker work pool, run end to end as users run it: a real Prefect server listening where
containers reach it, Docker work pools, `prefect deploy` from prefect.yaml, Docker workers,
and `prefect deployment run` of `prepare-docker` and of the training `gpu` deployment (on CPU,
its GPU request overridden) on a real FER2013 subset mounted as a volume. Each run is compared
with its process-pool twin (`prepare`, `train`): the saved sets byte for byte, the metrics.
A failed alignment batch is retried in the container as users retry it: one batch's store
folder made unwritable from outside the container fails the run naming that batch; with the
fault gone, `prefect flow-run retry` redoes that batch alone.

Needs the image of docker/Dockerfile (docker/build.sh; .ci/run builds it). Without a Docker
daemon or the image the test skips locally and fails under CI."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.conftest import REPO, extract_fer2013_subset, in_ci
from tests.flows.test_deployment_e2e import PREFECT, free_port, stop, wait_healthy

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.fer2013]

IMAGE = os.environ.get("FER_IMAGE", "fer-pipeline:latest")
UID = 1000  # the image's user (docker/Dockerfile)


def docker_or_skip() -> str:
    """The docker client, once a daemon answers and the image is there."""
    docker = shutil.which("docker")
    if docker is None:
        why = "no docker client on PATH"
    elif subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        why = "the Docker daemon does not answer (start dockerd)"
    elif subprocess.run([docker, "image", "inspect", IMAGE], capture_output=True).returncode:
        why = f"image {IMAGE} is missing (build it: docker/build.sh)"
    else:
        return docker
    if in_ci():
        pytest.fail(f"{why}; CI is set, so the Docker tests fail instead of skipping",
                    pytrace=False)
    pytest.skip(why)


def bridge_gateway(docker: str) -> str:
    """The host's address on Docker's default bridge, where a container reaches the server:
    the bridge's gateway, which docker 20.10 leaves out (the first address of its subnet)."""
    [config] = json.loads(subprocess.run(
        [docker, "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"],
        capture_output=True, text=True, check=True).stdout)
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])


def container_of(docker: str, flow_run: str) -> tuple[str, str]:
    """The image of the container the Docker worker ran ``flow_run`` in, and its exit code
    (waited for: the run is Completed a moment before its container exits)."""
    label = f"label=io.prefect.flow-run-id={flow_run}"
    [line] = subprocess.run([docker, "ps", "-a", "--filter", label, "--format",
                             "{{.ID}} {{.Image}}"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    container, image = line.split()
    code = subprocess.run([docker, "wait", container], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()
    subprocess.run([docker, "rm", container], capture_output=True, check=True)
    return image, code


def sealed(store: Path, stage: str) -> dict[str, int]:
    """A stage's sealed results in the store and when each was sealed (a redo reseals it)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (store / stage).glob("*/_done.json")}


def block_one_batch(store: Path) -> tuple[Path, list[str]]:
    """A fault from outside the container: one alignment batch's result replaced by an empty
    folder its user cannot write (as a folder left by another user on a shared volume).
    Returns the folder and the batch's images, read from the result before it goes."""
    folders = sorted(p.parent for p in (store / "align").glob("*/_done.json"))
    assert len(folders) >= 2, "the others' reuse needs several alignment batches"
    folder = folders[1]
    paths = pd.read_parquet(folder / "detections.parquet")["path"].tolist()
    shutil.rmtree(folder)
    folder.mkdir()
    folder.chmod(0o555)
    return folder, paths


def final_state(api: str, flow_run: str, not_state: str | None = None,
                timeout: float = 900) -> dict:
    """The flow run's state once final, other than the state ``not_state`` (a retried run's
    last one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{flow_run}", timeout=30).json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED") and state["id"] != not_state:
            return state
        time.sleep(2)
    raise TimeoutError(f"flow run {flow_run} not final after {timeout} s")


def files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob(pattern))}


def test_docker_pool_runs_like_the_process_pool(tmp_path):
    docker = docker_or_skip()
    classes = ("angry", "happy", "sad", "surprise")
    data = tmp_path / "data"
    extract_fer2013_subset(data / "fer2013", per_class={
        **{f"train/{c}": 10 for c in classes}, **{f"test/{c}": 3 for c in classes}})
    runs = data / "runs"  # the Docker runs' folder: the image's user writes there
    runs.mkdir()
    os.chown(runs, UID, UID) if os.geteuid() == 0 else runs.chmod(0o777)
    process_run = tmp_path / "process"
    port = int(os.environ.get("FER_PREFECT_PORT") or free_port())
    api = f"http://{bridge_gateway(docker)}:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "FER_REPO_DIR": str(REPO), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "2"}  # workers poll every 2 s, not 10
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    seconds: dict[str, float] = {}

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    def start(name: str, *args: str) -> None:
        procs.append(subprocess.Popen([PREFECT, *args], env=env, cwd=REPO,
                                      stdout=open(logs / f"{name}.log", "w"),
                                      stderr=subprocess.STDOUT))

    def run(deployment: str, *args: str) -> str:
        """The flow run's id, once it completed."""
        t0 = time.perf_counter()
        r = cli("deployment", "run", deployment, *args, "--watch", "--watch-timeout", "900",
                timeout=960)
        seconds[deployment] = round(time.perf_counter() - t0, 1)
        tails = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in logs.iterdir())
        assert r.returncode == 0 and "Completed" in r.stdout, r.stdout + r.stderr + tails
        return re.search(r"UUID: ([0-9a-f-]{36})", r.stdout).group(1)

    volume = f'volumes=["{data}:/data"]'
    # Alignment in several batches, one of which is made to fail below.
    prepare_args = ("-p", "class_map=fer2013", "-p", 'options={"align": {"batch_size": 12}}')
    train_args = ("-p", "model=compact_cnn", "-p", "epochs=1", "-p", "batch_size=16",
                  "-p", "device=cpu", "-p", 'options={"num_threads": 1}')
    try:
        # Listening on every address: the host reaches it on the bridge address as well.
        start("server", "server", "start", "--host", "0.0.0.0", "--port", str(port))
        wait_healthy(api, procs[0])
        for pool, kind in (("cpu", "process"), ("docker", "docker"), ("gpu", "docker")):
            r = cli("work-pool", "create", pool, "--type", kind)
            assert r.returncode == 0, r.stdout + r.stderr
        r = cli("--no-prompt", "deploy", "--name", "prepare", "--name", "prepare-docker",
                "--name", "train", "--name", "gpu")
        assert r.returncode == 0, r.stdout + r.stderr
        for pool in ("cpu", "docker", "gpu"):
            start(f"worker-{pool}", "worker", "start", "--pool", pool, "--limit", "1")

        run("prepare/prepare", "-p", f"data={data / 'fer2013'}", "-p", f"out={process_run}",
            *prepare_args)
        flow_run = run("prepare/prepare-docker", "-p", "data=/data/fer2013",
                       "-p", "out=/data/runs/p", *prepare_args, "--job-variable", volume)
        docker_run = runs / "p"
        # The flow ran in the container, as its user, into the mounted folder.
        assert docker_run.stat().st_uid == UID
        assert container_of(docker, flow_run) == (IMAGE, "0")
        process_sets = files(process_run / "sets", "*.npy")
        assert len(process_sets) >= 3
        assert files(docker_run / "sets", "*.npy") == process_sets
        for report in ("distribution.csv", "split.csv", "alignment.csv", "augmentation.csv"):
            assert ((docker_run / "reports" / report).read_bytes()
                    == (process_run / "reports" / report).read_bytes()), report

        artifacts = httpx.post(f"{api}/artifacts/filter", timeout=30, json={
            "artifacts": {"flow_run_id": {"any_": [flow_run]}}}).json()
        assert {"table-2-split", "table-3-alignment", "figure-4-augmented"} <= {
            a["key"] for a in artifacts}

        # Retrying a failed alignment batch, in the container.
        store = docker_run / "store"
        before = sealed(store, "align")
        blocked, paths = block_one_batch(store)
        t0 = time.perf_counter()
        r = cli("deployment", "run", "prepare/prepare-docker", "-p", "data=/data/fer2013",
                "-p", "out=/data/runs/p", *prepare_args, "-p", "retry_delay_s=0",
                "--job-variable", volume, "--watch", "--watch-timeout", "900", timeout=960)
        flow_run = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout).group(1)
        failed = final_state(api, flow_run)
        assert failed["type"] == "FAILED", r.stdout + r.stderr
        assert re.search(rf"batch\(es\) #\d+ \({len(paths)} images from {re.escape(paths[0])}\)",
                         failed["message"]), failed["message"]
        # In the container (which exits 0: the failure is the run's state on the server).
        assert container_of(docker, flow_run)[0] == IMAGE
        [task_run] = httpx.post(f"{api}/task_runs/filter", timeout=30, json={
            "task_runs": {"state": {"type": {"any_": ["FAILED"]}}}}).json()
        assert task_run["name"].startswith("align-batch-") and task_run["run_count"] == 3, \
            "one try and the flow's two retries"
        manifest = pd.read_parquet(docker_run / "manifest.parquet").set_index("path")
        assert set(manifest.index[manifest["align_error"] != ""]) == set(paths)
        assert "Permission denied" in manifest.loc[paths[0], "align_error"]

        blocked.rmdir()  # the fault is gone
        r = cli("flow-run", "retry", flow_run)
        assert r.returncode == 0, r.stdout + r.stderr
        assert final_state(api, flow_run, not_state=failed["id"])["type"] == "COMPLETED"
        seconds["retry-failed-batch"] = round(time.perf_counter() - t0, 1)
        assert container_of(docker, flow_run) == (IMAGE, "0")
        after = sealed(store, "align")
        assert after.keys() == before.keys()
        assert {k for k in after if after[k] != before[k]} == {blocked.name}, \
            "only the failed batch is redone"
        reused = httpx.post(f"{api}/task_runs/filter", timeout=30, json={"task_runs": {
            "name": {"any_": [f"align-batch-cached-{len(before) - 1}"]}}}).json()
        assert [t["state"]["name"] for t in reused] == ["Cached", "Cached"], \
            "the failed run and its retry reuse every other batch, in one task run each"
        assert files(docker_run / "sets", "*.npy") == process_sets
        assert (pd.read_parquet(docker_run / "manifest.parquet")["align_error"] == "").all()

        run("train/train", "-p", f"run_dir={process_run}", *train_args)
        # The gpu deployment on CPU: no device request, the image's CUDA torch on the CPU.
        flow_run = run("train/gpu", "-p", "run_dir=/data/runs/p", *train_args,
            "--job-variable", "container_create_kwargs={}", "--job-variable", volume)
        assert container_of(docker, flow_run) == (IMAGE, "0")
        metrics = {}
        for name, folder in (("process", process_run), ("docker", docker_run)):
            found = sorted(folder.rglob("metrics.json"))
            assert found, f"no metrics.json in the {name} run"
            metrics[name] = json.loads(found[0].read_text())
        assert metrics["docker"]["splits"] == metrics["process"]["splits"]
        for split in metrics["process"]["splits"]:
            assert metrics["docker"][split]["accuracy"] == pytest.approx(
                metrics["process"][split]["accuracy"], abs=1e-9), split
    finally:
        for proc in reversed(procs):
            stop(proc)
        print("deployment run seconds (--watch, worker poll included):", seconds)
        if os.environ.get("FER_DOCKER_TIMES"):
            Path(os.environ["FER_DOCKER_TIMES"]).write_text(json.dumps(seconds, indent=1))
