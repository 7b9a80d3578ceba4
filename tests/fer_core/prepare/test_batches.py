"""The alignment and resize batches as plain data: the plan, the merge of every batch's
detections, each resize batch's rows and key lines, and where each resized image lies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fer_core.prepare import batches
from fer_core.prepare.align import DETECTION_COLUMNS, AlignConfig
from fer_core.prepare.manifest import DUPLICATE, KEPT, REJECTED, new_rows


def manifest(n: int = 40) -> pd.DataFrame:
    """n kept images in two sizes, and one duplicate, one rejected, one unsplit row."""
    rows = [{"path": f"{i:03d}.png", "class": "a", "split": "train" if i % 3 else "val",
             "subset": "train", "sha1": f"{i:040x}", "width": 48 if i % 2 else 64,
             "height": 48 if i % 2 else 64, "status": KEPT} for i in range(n)]
    rows += [{"path": "dup.png", "status": DUPLICATE, "split": "train", "sha1": "d" * 40},
             {"path": "bad.png", "status": REJECTED, "split": "", "reason": "empty file"},
             {"path": "nosplit.png", "status": KEPT, "split": "", "sha1": "e" * 40,
              "width": 48, "height": 48}]
    return new_rows(rows)


def test_align_plan_is_every_stored_image_once_by_path_and_sha1():
    m = manifest()
    plan = batches.align_plan(m, AlignConfig(batch_size=4))
    assert len(plan) > 2 and all(set(b) == {"paths", "sha1s"} for b in plan)
    paths = [p for b in plan for p in b["paths"]]
    assert sorted(paths) == [f"{i:03d}.png" for i in range(40)], "kept images in a split, once"
    sha1 = dict(zip(m["path"], m["sha1"], strict=True))
    assert all(s == sha1[p] for b in plan for p, s in zip(b["paths"], b["sha1s"], strict=True))
    assert batches.align_plan(m, AlignConfig(enabled=False)) == []


def _detections(paths, angle: float) -> pd.DataFrame:
    rows = [{"aligned": True, "left_eye_x": 10.0, "left_eye_y": 20.0, "right_eye_x": 30.0,
             "right_eye_y": 20.0 + i, "nose_x": 20.0, "nose_y": 30.0, "face_prob": 0.99,
             "angle": angle, "align_pass": "mtcnn", "align_note": ""} for i in range(len(paths))]
    return pd.DataFrame(rows, columns=list(DETECTION_COLUMNS)).assign(path=list(paths))


def test_merge_batches_writes_every_batch_and_marks_the_failed_ones():
    m = manifest(6)
    before = m.copy()
    merged = batches.merge_batches(m, [_detections(["000.png", "001.png"], 5.0),
                                       _detections(["003.png"], -2.0)],
                                   [{"paths": ["004.png", "005.png"], "error": "batch 2 failed"}])
    pd.testing.assert_frame_equal(m, before, obj="the input manifest is not changed")
    row = merged.set_index("path")
    assert row.loc["001.png", "aligned"] and row.loc["001.png", "right_eye_y"] == 21.0
    assert row.loc["003.png", "angle"] == -2.0 and row.loc["000.png", "angle"] == 5.0
    assert not row.loc["002.png", "aligned"] and math.isnan(row.loc["002.png", "angle"])
    assert row["align_error"].to_dict() == {**{p: "" for p in row.index},
                                            "004.png": "batch 2 failed",
                                            "005.png": "batch 2 failed"}
    assert batches.merge_batches(m, [], []).equals(m)


def test_merge_batches_refuses_a_path_not_in_the_manifest():
    with pytest.raises(KeyError, match="not in the manifest"):
        batches.merge_batches(manifest(3), [_detections(["zzz.png"], 0.0)])


def test_store_rows_are_the_kept_images_in_a_split_in_manifest_order():
    m = manifest(5)
    assert batches.store_rows(m)["path"].tolist() == [f"{i:03d}.png" for i in range(5)]
    assert batches.store_rows(m).index.tolist() == list(range(5))


def test_resize_batches_follow_the_alignment_batches_with_the_resize_inputs():
    m = manifest()
    parts = batches.resize_batches(m, 4)
    plan = batches.align_plan(m, AlignConfig(batch_size=4))
    assert [b["path"].tolist() for b in parts] == [b["paths"] for b in plan]
    assert all(list(b.columns) == list(batches.RESIZE_INPUTS) for b in parts)
    one = parts[0].iloc[0]
    assert one["sha1"] == m.set_index("path").loc[one["path"], "sha1"]


def test_batch_key_lines_are_the_reprs_of_each_images_inputs():
    rows = pd.DataFrame({"path": ["a.png", "b.png"], "sha1": ["01", "02"],
                         "aligned": [True, False], "left_eye_x": [1.5, float("nan")]})
    assert batches.batch_key_lines(rows) == ["'a.png'\t'01'\tTrue\t1.5",
                                             "'b.png'\t'02'\tFalse\tnan"]
    moved = rows.assign(left_eye_x=[1.25, float("nan")])
    assert batches.batch_key_lines(moved)[0] != batches.batch_key_lines(rows)[0]
    assert batches.batch_key_lines(moved)[1] == batches.batch_key_lines(rows)[1]


def test_resize_index_says_which_folder_and_row_holds_each_image():
    m = new_rows([{"path": p, "class": c, "label": lab, "split": s, "status": KEPT,
                   "sha1": h}
                  for p, c, lab, s, h in (("a", "x", 0, "train", "1"), ("b", "y", 1, "val", "2"),
                                          ("c", "x", 0, "test", "3"),
                                          ("d", "y", 1, "train", "4"))])
    parts = [pd.DataFrame({"path": ["d", "a"], "sha1": ["4", "1"]}),
             pd.DataFrame({"path": ["c", "b"], "sha1": ["3", "2"]})]
    folders = ["../batch/one", "../batch/two"]
    index = batches.resize_index(m, parts, folders, "size 48")
    assert list(index.columns) == list(batches.INDEX_COLUMNS)
    content = index.pop("content")
    # What each image is made of: its own inputs and the recipe, not its batch's others.
    edited = [parts[0].assign(sha1=["4", "changed"]), parts[1]]
    assert (batches.resize_index(m, edited, folders, "size 48")["content"] != content).tolist() \
        == [True, False, False, False]
    assert not (batches.resize_index(m, parts, folders, "size 96")["content"] == content).any()
    assert content.is_unique
    assert index.to_dict("list") == {
        "path": ["a", "b", "c", "d"], "split": ["train", "val", "test", "train"],
        "label": [0, 1, 0, 1], "class": ["x", "y", "x", "y"], "sha1": ["1", "2", "3", "4"],
        "batch": ["../batch/one", "../batch/two", "../batch/two", "../batch/one"],
        "row": [1, 1, 0, 0]}
    assert index["row"].dtype == np.int64
