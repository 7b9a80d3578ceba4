"""Shared fixtures: real FER2013 images from ../shared, and an isolated Prefect backend."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
FER2013_TAR = Path(os.environ.get("FER2013_TAR", REPO.parent / "shared/data/fer2013.tar.gz"))


@pytest.fixture(scope="session")
def prefect_backend():
    """A throw-away Prefect database for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def in_ci() -> bool:
    # CI services set CI (GitHub Actions, GitLab: "true"); "0"/"false" mean a local run.
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_fer2013(tarball: Path | None = None) -> Path:
    """The FER2013 tarball, or a skip locally; in CI a missing tarball fails the test.

    A skip in CI would let the real-data checks silently vanish from every run.
    """
    tarball = FER2013_TAR if tarball is None else Path(tarball)
    if not tarball.exists():
        msg = f"FER2013 not found at {tarball} (set FER2013_TAR)"
        if in_ci():
            pytest.fail(f"{msg}; CI is set, so the tests that need it fail instead of "
                        "skipping: provide the tarball to the CI job", pytrace=False)
        pytest.skip(msg)
    return tarball


def extract_fer2013_subset(dest: Path, *, per_class: dict[str, int]) -> Path:
    """The first N files (archive order) of each ``subset/class`` key, e.g. {"train/happy": 40}."""
    require_fer2013()
    taken: dict[str, int] = {}
    with tarfile.open(FER2013_TAR) as tar:
        for member in tar:
            parts = Path(member.name).parts  # fer2013/<subset>/<class>/<file>
            if not member.isfile() or len(parts) != 4:
                continue
            key = f"{parts[1]}/{parts[2]}"
            if taken.get(key, 0) >= per_class.get(key, 0):
                continue
            taken[key] = taken.get(key, 0) + 1
            target = dest / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    return dest


def extract_fer2013_paths(dest: Path, paths) -> Path:
    """The files ``paths`` (relative to fer2013/, as the votes file names them) under
    ``dest`` in the same layout; every one must be in the archive."""
    wanted = set(paths)
    with tarfile.open(require_fer2013()) as tar:
        for member in tar:
            rel = member.name.removeprefix("fer2013/")
            if rel in wanted:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(tar.extractfile(member).read())
                wanted.discard(rel)
                if not wanted:
                    break
    assert not wanted, f"{FER2013_TAR}: missing {sorted(wanted)[:3]}"
    return dest


@pytest.fixture(scope="session")
def fer2013_small(tmp_path_factory) -> Path:
    """A real FER2013 subset in its train/test layout: 7 classes, 40 + 10 images each."""
    classes = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    counts = {f"train/{c}": 40 for c in classes} | {f"test/{c}": 10 for c in classes}
    return extract_fer2013_subset(tmp_path_factory.mktemp("fer2013") / "fer2013", per_class=counts)


@pytest.fixture(scope="session")
def fer2013_full(tmp_path_factory) -> Path:
    """The whole of FER2013 (35,887 images, ~7 s to extract), for checks over every file."""
    tarball = require_fer2013()
    dest = tmp_path_factory.mktemp("fer2013_full")
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    return dest / "fer2013"


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()
