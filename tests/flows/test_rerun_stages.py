"""Stages that redo only what changed: after one image is edited, added or removed, a rerun
into the same run folder gives, byte for byte, what a fresh run (new folder, new store) on
the changed data gives, while hashing only the changed image for near-duplicates and
rendering again only the changed class's noisy images, and leaving the unchanged splits'
saved images as they were."""

from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd
import pytest

from fer_core import store
from fer_core.store.stage_files import HASHES
from tests.conftest import extract_fer2013_subset
from tests.flows.test_caching import CLASSES, changed, results, run


@pytest.fixture
def data(tmp_path) -> Path:
    counts = {f"train/{c}": 6 for c in CLASSES} | {f"test/{c}": 2 for c in CLASSES}
    return extract_fer2013_subset(tmp_path / "fer", per_class=counts)


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text("resize:\n  size: 48\n")
    return str(path)


def outputs(run_dir: Path) -> dict[str, bytes]:
    """What a run publishes: its sets, its reports and its manifest, by path."""
    files = [*(run_dir / "sets").rglob("*"), *(run_dir / "reports").rglob("*"),
             run_dir / "manifest.parquet"]
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in files
            if p.is_file() and not p.name.startswith(".")}


def kept_hashes(store_root: Path) -> set[str]:
    """The image content keys whose near-duplicate hashes the store keeps."""
    return {k for t in (store_root / HASHES).glob("*.parquet")
            for k in pd.read_parquet(t)["key"]}


def near_meta(store_root: Path, before: dict, after: dict) -> dict:
    (folder,) = changed(before, after, "near_duplicates")[0]
    return store.read_json(store_root / folder / store.DONE)["meta"]


@pytest.mark.fer2013
def test_one_edited_added_or_removed_image_reruns_as_a_fresh_run(prefect_backend, data,
                                                                  config, tmp_path):
    out = tmp_path / "run"
    run(data, out, config, align=False)
    before = results(out / "store")
    hashed = kept_hashes(out / "store")
    m = store.read_frame(out / "manifest.parquet")
    happy = [data / p for p in m.loc[(m["class"] == "happy") & (m["split"] == "train"), "path"]]

    published = {s: (out / "sets" / s / "images.npy").stat() for s in ("val", "test")}
    assert not any(p.parent.parent.name == "augment" for p in (out / "store").rglob("*.npy")), \
        "the training set is put together in the run folder, never stored as a second copy"

    # Edited: same name, new content; only its class (happy) is rendered again.
    img = cv2.imread(str(happy[0]))
    cv2.imwrite(str(happy[0]), cv2.flip(img, 1))
    run(data, out, config, align=False)
    after = results(out / "store")
    fresh = run_fresh(data, config, tmp_path / "fresh-edit", align=False)
    assert outputs(out) == outputs(fresh)
    near = near_meta(out / "store", before, after)
    assert (near["hashed"], near["searched"]) == (1, 1), "its pairs alone are searched"
    assert len(kept_hashes(out / "store") - hashed) == 1, "one image's hashes were added"
    new_classes, _ = changed(before, after, "augment/class")
    assert len(new_classes) == 1, "the edited image's class alone is rendered again"
    rendered = store.read_json(out / "store" / next(iter(new_classes)) / store.DONE)["meta"]
    assert rendered["class"] == "happy"
    assert not changed(before, after, "save/images")[0], "val and test are not copied again"
    for split, was in published.items():
        now = (out / "sets" / split / "images.npy").stat()
        assert (now.st_ino, now.st_mtime_ns) == (was.st_ino, was.st_mtime_ns), \
            f"sets/{split} is unchanged: not published again"

    # Added to the test subset: the training set is the same, no class is rendered again,
    # and the run folder's copy of it is not written again.
    train = (out / "sets" / "train" / "images.npy").stat()
    (data / "test" / "sad" / "added.jpg").write_bytes(
        cv2.imencode(".jpg", cv2.GaussianBlur(img, (3, 3), 0))[1].tobytes())
    before, after = after, run_and_results(data, out, config)
    assert outputs(out) == outputs(run_fresh(data, config, tmp_path / "fresh-add", align=False))
    now = (out / "sets" / "train" / "images.npy").stat()
    assert (now.st_ino, now.st_mtime_ns) == (train.st_ino, train.st_mtime_ns)
    near = near_meta(out / "store", before, after)
    assert (near["hashed"], near["searched"]) == (1, 1)
    assert not changed(before, after, "augment/class")[0]

    # Removed: nothing is hashed (the others are kept); the paper's 80/20 split of the
    # training images is drawn again, so their classes may be rendered again.
    happy[1].unlink()
    before, after = after, run_and_results(data, out, config)
    assert outputs(out) == outputs(run_fresh(data, config, tmp_path / "fresh-remove",
                                             align=False))
    near = near_meta(out / "store", before, after)
    assert (near["hashed"], near["searched"]) == (0, 0), "the others' pairs are kept"


def run_and_results(data: Path, out: Path, config: str) -> dict:
    run(data, out, config, align=False)
    return results(out / "store")


def run_fresh(data: Path, config: str, out: Path, **kw) -> Path:
    """The oracle: a new run folder with a new store, on the same data."""
    run(data, out, config, **kw)
    return out
