"""The saved sets as data: one-hot labels and sources per split, which stored images val and
test copy, meta.json, and named subsets as rows of their parent split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_core.prepare.manifest import new_rows
from fer_core.prepare.sets import SubsetList, sets_layout
from fer_core.prepare.subsets import SubsetSpec

CLASSES = ("a", "b", "c")


def index_and_plan() -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.DataFrame({
        "path": ["t0", "v0", "s0", "t1", "s1", "v1", "s2"],
        "split": ["train", "val", "test", "train", "test", "val", "test"],
        "label": [0, 2, 1, 1, 0, 0, 2]})
    plan = pd.DataFrame({"source": [1, 0, 0], "path": ["t1", "t0", "t0"],
                         "noise": ["none", "none", "gaussian"], "label": [1, 0, 0],
                         "class": ["b", "a", "a"], "seed": [7, 8, 9]})
    return index, plan


def test_each_split_gets_one_hot_labels_sources_and_its_stored_rows():
    index, plan = index_and_plan()
    before = index.copy(), plan.copy()
    saved = sets_layout(index, plan, CLASSES, (96, 96, 3))
    pd.testing.assert_frame_equal(index, before[0])
    pd.testing.assert_frame_equal(plan, before[1])
    assert saved.counts == {"train": 3, "val": 2, "test": 3} and saved.subsets == {}
    assert {k: v.tolist() for k, v in saved.images.items()} == {
        "val/images.npy": [1, 5], "test/images.npy": [2, 4, 6]}
    f = saved.files
    assert f["train/labels.npy"].tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 0]]
    assert f["val/labels.npy"].tolist() == [[0, 0, 1], [1, 0, 0]]
    assert f["test/labels.npy"].tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert f["train/sources.csv"].to_dict("list") == {"source": ["t1", "t0", "t0"],
                                                      "noise": ["none", "none", "gaussian"]}
    assert f["test/sources.csv"].to_dict("list") == {"source": ["s0", "s1", "s2"],
                                                     "noise": ["none"] * 3}
    assert f["meta.json"] == {"classes": ["a", "b", "c"], "image_size": [96, 96],
                              "channels": "RGB", "scale": 255,
                              "splits": {"train": 3, "val": 2, "test": 3}}
    assert "train/images.npy" not in saved.images, "augment's array is published, not copied"


def test_no_test_images_means_no_test_set():
    index, plan = index_and_plan()
    saved = sets_layout(index[index["split"] != "test"].reset_index(drop=True), plan,
                        CLASSES, (48, 48, 3))
    assert saved.counts == {"train": 3, "val": 2}
    assert not any(k.startswith("test/") for k in (*saved.files, *saved.images))
    assert saved.files["meta.json"]["image_size"] == [48, 48]


def test_a_subset_is_rows_of_its_parent_split_and_says_what_it_missed():
    index, plan = index_and_plan()
    manifest = new_rows([{"path": p, "split": s, "status": "kept"}
                         for p, s in zip(index["path"], index["split"], strict=True)]
                        + [{"path": "gone.jpg", "status": "rejected", "reason": "empty file"}])
    spec = SubsetSpec(name="private", list_path="/data/lists/private.txt")
    text = "# private test\ns2\n\ns0\ns2\nv0\ngone.jpg\nnowhere.jpg\n"
    saved = sets_layout(index, plan, CLASSES, (96, 96, 3),
                        [SubsetList(spec=spec, text=text, sha256="abc")], manifest)
    assert saved.subsets == {"private": 2}
    assert saved.files["private/index.npy"].tolist() == [0, 2]  # s0 and s2 in test order
    assert saved.files["private/sources.csv"].to_dict("list") == {"source": ["s0", "s2"],
                                                                 "row": [0, 2]}
    assert saved.files["meta.json"]["subsets"] == {"private": {
        "parent": "test", "index": "private/index.npy", "list": "private.txt",
        "list_sha256": "abc", "entries": 6, "n": 2, "repeated": 1,
        "unmatched": {"in the val split, not test": 1, "not in the data": 1,
                      "rejected (empty file)": 1},
        "unmatched_examples": {"in the val split, not test": "v0",
                               "not in the data": "nowhere.jpg",
                               "rejected (empty file)": "gone.jpg"}}}


def test_a_list_that_matches_nothing_is_an_error():
    index, plan = index_and_plan()
    spec = SubsetSpec(name="private", list_path="private.txt")
    with pytest.raises(ValueError, match="none of the 1 entries"):
        sets_layout(index, plan, CLASSES, (96, 96, 3),
                    [SubsetList(spec=spec, text="elsewhere/x.jpg\n", sha256="0")])


def test_labels_are_int_one_hot_of_the_classes():
    index, plan = index_and_plan()
    labels = sets_layout(index, plan, CLASSES, (96, 96, 3)).files["val/labels.npy"]
    assert labels.shape == (2, 3) and np.issubdtype(labels.dtype, np.number)
