"""A tiny FER+ model for the tests that ship it or put it behind the doors: real FER2013 faces
with their FER+ votes (the first few of each usage and class folder), prepared with ``fer
prepare --preset ferplus`` and trained for a few seconds with ``fer train``, both label
modes, and recorded as bench/train_ferplus.py records a run (its own ``ferplus_record``), so
bench/ship_model.py ships it as it will ship the real one. Built once per session."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.measure import CpuWatch, peak_rss_bytes, write_result
from bench.train_ferplus import CONFIG, ferplus_record
from fer_cli.main import main
from tests.conftest import REPO, extract_fer2013_paths, require_fer2013

VOTES = REPO.parent / "shared" / "data" / "ferplus_votes.csv"
PER_FOLDER = 8  # faces per (usage, FER2013 class folder): 56 per usage
# The real recipe, shrunk to seconds: a small CNN, two epochs, one thread (the machine is
# shared), float32. Mirror TTA stays on, as the doors must apply it.
TINY = {"model": "compact_cnn", "epochs": 2, "warmup_epochs": 1, "batch_size": 16,
        "augment": False, "cpu_amp": False, "num_threads": 1}


@dataclass(frozen=True)
class TinyFerplus:
    run: Path  # the crossentropy run: run/model/best.pt is the 8-class checkpoint
    result: Path  # train_ferplus_crossentropy_smoke.json, the majority twin beside it
    votes: Path


def _extract(root: Path) -> Path:
    """The chosen JPEGs under ``root`` (fer2013/ layout) and their rows of the votes file."""
    votes = pd.read_csv(VOTES)
    folder = votes["path"].str.split("/").str[1]
    chosen = votes.groupby([votes["usage"], folder]).head(PER_FOLDER)  # path order
    extract_fer2013_paths(root, chosen["path"])
    labels = root.parent / "ferplus_votes_tiny.csv"
    chosen.to_csv(labels, index=False)
    return labels


def _timed(args: list[str]) -> dict:
    """``fer ARGS`` in this process: wall time and the CPU share others took meanwhile."""
    watch, t0 = CpuWatch(), time.perf_counter()
    assert main(args) == 0, args
    return {"command": " ".join(["fer", *args]), "returncode": 0,
            "wall_seconds": round(time.perf_counter() - t0, 2), "chunks": 1,
            "peak_rss_mib": round(peak_rss_bytes() / 2**20, 1), "cpu": watch.result()}


def _mode(base: Path, data: Path, labels: Path, mode: str) -> Path:
    run = base / f"run_{mode}"
    prepare = ["prepare", str(data), "--labels", str(labels), "--preset", "ferplus",
               "--labels-mode", mode, "--no-align", "--augment", "none",
               "--store", str(base / "store"), "--out", str(run)]
    prepared = _timed(prepare)
    values = yaml.safe_load(CONFIG.read_text()) | TINY | {"label_mode": mode}
    config = base / f"ferplus_{mode}.yaml"
    config.write_text(yaml.safe_dump(values, sort_keys=False))
    train = ["train", str(run), "--config", str(config), "--store", str(base / f"st_{mode}")]
    trained = _timed(train)
    record = ferplus_record(mode, run, values, config=CONFIG, prepare=["fer", *prepare],
                            prepared=prepared, train_command=["fer", *train],
                            trained=trained, per_class=PER_FOLDER,
                            figures=base / "results" / f"ferplus_{mode}_smoke")
    return write_result(base / "results" / f"train_ferplus_{mode}_smoke.json", record)


@cache
def build(base: Path) -> TinyFerplus:
    base.mkdir(parents=True, exist_ok=True)
    labels = _extract(base / "fer2013")
    result = _mode(base, base / "fer2013", labels, "crossentropy")
    _mode(base, base / "fer2013", labels, "majority")  # the twin the card shows beside it
    return TinyFerplus(run=base / "run_crossentropy", result=result, votes=labels)


@pytest.fixture(scope="session")
def tiny_ferplus(prefect_backend, tmp_path_factory) -> TinyFerplus:
    require_fer2013()
    if not VOTES.is_file():
        pytest.skip(f"{VOTES} not found")
    return build(tmp_path_factory.getbasetemp() / "tiny_ferplus")
