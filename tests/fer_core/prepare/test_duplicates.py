"""Section 4's SHA-1 duplicate removal, including label conflicts and train/test leakage."""

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.prepare.duplicates import (
    DedupConfig,
    conflict_table,
    duplicate_report,
    find_duplicates,
    label_conflicts,
)
from fer_core.prepare.ingest import IngestConfig, ingest
from fer_core.prepare.manifest import DUPLICATE, KEPT, REJECTED, new_rows


def rows(*specs):
    return new_rows([{"path": p, "class": c, "sha1": h, "subset": s} for p, c, h, s in specs])


def test_one_copy_per_group_is_kept_in_path_order():
    m = rows(("b/2.png", "b", "x", "train"), ("b/1.png", "b", "x", "train"),
             ("b/3.png", "b", "y", "train"))
    out = find_duplicates(m, DedupConfig()).set_index("path")
    assert out.loc["b/1.png", "status"] == KEPT
    assert out.loc["b/2.png", "status"] == DUPLICATE
    assert out.loc["b/2.png", "duplicate_of"] == "b/1.png"
    assert (m["status"] == KEPT).all(), "the input manifest must not change"
    assert duplicate_report(out).to_dict("records") == [{"class": "b", "duplicates": 1}]


def test_label_conflicts_drop_every_copy_by_default():
    m = rows(("a/1.png", "a", "x", "train"), ("b/1.png", "b", "x", "train"))
    out = find_duplicates(m, DedupConfig())
    assert (out["status"] == REJECTED).all()
    assert len(label_conflicts(out)) == 2
    assert "a/1.png" in out["reason"].iloc[0] and "b/1.png" in out["reason"].iloc[0]
    kept = find_duplicates(m, DedupConfig(on_conflict="keep_first")).set_index("path")
    assert kept.loc["a/1.png", "status"] == KEPT and kept.loc["b/1.png", "status"] == DUPLICATE


def test_test_copy_is_kept_so_training_never_sees_a_test_image():
    m = rows(("test/a/9.png", "a", "x", "test"), ("train/a/1.png", "a", "x", "train"))
    out = find_duplicates(m, DedupConfig()).set_index("path")
    assert out.loc["test/a/9.png", "status"] == KEPT
    assert out.loc["train/a/1.png", "duplicate_of"] == "test/a/9.png"


def test_rejected_files_take_no_part():
    m = new_rows([{"path": "a/1.png", "class": "a", "sha1": "", "status": REJECTED},
                  {"path": "a/2.png", "class": "a", "sha1": "", "status": REJECTED}])
    assert find_duplicates(m, DedupConfig())["status"].tolist() == [REJECTED, REJECTED]


def test_keep_first_marks_only_the_copies_of_another_label_as_conflicts():
    m = rows(("a/1.png", "a", "x", "train"), ("a/2.png", "a", "x", "train"),
             ("b/1.png", "b", "x", "train"))
    out = find_duplicates(m, DedupConfig(on_conflict="keep_first")).set_index("path")
    assert out.loc["a/2.png", "status"] == DUPLICATE and out.loc["a/2.png", "reason"] == ""
    assert out.loc["b/1.png", "reason"].startswith("label conflict")
    assert out.loc["b/1.png", "duplicate_of"] == "a/1.png"


# --- Label conflicts across train and test, on images written to a train/test layout ---

def write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".png", img)[1].tobytes())


@pytest.fixture
def conflicts_layout(tmp_path) -> Path:
    """A train/test tree whose byte-identical files carry the kinds of conflict FER2013 has."""
    rng = np.random.default_rng(0)
    face = {k: rng.integers(0, 256, (24, 24), dtype=np.uint8)
            for k in ("spans", "spans3", "test_only", "train_only", "test_split", "plain", "x")}
    layout = {
        # test says anger, a training copy fear: the test copy is kept
        "spans": ["test/anger/t1.png", "train/fear/f1.png"],
        # a test image with training copies of its own label and of another
        "spans3": ["test/anger/t2.png", "train/anger/a1.png", "train/sad/s1.png"],
        # identical test images: the official split keeps both, each with its label
        "test_only": ["test/anger/t3.png", "test/fear/t4.png"],
        # a conflict among training copies alone follows on_conflict
        "train_only": ["train/anger/a2.png", "train/fear/f2.png"],
        # test copies that disagree, and a training copy: the training copy goes
        "test_split": ["test/anger/t5.png", "test/sad/t6.png", "train/anger/a3.png"],
        "plain": ["test/sad/t7.png", "train/sad/s2.png"],  # a plain leak, no conflict
        "x": ["train/sad/s3.png"],
    }
    for key, paths in layout.items():
        for p in paths:
            write_png(tmp_path / p, face[key])
    return tmp_path


def dedup(root: Path, cfg: DedupConfig | None = None) -> pd.DataFrame:
    m = ingest(IngestConfig(root=str(root), workers=1))
    return find_duplicates(m, cfg or DedupConfig()).set_index("path")


def test_a_test_image_is_kept_over_a_conflicting_training_copy(conflicts_layout):
    out = dedup(conflicts_layout)
    for test_copy, train_copy in (("test/anger/t1.png", "train/fear/f1.png"),
                                  ("test/anger/t2.png", "train/sad/s1.png"),
                                  ("test/anger/t2.png", "train/anger/a1.png"),
                                  ("test/sad/t7.png", "train/sad/s2.png")):
        assert out.loc[test_copy, "status"] == KEPT, test_copy
        assert out.loc[train_copy, "status"] == DUPLICATE, "never trained on"
        assert out.loc[train_copy, "duplicate_of"] == test_copy, "names the test file"
    assert out.loc["train/fear/f1.png", "reason"].startswith("label conflict")
    assert "test/anger/t1.png" in out.loc["train/fear/f1.png", "reason"]
    assert out.loc["train/anger/a1.png", "reason"] == "", "same label: a plain duplicate"
    # every test copy stays, with its own label, whatever the other copies say
    for p in ("test/anger/t3.png", "test/fear/t4.png", "test/anger/t5.png", "test/sad/t6.png"):
        assert out.loc[p, "status"] == KEPT, p
    assert out.loc["train/anger/a3.png", "duplicate_of"] == "test/anger/t5.png"
    # training copies alone: on_conflict's rule, every copy rejected by default
    for p in ("train/anger/a2.png", "train/fear/f2.png"):
        assert out.loc[p, "status"] == REJECTED and "label conflict" in out.loc[p, "reason"], p
    assert out.loc["train/sad/s3.png", "status"] == KEPT
    first = dedup(conflicts_layout, DedupConfig(on_conflict="keep_first"))
    assert first.loc["train/fear/f1.png", "duplicate_of"] == "test/anger/t1.png"
    assert first.loc["train/fear/f2.png", "duplicate_of"] == "train/anger/a2.png"
    assert (first.loc[first.index.str.startswith("test/"), "status"] == KEPT).all()


def test_conflict_table_pairs_each_removed_copy_with_the_file_it_conflicts_with(
        conflicts_layout):
    table = conflict_table(dedup(conflicts_layout).reset_index())
    assert list(table.columns) == ["path", "subset", "class", "conflicting_path",
                                   "conflicting_class", "action"]
    got = {tuple(r) for r in table[["path", "conflicting_path", "action"]].to_numpy()}
    assert got == {
        ("train/fear/f1.png", "test/anger/t1.png", DUPLICATE),
        ("test/anger/t1.png", "train/fear/f1.png", KEPT),
        ("train/sad/s1.png", "test/anger/t2.png", DUPLICATE),
        ("test/anger/t2.png", "train/sad/s1.png", KEPT),
        ("train/anger/a2.png", "train/fear/f2.png", REJECTED),
        ("train/fear/f2.png", "train/anger/a2.png", REJECTED),
    }
    row = table[table["path"] == "train/fear/f1.png"].iloc[0]
    assert (row["subset"], row["class"], row["conflicting_class"]) == ("train", "fear", "anger")
    no_conflict = new_rows([{"path": "a/1.png", "class": "a", "sha1": "x"}])
    assert conflict_table(find_duplicates(no_conflict, DedupConfig())).empty


# --- The same rule on the real FER2013, checked against hashlib ---

@pytest.mark.fer2013
def test_fer2013_every_test_image_is_kept(fer2013_full):
    files = sorted(fer2013_full.glob("*/*/*.jpg"))
    sha1 = {f.relative_to(fer2013_full).as_posix(): hashlib.sha1(f.read_bytes()).hexdigest()
            for f in files}
    test_hashes = {h for p, h in sha1.items() if p.startswith("test/")}

    out = dedup(fer2013_full)
    assert set(out.index[out["subset"] == "test"]) == {p for p in sha1 if p.startswith("test/")}
    status = out["status"]
    # the whole official test split, as published (7,178 in the README's table)
    assert (status[out["subset"] == "test"] == KEPT).all(), "a held-out image was dropped"
    # and no training image shares its bytes with a test image
    train_kept = out.index[(status == KEPT) & (out["subset"] == "train")]
    assert not {sha1[p] for p in train_kept} & test_hashes
    # the training copies that disagree with a kept test copy say which one
    dups = out[(status == DUPLICATE) & (out["subset"] == "train")
               & out["reason"].str.startswith("label conflict")]
    assert len(dups) > 0 and dups["duplicate_of"].str.startswith("test/").all()
    assert all(sha1[p] == sha1[d] for p, d in dups["duplicate_of"].items())


def test_val_and_test_copies_are_never_dropped():
    # FER+'s usages: identical bytes in Training, PublicTest (val) and PrivateTest (test).
    m = rows(("train/a.jpg", "a", "x", "train"), ("val/b.jpg", "b", "x", "val"),
             ("test/c.jpg", "a", "x", "test"), ("val/d.jpg", "a", "y", "val"),
             ("val/e.jpg", "a", "y", "val"))
    out = find_duplicates(m, DedupConfig()).set_index("path")
    assert out.loc[["val/b.jpg", "test/c.jpg", "val/d.jpg", "val/e.jpg"], "status"].eq(KEPT).all()
    assert out.loc["train/a.jpg", "status"] == DUPLICATE
    assert out.loc["train/a.jpg", "duplicate_of"] == "test/c.jpg"
