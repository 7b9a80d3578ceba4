"""`fer prepare` end to end through the Prefect flow: the paper's tables, and real FER2013."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

from fer_cli.main import main
from fer_core import store
from tests.conftest import require_fer2013

TABLE1 = {"Anger": (8228, 8228), "Disgust": (2651, 2458), "Fear": (2985, 2983),
          "Happiness": (9113, 9113), "Sadness": (13040, 13040), "Surprise": (7418, 7417)}
TABLE2 = {"Anger": (6582, 1646), "Disgust": (1967, 491), "Fear": (2386, 597),
          "Happiness": (7290, 1823), "Sadness": (10432, 2608), "Surprise": (5934, 1483)}
TABLE5 = {"Anger": 9543, "Disgust": 7868, "Fear": 9544, "Happiness": 9477, "Sadness": 10432,
          "Surprise": 9492}


def read_table(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / "reports" / f"{name}.csv", dtype={"code": str})


@pytest.fixture(scope="module")
def table1_dataset(tmp_path_factory) -> Path:
    """43,435 distinct 16x16 images in the paper's classes, 196 of them byte-duplicates."""
    root = tmp_path_factory.mktemp("paper") / "data"
    rng = np.random.default_rng(0)
    for cls, (before, after) in TABLE1.items():
        (root / cls).mkdir(parents=True)
        for i in range(after):
            img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            (root / cls / f"{i:05d}.png").write_bytes(cv2.imencode(".png", img)[1].tobytes())
        for j in range(before - after):
            src = (root / cls / f"{j:05d}.png").read_bytes()
            (root / cls / f"dup_{j:05d}.png").write_bytes(src)
    return root


@pytest.mark.slow
def test_paper_tables_1_2_5_reproduced(prefect_backend, table1_dataset, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("resize:\n  size: 32\n")  # tables do not depend on the image size
    run = tmp_path / "run"
    assert main(["prepare", str(table1_dataset), "--out", str(run), "--no-align",
                 "--config", str(config)]) == 0
    dist = read_table(run, "distribution").set_index("class")
    assert list(dist.reset_index().columns) == ["class", "before_dedup", "after_dedup"]
    for cls, counts in TABLE1.items():
        assert tuple(dist.loc[cls]) == counts
    assert tuple(dist.loc["Total"]) == (43435, 43239)
    split = read_table(run, "split").set_index("class")
    assert list(split.reset_index().columns) == ["class", "code", "train", "val"]
    for code, (cls, counts) in enumerate(TABLE2.items()):
        assert (split.loc[cls, "code"], *split.loc[cls, ["train", "val"]]) == (str(code), *counts)
    aug = read_table(run, "augmentation").set_index("class")
    assert aug["after"].drop("Total").to_dict() == TABLE5
    assert aug.loc["Total", "after"] == 56356
    manifest = store.read_frame(run / "manifest.parquet")
    assert len(manifest) == 43435
    dups = manifest[manifest["status"] == "duplicate"].groupby("class").size().to_dict()
    assert dups == {"Disgust": 193, "Fear": 2, "Surprise": 1}
    train = store.load_set(run, "train")
    assert train.images.shape == (56356, 32, 32, 3) and train.labels.shape == (56356, 6)
    assert train.labels.sum(axis=0).tolist() == list(TABLE5.values())


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def expected_kept(root: Path, *, skip: tuple[str, ...] = ()) -> int:
    """How many files the README's duplicate rule keeps, worked out from the bytes (hashlib).

    Independent of fer_core: one file per distinct SHA-1, unless the labels that decide the
    group disagree (the test copies' when it has any, else all copies'): then none (drop).
    Counting this way, not from one copy of FER2013's incidental facts, keeps the test true
    for any tarball (the clean one holds a byte duplicate in the 300-image subset).
    """
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for f in root.glob("*/*/*.jpg"):  # <subset>/<class>/<file>
        if f.parent.name not in skip:
            groups[hashlib.sha1(f.read_bytes()).hexdigest()].append(
                (f.parent.parent.name, f.parent.name))
    kept = 0
    for copies in groups.values():
        judges = {c for s, c in copies if s == "test"} or {c for _, c in copies}
        kept += len(judges) == 1
    return kept


@pytest.mark.fer2013
def test_fer2013_subset_with_alignment_is_reproducible(prefect_backend, fer2013_small, tmp_path):
    args = ["prepare", str(fer2013_small), "--class-map", "fer2013", "--classes", "paper"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    manifest = store.read_frame(one / "manifest.parquet")
    files = {p.relative_to(fer2013_small).as_posix() for p in fer2013_small.rglob("*.jpg")}
    assert set(manifest["path"]) == files, "every input file is accounted for"
    neutral = manifest.loc[manifest["class"] == "Neutral", "reason"]
    assert neutral.str.contains("not selected").all()
    assert len(neutral) == len(list(fer2013_small.glob("*/neutral/*.jpg")))
    align = read_table(one, "alignment")
    assert list(align.columns) == ["class", "train_aligned", "train_not_aligned", "val_aligned",
                                   "val_not_aligned", "test_aligned", "test_not_aligned"]
    total = align.set_index("class").loc["Total"]
    kept = expected_kept(fer2013_small, skip=("neutral",))
    assert total.sum() == (manifest["status"] == "kept").sum() == kept
    assert total[["train_aligned", "val_aligned", "test_aligned"]].sum() > 30, "MTCNN found faces"
    meta = store.read_json(one / "sets" / "meta.json")
    assert meta["classes"] == ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
    test = store.load_set(one, "test")
    assert test.images.shape[1:] == (96, 96, 3) and len(test.labels) == meta["splits"]["test"]
    for fig in ("fig2_distribution", "fig3_preprocessed", "fig4_augmented",
                "fig5_augmented_distribution"):
        assert (one / "reports" / f"{fig}.png").stat().st_size > 1000
    # Same inputs and config: byte-identical sets and reports, in a fresh run folder.
    assert main([*args, "--out", str(two)]) == 0
    assert digest(one / "sets") == digest(two / "sets")
    assert digest(one / "reports") == digest(two / "reports")
    # The align sub-flow's parameters are stored by the Prefect server, which refuses them
    # past 512 KiB (all of FER2013's batch lists are 2.7 MB): the manifest by reference,
    # never the list of images.
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["align"])))
    assert runs
    for run in runs:
        stored = json.dumps(run.parameters)
        assert "manifest" in run.parameters and not any(f in stored for f in files)


@pytest.mark.slow
def test_demo_runs_every_stage_offline(prefect_backend, tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--per-class", "12"]) == 0
    manifest = store.read_frame(tmp_path / "demo" / "manifest.parquet")
    assert set(manifest["status"]) == {"kept", "duplicate", "rejected"}
    assert manifest["aligned"].sum() >= 6, "MTCNN should align the photographic faces"
    assert store.load_set(tmp_path / "demo", "train").images.shape[1:] == (96, 96, 3)


@pytest.fixture
def conflict_dataset(tmp_path) -> Path:
    """A made train/test tree: distinct 24x24 images, one test image also in train/ as Fear."""
    root = tmp_path / "data"
    rng = np.random.default_rng(1)

    def write(rel: str, img: np.ndarray) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(cv2.imencode(".png", img)[1].tobytes())

    for cls in ("Anger", "Fear", "Sadness"):
        for i in range(10):
            write(f"train/{cls}/{i}.png", rng.integers(0, 256, (24, 24), dtype=np.uint8))
        for i in range(3):
            write(f"test/{cls}/{i}.png", rng.integers(0, 256, (24, 24), dtype=np.uint8))
    write("train/Fear/copy_of_test.png", cv2.imread(str(root / "test/Anger/0.png"), 0))
    return root


def test_label_conflict_across_train_and_test_keeps_the_test_image(
        prefect_backend, conflict_dataset, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("resize:\n  size: 32\n")
    run = tmp_path / "run"
    assert main(["prepare", str(conflict_dataset), "--out", str(run), "--no-align",
                 "--augment", "none", "--config", str(config)]) == 0
    test_files = list(conflict_dataset.glob("test/*/*.png"))
    assert store.read_json(run / "sets" / "meta.json")["splits"]["test"] == len(test_files)
    manifest = store.read_frame(run / "manifest.parquet").set_index("path")
    copy = manifest.loc["train/Fear/copy_of_test.png"]
    assert (copy["status"], copy["duplicate_of"]) == ("duplicate", "test/Anger/0.png")
    assert copy["split"] == "", "the training copy is in no split: never trained on"
    table = read_table(run, "label_conflicts")
    assert table.to_dict("records") == [
        {"path": "test/Anger/0.png", "subset": "test", "class": "Anger",
         "conflicting_path": "train/Fear/copy_of_test.png", "conflicting_class": "Fear",
         "action": "kept"},
        {"path": "train/Fear/copy_of_test.png", "subset": "train", "class": "Fear",
         "conflicting_path": "test/Anger/0.png", "conflicting_class": "Anger",
         "action": "duplicate"}]


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_fer2013_fails_in_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_fer2013(tmp_path / "missing.tar.gz")


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_missing_fer2013_skips_locally(monkeypatch, tmp_path, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="FER2013 not found"):
        require_fer2013(tmp_path / "missing.tar.gz")
