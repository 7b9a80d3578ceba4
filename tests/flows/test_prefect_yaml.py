"""prefect.yaml stays in step with the flows it deploys."""

import inspect

import yaml
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import REPO


def test_every_deployment_names_a_flow_and_only_its_parameters():
    cfg = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in cfg["deployments"]}
    assert {"nightly", "prepare", "gpu", "batch"} <= names
    for d in cfg["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO / d["entrypoint"]))
        params = set(inspect.signature(flow.fn).parameters)
        assert set(d.get("parameters", {})) <= params, (d["name"], params)
    gpu = next(d for d in cfg["deployments"] if d["name"] == "gpu")
    assert gpu["work_pool"]["job_variables"]["container_create_kwargs"]["device_requests"]


def test_each_deployment_pulls_what_its_pool_needs():
    """Process deployments run from the deploying checkout, Docker ones from the image's
    code (docker/Dockerfile's WORKDIR); the GPU request is the one GPU training uses, and
    nothing is set in a job's environment that the code does not read."""
    cfg = yaml.safe_load((REPO / "prefect.yaml").read_text())
    workdir = [line.split()[1] for line in (REPO / "docker/Dockerfile").read_text().splitlines()
               if line.startswith("WORKDIR ")]
    assert cfg["pull"] is None and workdir == ["/opt/fer"]
    deployments = {d["name"]: d for d in cfg["deployments"]}
    assert {"prepare-docker", "train"} <= set(deployments)
    for name, d in deployments.items():
        [step] = d["pull"]
        directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
        jobs = d["work_pool"]["job_variables"]
        if d["work_pool"]["name"] in ("docker", "gpu"):
            assert directory == workdir[0] and jobs["image"] == "fer-pipeline:latest", name
            assert "env" not in jobs, name
        else:
            assert d["work_pool"]["name"] == "cpu" and directory == "{{ $FER_REPO_DIR }}", name
    [request] = deployments["gpu"]["work_pool"]["job_variables"]["container_create_kwargs"][
        "device_requests"]
    assert request["Count"] == 1 and deployments["gpu"]["parameters"]["device"] == "cuda"
    assert deployments["prepare-docker"]["entrypoint"] == deployments["prepare"]["entrypoint"]
    assert deployments["train"]["entrypoint"] == deployments["gpu"]["entrypoint"]
