"""(ours) Near-duplicate search: multi-index hashing against brute force, made near-copies of
real FER2013 faces found, distinct faces left alone, and the drop_train policy."""

from __future__ import annotations

import tarfile

import cv2
import numpy as np
import pytest

from fer_core.datasets.near_copies import EDITS, distinct, near_copy
from fer_core.prepare.hamming import within
from fer_core.prepare.manifest import DUPLICATE, KEPT, new_rows
from fer_core.prepare.near_duplicates import (
    NearDupConfig,
    class_counts,
    find_pairs,
    mark_near_duplicates,
    pair_table,
    split_counts,
)
from tests.conftest import FER2013_TAR, require_fer2013


def test_multi_index_search_finds_exactly_what_brute_force_finds():
    rng = np.random.default_rng(0)
    index = rng.integers(0, 2**63, 3000, dtype=np.uint64)
    # Plant near hashes: queries made by flipping 0-12 random bits of index hashes.
    picks = rng.integers(0, len(index), 400)
    queries = index[picks].copy()
    for i in range(len(queries)):
        for bit in rng.choice(64, int(rng.integers(0, 13)), replace=False):
            queries[i] ^= np.uint64(1) << np.uint64(bit)
    queries = np.concatenate([queries, rng.integers(0, 2**63, 400, dtype=np.uint64)])
    for k, radius in ((0, 0), (3, 0), (8, 0), (8, 1), (10, 1), (9, 2)):
        found = within(index, queries, k, radius, budget=5000)  # small budget: many chunks
        d = np.bitwise_count(queries[:, None] ^ index[None, :])
        q, j = np.nonzero(d <= k)
        expected = sorted(zip(q.tolist(), j.tolist(), strict=True))
        assert sorted(map(tuple, found[:, :2].tolist())) == expected
        assert (found[:, 2] == d[found[:, 0], found[:, 1]]).all()
        assert len(found) >= (k > 0) * 100, "the planted pairs are there to find"


@pytest.fixture(scope="module")
def fer_test_faces() -> np.ndarray:
    """1200 real FER2013 test faces (48x48 grey), archive order."""
    require_fer2013()
    faces = []
    with tarfile.open(FER2013_TAR) as tar:
        for member in tar:
            if member.isfile() and "/test/" in member.name and len(faces) < 1200:
                data = np.frombuffer(tar.extractfile(member).read(), np.uint8)
                faces.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    return np.stack(faces)


def test_made_near_copies_are_found_and_distinct_faces_are_not_paired(fer_test_faces):
    """Recall >= 95% of made pairs and <= 1% of distinct faces falsely paired (the issue's
    targets), each source's copy held out as a test image, the rest as training images."""
    faces = fer_test_faces[distinct(fer_test_faces)]  # the oracle: no pixel-level twins
    rng = np.random.default_rng(0)
    order = rng.permutation(len(faces))
    sources, others = faces[order[:200]], faces[order[200:]]
    copies = np.stack([near_copy(f, EDITS[i % len(EDITS)], rng) for i, f in enumerate(sources)])
    # training: sources and half the other faces; held out: the copies and the other half
    half = len(others) // 2
    images = [*sources, *others[:half], *copies, *others[half:]]
    subsets = np.array(["train"] * (len(sources) + half) + ["test"] * (len(copies)
                                                                      + len(others) - half))
    cfg = NearDupConfig()
    pairs = find_pairs([cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in images], subsets, cfg)
    copy_at = len(sources) + half
    made = {(i, copy_at + i) for i in range(len(sources))}
    found = set(zip(pairs["a"], pairs["b"], strict=True))
    recall = len(made & found) / len(made)
    per_edit = {e: np.mean([(i, copy_at + i) in found for i in range(len(sources))
                            if i % len(EDITS) == EDITS.index(e)]) for e in EDITS}
    others_at = set(range(len(sources), copy_at)) | set(range(copy_at + len(copies), len(images)))
    false = found - made
    falsely_paired = {i for p in false for i in p} & others_at
    assert recall >= 0.95, (recall, per_edit)
    assert len(falsely_paired) <= 0.01 * len(others_at), (len(falsely_paired), sorted(false))


def manifest_of(paths_classes_subsets):
    return new_rows([{"path": p, "class": c, "subset": s, "sha1": p}
                     for p, c, s in paths_classes_subsets])


def test_drop_train_marks_the_training_copy_and_never_a_test_image():
    m = manifest_of([("test/a/1.jpg", "a", "test"), ("test/a/2.jpg", "a", "test"),
                     ("train/a/3.jpg", "a", "train"), ("train/b/4.jpg", "b", "train"),
                     ("train/a/5.jpg", "a", "train")])
    pairs = __import__("pandas").DataFrame({
        "path_a": ["test/a/1.jpg", "test/a/2.jpg", "test/a/1.jpg", "train/a/3.jpg"],
        "path_b": ["train/a/3.jpg", "train/a/3.jpg", "test/a/2.jpg", "train/a/5.jpg"],
        "probe": [0, 0, 0, 0], "distance": [6, 2, 0, 0], "fine_distance": [30, 10, 0, 0]})
    assert mark_near_duplicates(m, pairs, NearDupConfig()).equals(m), "report drops nothing"
    pairs.loc[len(pairs)] = ["train/b/4.jpg", "test/a/1.jpg", 3, 4, 40]
    out = mark_near_duplicates(m, pairs, NearDupConfig(policy="drop_train")).set_index("path")
    assert (m["status"] == KEPT).all(), "the input manifest must not change"
    assert out.loc["train/a/3.jpg", "status"] == DUPLICATE
    assert out.loc["train/a/3.jpg", "duplicate_of"] == "test/a/2.jpg", "the closest test image"
    assert out.loc["train/a/3.jpg", "reason"].startswith("near-duplicate: ")
    assert out.loc["train/b/4.jpg", "duplicate_of"] == "test/a/1.jpg"
    assert "labelled 'b' here, 'a' there" in out.loc["train/b/4.jpg", "reason"]
    for kept in ("test/a/1.jpg", "test/a/2.jpg", "train/a/5.jpg"):
        assert out.loc[kept, "status"] == KEPT, kept  # test pairs and train-train pairs stay
    table = pair_table(out.reset_index().assign(split=lambda d: d["subset"].where(
        d["status"] == KEPT, "")), pairs)
    assert set(table.columns) >= {"path_a", "path_b", "split_a", "split_b", "class_a",
                                  "class_b", "distance"}
    by_split = split_counts(table).set_index("splits")
    assert by_split.loc["test-test", "pairs"] == 1
    assert by_split.loc["test-train (duplicate)", "pairs"] == 3
    assert by_split.loc["test-train (duplicate)", "different_labels"] == 1
    by_class = class_counts(table).set_index("class")
    assert by_class.loc["b", "different_labels"] == 1 and by_class.loc["a", "pairs"] == 5


def test_drop_train_never_drops_a_val_image_of_a_given_split():
    # A labels file's val (FER+'s PublicTest) is held out like test.
    m = manifest_of([("v/1.jpg", "a", "val"), ("t/2.jpg", "a", "test"),
                     ("tr/3.jpg", "a", "train")])
    pairs = __import__("pandas").DataFrame({
        "path_a": ["v/1.jpg", "tr/3.jpg"], "path_b": ["t/2.jpg", "v/1.jpg"],
        "probe": [0, 0], "distance": [1, 2], "fine_distance": [5, 9]})
    out = mark_near_duplicates(m, pairs, NearDupConfig(policy="drop_train")).set_index("path")
    assert out.loc[["v/1.jpg", "t/2.jpg"], "status"].eq(KEPT).all()
    assert out.loc["tr/3.jpg", "duplicate_of"] == "v/1.jpg"
