"""The Docker work pool's costs, measured through the commands users run: the image build
(docker/build.sh, from the wheel cache, with and without the layer cache of an earlier build),
its size, a container's start (bare, and to `import flows` with torch), and the same
deployments on the process pool against the Docker pool (tests/docker/test_docker_pool.py,
which runs both and records each `prefect deployment run --watch`).

    .venv/bin/python bench/docker_pool.py [--fresh] [--base fer-base:bookworm]
        [--wheels bench/work/wheels | --no-wheels] [--image NAME] [--skip-e2e]

--fresh removes the image and the builder's cache first (a CI machine's first build).
--no-wheels builds from the package index instead of the wheel cache (what a user without
one waits for), with the host's CA bundle as the build's secret. --image builds under another
name, beside the image the deployments run (the e2e test runs prefect.yaml's image)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import REPO, CpuWatch, write_result  # noqa: E402

DOCKER = os.environ.get("DOCKER", "docker")


def timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--base", default="fer-base:bookworm")
    ap.add_argument("--wheels", default="bench/work/wheels")
    ap.add_argument("--no-wheels", action="store_true")
    ap.add_argument("--image", default="fer-pipeline:latest")
    ap.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--out", default="bench/results/docker_pool.json")
    args = ap.parse_args()

    image = args.image
    record: dict = {"image": image, "base": args.base,
                    "wheels": None if args.no_wheels else args.wheels}
    watch = CpuWatch()
    build_env = {"BASE": args.base}
    if args.no_wheels:
        build_env["FER_CA_BUNDLE"] = args.ca_bundle
    else:
        build_env["FER_WHEELS"] = args.wheels
    if args.fresh:
        subprocess.run([DOCKER, "image", "rm", "-f", image], cwd=REPO)
        subprocess.run([DOCKER, "builder", "prune", "-af"], cwd=REPO, check=True)
        record["build_fresh_s"] = timed(["docker/build.sh", image], build_env)
    # A second build: every layer from the cache (what a rebuild after no change costs).
    record["build_cached_s"] = timed(["docker/build.sh", image], build_env)
    size = subprocess.run([DOCKER, "image", "inspect", image, "-f", "{{.Size}}"],
                          capture_output=True, text=True, check=True).stdout
    record["image_size_gb"] = round(int(size) / 1e9, 2)
    record["container_start_true_s"] = min(
        timed([DOCKER, "run", "--rm", image, "true"]) for _ in range(3))
    record["container_import_flows_s"] = min(
        timed([DOCKER, "run", "--rm", image, "python", "-c", "import flows, torch"])
        for _ in range(2))
    if not args.skip_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            times = Path(tmp) / "times.json"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/docker/test_docker_pool.py"], cwd=REPO, check=True,
                           env={**os.environ, "FER_DOCKER_TIMES": str(times)})
            record["e2e_test_s"] = round(time.perf_counter() - t0, 1)
            record["deployment_run_s"] = json.loads(times.read_text())
    record["cpu"] = watch.result()
    print(json.dumps(record, indent=1))
    write_result(REPO / args.out, record)


if __name__ == "__main__":
    main()
