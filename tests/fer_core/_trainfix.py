"""Shared fixtures for the training tests: a small real run folder cut from FER2013.

The images are read straight from the shared tarball (never copied into the repo),
resized to 96x96 RGB and saved in the FORMATS.md layout with fer_core.store. Builders are
memoised so that several test modules share one folder and one trained model.
"""

from __future__ import annotations

import os
import tarfile
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core import store
from tests.conftest import require_fer2013

REPO = Path(__file__).resolve().parents[2]
# The same override as tests/conftest.py: FER2013_TAR names another copy of the tarball.
TARBALL = Path(os.environ.get("FER2013_TAR", REPO.parent / "shared" / "data" / "fer2013.tar.gz"))
# Unequal on purpose, so that class weights and the majority rate mean something.
TRAIN_COUNTS = {"angry": 70, "happy": 110, "neutral": 80, "surprise": 60}
VAL_PER_CLASS = 30
TEST_PER_CLASS = 15
SIZE = 96


def _read_faces(tarball: Path) -> dict[tuple[str, str], list[np.ndarray]]:
    """(subset, class) -> 96x96 RGB faces, the first ones in archive order."""
    want = {("train", c): n + VAL_PER_CLASS for c, n in TRAIN_COUNTS.items()}
    want |= {("test", c): TEST_PER_CLASS for c in TRAIN_COUNTS}
    got: dict[tuple[str, str], list[np.ndarray]] = {k: [] for k in want}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")  # fer2013/<subset>/<class>/<file>.jpg
            key = tuple(parts[1:3]) if len(parts) == 4 and member.isfile() else None
            if key not in want or len(got[key]) >= want[key]:
                continue
            data = np.frombuffer(tar.extractfile(member).read(), np.uint8)
            grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
            grey = cv2.resize(grey, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
            got[key].append(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
            if all(len(got[k]) >= n for k, n in want.items()):
                break
    short = {k: len(v) for k, v in got.items() if len(v) < want[k]}
    if short:
        raise RuntimeError(f"{tarball}: too few images for {short}")
    return got


def _save_split(run_dir: Path, split: str, faces: list[np.ndarray], codes: list[int],
                n_classes: int) -> None:
    labels = np.eye(n_classes, dtype=np.uint8)[codes]
    store.write_array(run_dir / "sets" / split / "images.npy", np.stack(faces))
    store.write_array(run_dir / "sets" / split / "labels.npy", labels)


@cache
def build_run(base: Path) -> Path:
    """RUN_DIR with sets/{train,val,test} and sets/meta.json, built once per session."""
    run_dir = base / "fer_small_run"
    if (run_dir / "sets" / store.SETS_META).exists():
        return run_dir
    faces = _read_faces(TARBALL)
    classes = sorted(TRAIN_COUNTS)  # LabelEncoder order, as fer prepare writes it
    splits = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for code, c in enumerate(classes):
        train_faces = faces[("train", c)]
        for split, chunk in (("train", train_faces[:TRAIN_COUNTS[c]]),
                             ("val", train_faces[TRAIN_COUNTS[c]:]),
                             ("test", faces[("test", c)])):
            splits[split][0].extend(chunk)
            splits[split][1].extend([code] * len(chunk))
    for split, (imgs, codes) in splits.items():
        _save_split(run_dir, split, imgs, codes, len(classes))
    store.write_json(run_dir / "sets" / store.SETS_META,
                     {"classes": classes, "image_size": [SIZE, SIZE], "channels": "RGB",
                      "scale": 255, "splits": {s: len(v[1]) for s, v in splits.items()}})
    return run_dir


@pytest.fixture(scope="session")
def fer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_fer2013(TARBALL)  # a skip locally, a failure in CI
    return build_run(tmp_path_factory.getbasetemp())


@cache
def build_tiny_run(base: Path, per_class: int = 16, val_per_class: int = 8) -> Path:
    """A few images per class and no test split: for tests that train several times."""
    src, run_dir = build_run(base), base / "fer_tiny_run"
    if (run_dir / "sets" / store.SETS_META).exists():
        return run_dir
    counts = {}
    for split, n in (("train", per_class), ("val", val_per_class)):
        saved = store.load_set(src, split)
        keep = np.concatenate([np.flatnonzero(saved.targets == c)[:n]
                               for c in range(len(saved.classes))])
        store.write_array(run_dir / "sets" / split / "images.npy", saved.images[keep])
        store.write_array(run_dir / "sets" / split / "labels.npy", saved.labels[keep])
        counts[split] = len(keep)
    store.write_json(run_dir / "sets" / store.SETS_META,
                     {**store.read_json(src / "sets" / store.SETS_META), "splits": counts})
    return run_dir


# ~60 steps of compact_cnn. One thread: OpenMP threads on an oversubscribed machine (tests
# beside other jobs) run several times slower than one thread.
LEARN_CONFIG = dict(model="compact_cnn", epochs=6, batch_size=32, lr=3e-3, weight_decay=0.0,
                    warmup_epochs=1, augment=False, patience=0, device="cpu", num_threads=1)


@cache
def train_small(base: Path):
    from fer_core.train.loop import TrainConfig, fit

    return fit(build_run(base), TrainConfig(**LEARN_CONFIG), out_dir=base / "trained",
               resume=False)


@pytest.fixture(scope="session")
def fer_tiny_run(fer_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def trained(fer_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """FitResult of LEARN_CONFIG on the small run (out_dir = <basetemp>/trained)."""
    return train_small(tmp_path_factory.getbasetemp())
