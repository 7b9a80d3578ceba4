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
