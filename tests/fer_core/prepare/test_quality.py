"""Sharpness per split: a training set blurred unlike its test set is reported."""

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.prepare.ingest import IngestConfig, ingest
from fer_core.prepare.manifest import KEPT
from fer_core.prepare.quality import QualityConfig, sharpness, sharpness_table, sharpness_warnings
from fer_core.prepare.split import SplitConfig, encode_labels, split
from tests.conftest import extract_fer2013_subset

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_blur_lowers_sharpness_by_orders_of_magnitude(astronaut):
    face = cv2.resize(astronaut[30:230, 130:330], (48, 48), interpolation=cv2.INTER_AREA)
    sharp = sharpness(face)
    slight = sharpness(cv2.GaussianBlur(face, (0, 0), 0.7))
    heavy = sharpness(cv2.GaussianBlur(face, (0, 0), 3.3))  # FER2013's train/ in ../shared
    assert sharp > slight > heavy
    assert sharp / heavy > 50
    assert sharp / slight < 10  # a slight defocus stays under the warning's ratio
    # grey and RGB of the same image agree: FER2013 is grey, most datasets are not
    assert sharpness(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)) == pytest.approx(sharp)


def test_table_and_warning_name_the_splits():
    rng = np.random.default_rng(0)
    rows = [{"status": KEPT, "split": s, "sharpness": v}
            for s, centre in (("train", 6.0), ("val", 6.5), ("test", 2000.0))
            for v in rng.normal(centre, centre / 10, 30)]
    rows.append({"status": "rejected", "split": "", "sharpness": np.nan})
    table = sharpness_table(pd.DataFrame(rows))
    assert table["split"].tolist() == ["test", "train", "val"]
    assert table["images"].tolist() == [30, 30, 30]
    (line,) = sharpness_warnings(table)
    assert "train images are much blurrier than the test images" in line
    assert sharpness_warnings(table, QualityConfig(max_sharpness_ratio=1000)) == []
    # a split too small for its median to mean anything is left out
    assert sharpness_warnings(table, QualityConfig(min_images=31)) == []


def _prepared(root) -> pd.DataFrame:
    encoded, _ = encode_labels(ingest(IngestConfig(root=str(root))))
    return split(encoded, SplitConfig())


def test_real_faces_blurred_for_training_are_flagged(tmp_path):
    # Sharp FER2013 test faces split in two, once as they are and once with the train
    # half blurred as ../shared's train/ is (sigma 3.3 px at 48x48).
    faces = extract_fer2013_subset(tmp_path / "fer2013", per_class={f"test/{c}": 30
                                                                     for c in CLASSES})
    clean, blurred = tmp_path / "clean", tmp_path / "blurred"
    for src in sorted((faces / "test").glob("*/*.jpg")):
        for root, sigma in ((clean, 0.0), (blurred, 3.3)):
            img = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
            subset = "train" if int(src.stem.split("_")[-1]) % 3 else "test"
            dest = root / subset / src.parent.name / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if subset == "train" and sigma:
                cv2.imwrite(str(dest), cv2.GaussianBlur(img, (0, 0), sigma))
            else:
                shutil.copy(src, dest)

    assert sharpness_warnings(sharpness_table(_prepared(clean))) == []
    table = sharpness_table(_prepared(blurred))
    medians = dict(zip(table["split"], table["sharpness_median"], strict=True))
    assert medians["test"] / medians["train"] > 20
    warnings = sharpness_warnings(table)
    assert len(warnings) == 1 and "than the test images" in warnings[0]


def test_the_quality_stage_warns_from_the_manifest_alone():
    from fer_core.prepare.quality import split_warnings

    rows = [{"status": KEPT, "split": s, "sharpness": v}
            for s, v in (("train", 5.0), ("test", 5000.0)) for _ in range(30)]
    (line,) = split_warnings(pd.DataFrame(rows))
    assert "train images are much blurrier than the test images" in line and "1000x" in line
    assert split_warnings(pd.DataFrame(rows), QualityConfig(max_sharpness_ratio=2000)) == []
