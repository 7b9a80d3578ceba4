"""(ours) The audit end to end: `fer prepare` finds a planted near-copy of a test face and
drops its training copy, `fer audit` lists likely label errors, and the review list a
person edits goes back into `fer prepare --config`."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_cli.main import main
from fer_core import store
from tests.flows.test_train_flow import latest_artifact

PLANTED = "train/sad/planted_copy.jpg"


@pytest.fixture
def data_with_a_planted_copy(fer2013_small, tmp_path) -> tuple[Path, str]:
    """The FER2013 subset, plus a test face shifted 2 px, re-encoded at JPEG quality 60 and
    filed as a training image of another class: a leak that SHA-1 cannot see."""
    data = tmp_path / "fer2013"
    shutil.copytree(fer2013_small, data)
    source = sorted((data / "test" / "happy").glob("*.jpg"))[0]
    grey = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    moved = cv2.warpAffine(grey, np.float32([[1, 0, 2], [0, 1, 0]]), grey.shape[::-1],
                           borderMode=cv2.BORDER_REPLICATE)
    cv2.imwrite(str(data / PLANTED), moved, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return data, source.relative_to(data).as_posix()


def write_config(path: Path, **sections) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"resize": {"size": 32},
                                    "near_duplicates": {"policy": "drop_train"}, **sections}))
    return path


@pytest.mark.fer2013
@pytest.mark.slow
def test_near_copy_dropped_then_audit_and_review_round_trip(prefect_backend,
                                                            data_with_a_planted_copy, tmp_path):
    data, source = data_with_a_planted_copy
    run = tmp_path / "run"
    config = write_config(tmp_path / "prepare.yaml")
    assert main(["prepare", str(data), "--out", str(run), "--no-align",
                 "--config", str(config)]) == 0
    pairs = pd.read_csv(run / "reports" / "near_duplicates.csv")
    planted = pairs[(pairs["path_a"] == source) & (pairs["path_b"] == PLANTED)]
    assert len(planted) == 1, pairs
    assert planted[["split_a", "class_a", "class_b"]].values.tolist() == [["test", "happy", "sad"]]
    assert planted["split_b"].iloc[0] == "train (duplicate)", "dropped before the split"
    m = store.read_frame(run / "manifest.parquet").set_index("path")
    assert m.loc[PLANTED, "status"] == "duplicate" and m.loc[PLANTED, "duplicate_of"] == source
    assert m.loc[PLANTED, "reason"].startswith("near-duplicate: ")
    assert "labelled 'sad' here, 'happy' there" in m.loc[PLANTED, "reason"]
    test_files = len(list((data / "test").rglob("*.jpg")))
    assert ((m["subset"] == "test") & (m["status"] == "kept")).sum() == test_files, \
        "no test image is ever dropped"
    by_split = pd.read_csv(run / "reports" / "near_duplicates_by_split.csv")
    assert by_split["pairs"].sum() == len(pairs)
    assert (run / "reports" / "near_duplicates.png").stat().st_size > 1000
    assert "![near_duplicates](data:image/" in latest_artifact("figure-near-duplicates").data

    assert main(["audit", str(run), "--model", "hog_logreg", "--folds", "3",
                 "--review", "drop"]) == 0
    issues = pd.read_csv(run / "reports" / "label_issues.csv")
    assert list(issues.columns) == ["path", "split", "given_label", "suggested_label",
                                    "self_confidence", "rank"]
    audited = m[(m["status"] == "kept") & m["split"].isin(["train", "val"])]
    assert len(issues) > 0 and set(issues["path"]) <= set(audited.index)
    assert (issues["given_label"] == audited.loc[issues["path"], "class"].to_numpy()).all()
    assert issues["self_confidence"].is_monotonic_increasing, "likeliest first"
    assert (run / "reports" / "label_issues.png").stat().st_size > 1000
    assert latest_artifact("label-issues").data
    review = pd.read_csv(run / "reports" / "label_review.csv", keep_default_na=False)
    assert (review["action"] == "drop").all() and review["path"].tolist() == issues["path"].tolist()

    # A person keeps all but two: one dropped, one relabelled.
    dropped, relabelled = review["path"].iloc[0], review["path"].iloc[1]
    old_class = m.loc[relabelled, "class"]
    new_class = next(c for c in ("angry", "happy") if c != old_class)
    review["action"] = "keep"
    review.loc[1, ["action", "new_class"]] = ["relabel", new_class]
    review.loc[0, "action"] = "drop"
    reviewed = tmp_path / "reviewed.csv"
    review.to_csv(reviewed, index=False)
    again = tmp_path / "again"
    config = write_config(tmp_path / "reviewed.yaml", review={"file": str(reviewed)})
    assert main(["prepare", str(data), "--out", str(again), "--no-align",
                 "--config", str(config)]) == 0
    m2 = store.read_frame(again / "manifest.parquet").set_index("path")
    assert m2.loc[dropped, "status"] == "rejected"
    assert m2.loc[dropped, "reason"].startswith("dropped on review")
    assert m2.loc[relabelled, "class"] == new_class and m2.loc[relabelled, "status"] == "kept"
    assert m2.loc[relabelled, "reason"] == f"relabelled on review: was '{old_class}' (reviewed.csv)"
    unchanged = m2.index.difference([dropped, relabelled])
    assert (m2.loc[unchanged, "class"] == m.loc[unchanged, "class"]).all()
