"""Named test subsets: list files, matching against the saved test rows, the config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_core.prepare.config import build_config, evaluation_config
from fer_core.prepare.manifest import new_rows
from fer_core.prepare.subsets import all_to_test, match, parse_list, parse_option, warnings


def test_list_lines_are_paths_relative_to_the_data_folder():
    text = "# PrivateTest\r\ntest/angry/a.jpg\n\n  ./test/happy/b.jpg  \ntest\\sad\\c.jpg\n"
    assert parse_list(text) == ("test/angry/a.jpg", "test/happy/b.jpg", "test/sad/c.jpg")


def test_every_unmatched_entry_is_accounted_for_with_its_reason():
    manifest = new_rows([
        {"path": "test/a/1.jpg", "subset": "test", "class": "a", "split": "test"},
        {"path": "test/a/2.jpg", "subset": "test", "class": "a", "split": "test"},
        {"path": "test/a/3.jpg", "subset": "test", "class": "a", "status": "duplicate",
         "duplicate_of": "test/a/1.jpg"},
        {"path": "test/b/4.jpg", "subset": "test", "class": "b", "status": "rejected",
         "reason": "too small: 8x8 < 16x16"},
        {"path": "train/a/5.jpg", "subset": "train", "class": "a", "split": "val"},
        {"path": "test/b/6.jpg", "subset": "test", "class": "b", "split": "test"},
    ])
    parent = ["test/a/1.jpg", "test/a/2.jpg", "test/b/6.jpg"]  # the saved test rows, in order
    entries = ["test/b/6.jpg", "test/a/1.jpg", "test/a/3.jpg", "test/b/4.jpg",
               "train/a/5.jpg", "test/x/7.jpg", "test/a/1.jpg"]
    m = match(entries, parent, manifest)
    assert m.rows.tolist() == [0, 2] and m.rows.dtype == np.int64
    assert m.entries == 7 and m.repeated == 1
    assert m.unmatched == {"duplicate": 1, "rejected (too small)": 1, "not in the data": 1,
                           "in the val split, not test": 1}
    assert sum(m.unmatched.values()) + len(m.rows) + m.repeated == len(entries)


def test_the_warning_names_how_many_listed_images_are_left_out():
    meta = {"subsets": {"test_private": {
        "parent": "test", "list": "test_private.txt", "entries": 10, "repeated": 1, "n": 6,
        "unmatched": {"duplicate": 1, "not in the data": 2},
        "unmatched_examples": {"duplicate": "test/a/3.jpg", "not in the data": "x.jpg"}}}}
    [line] = warnings(meta)
    assert "3 of the 9 images listed in test_private.txt" in line and "(6 kept)" in line
    assert warnings({"subsets": {"s": {**meta["subsets"]["test_private"],
                                       "unmatched": {}, "n": 9}}}) == []


def test_subset_option_and_config_file_resolve_against_the_data_folder(tmp_path):
    data = tmp_path / "copy_of_fer2013"
    (data / "test").mkdir(parents=True)
    (data / "test_private.txt").write_text("test/angry/PrivateTest_1.jpg\n")
    cfg_file = tmp_path / "prepare.yaml"
    cfg_file.write_text("subsets:\n  test_private: test_private.txt\nresize:\n  size: 48\n")
    cfg = build_config(str(data), file=cfg_file)
    [spec] = cfg.subsets
    assert (spec.name, spec.parent) == ("test_private", "test")
    assert spec.list_path == str(data / "test_private.txt")
    assert cfg.resize.size == 48 and not cfg.all_test
    # an option adds to (or replaces) the file's subsets
    other = tmp_path / "elsewhere.txt"
    other.write_text("x\n")
    both = build_config(str(data), file=cfg_file, subsets={"mine": str(other)})
    assert [s.name for s in both.subsets] == ["test_private", "mine"]
    with pytest.raises(FileNotFoundError, match="subset gone: list file .*missing.txt"):
        build_config(str(data), subsets={"gone": "missing.txt"})
    for bad in ("test", "val", "a b", ""):
        with pytest.raises(ValueError):
            build_config(str(data), subsets={bad: "test_private.txt"})
    assert parse_option("test_private=fer2013/test_private.txt") == \
        ("test_private", "fer2013/test_private.txt")
    with pytest.raises(ValueError, match="NAME=LIST_FILE"):
        parse_option("test_private")


def test_another_dataset_is_prepared_whole_as_the_runs_faces(tmp_path):
    run = build_config(str(tmp_path), class_map="fer2013", align=False,
                       overrides={"resize": {"size": 64}, "split": {"val_fraction": 0.3}})
    cfg = evaluation_config(str(tmp_path / "other"), run.to_dict())
    assert cfg.all_test and cfg.augment.plan == "none" and cfg.subsets == ()
    assert cfg.align == run.align and cfg.resize == run.resize and cfg.dedup == run.dedup
    assert cfg.ingest.root == str(tmp_path / "other") and cfg.ingest.classes is None
    assert cfg.ingest.class_map == run.ingest.class_map  # the run's, unless given
    assert evaluation_config(str(tmp_path), run.to_dict(), class_map="a=B").ingest.class_map \
        == {"a": "B"}
    manifest = new_rows([{"path": "train/a/1.jpg", "subset": "train", "class": "a"},
                         {"path": "test/a/2.jpg", "subset": "test", "class": "a"}])
    before = manifest.copy()
    assert all_to_test(manifest)["subset"].tolist() == ["test", "test"]
    pd.testing.assert_frame_equal(manifest, before)  # the input is not changed
