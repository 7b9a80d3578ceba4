"""(ours) The label audit: known flips of real FER2013 labels found well above chance, the
issue table against its definition, and a person's review list applied after ingest."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.audit.labels import (
    AuditConfig,
    flip_labels,
    flip_scores,
    issue_table,
    load_config,
    out_of_sample_probs,
    ranked_issues,
    review_list,
)
from fer_core.prepare.manifest import KEPT, REJECTED, new_rows
from fer_core.prepare.review import apply_review
from tests.conftest import extract_fer2013_subset


def test_flips_change_the_asked_share_each_to_another_class_reproducibly():
    labels = np.repeat(np.arange(7), 100)
    noisy, flipped = flip_labels(labels, 0.05, 7, seed=3)
    assert flipped.sum() == 35 and (noisy != labels).sum() == 35
    assert ((noisy != labels) == flipped).all(), "every flip changes the class"
    again, _ = flip_labels(labels, 0.05, 7, seed=3)
    assert (again == noisy).all()
    assert not (flip_labels(labels, 0.05, 7, seed=4)[0] == noisy).all()


def test_issue_table_ranks_the_least_self_confident_mislabels_first():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    probs = np.full((120, 3), 0.05)
    probs[np.arange(120), labels] = 0.9  # a confident model that agrees...
    wrong = {7: (2, 0.02), 50: (0, 0.10), 90: (1, 0.05)}  # ...except here: (suggested, given p)
    for i, (other, p) in wrong.items():
        probs[i] = 0.0
        probs[i, labels[i]] = p
        probs[i, other] = 1 - p
    probs += rng.uniform(0, 1e-3, probs.shape)
    probs /= probs.sum(1, keepdims=True)
    rows = pd.DataFrame({"path": [f"img{i}.jpg" for i in range(120)], "split": "train"})
    table = issue_table(rows, probs, labels, ("a", "b", "c"), ranked_issues(probs, labels))
    assert table["path"].tolist() == ["img7.jpg", "img90.jpg", "img50.jpg"]
    assert table["given_label"].tolist() == ["a", "c", "b"]
    assert table["suggested_label"].tolist() == ["c", "b", "a"]
    # self-confidence is the model's probability of the given label
    assert np.allclose(table["self_confidence"], [probs[i, labels[i]] for i in (7, 90, 50)],
                       atol=1e-4)
    review = review_list(table, "relabel")
    assert review[["path", "action", "new_class"]].values.tolist() == [
        ["img7.jpg", "relabel", "c"], ["img90.jpg", "relabel", "b"], ["img50.jpg", "relabel", "a"]]


AUDITED = ("happy", "neutral", "surprise")


@pytest.fixture(scope="module")
def fer_faces(tmp_path_factory):
    """900 real FER2013 training faces of three classes (300 each), grey 48x48, and their
    labels. Three classes a fast model tells apart (about 64% out of sample; on all seven it is
    32% with this little data, and the flips drown in FER2013's own label noise)."""
    root = extract_fer2013_subset(tmp_path_factory.mktemp("audit") / "fer",
                                  per_class={f"train/{c}": 300 for c in AUDITED})
    faces, labels = [], []
    for code, cls in enumerate(AUDITED):
        for path in sorted((root / "train" / cls).glob("*.jpg")):
            faces.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            labels.append(code)
    return np.stack(faces), np.array(labels)


@pytest.mark.fer2013
def test_audit_finds_known_flips_far_above_chance(fer_faces):
    faces, labels = fer_faces
    noisy, flipped = flip_labels(labels, 0.05, len(AUDITED), seed=0)
    cfg = AuditConfig(model="hog_logreg", folds=5)
    probs = out_of_sample_probs(faces, noisy, len(AUDITED), cfg)
    ranked = ranked_issues(probs, noisy)
    scores = flip_scores(ranked, flipped)
    # Flagging as many at random finds flips at their rate (5%); measured: 11.6%, 76% found.
    assert scores["precision"] >= 2 * scores["chance_precision"], scores
    assert scores["recall"] >= 0.5, scores
    # The likeliest of the ranking: as many as there are flips, 22% of them flips.
    top = ranked[:int(flipped.sum())]
    assert flipped[top].mean() >= 3 * scores["chance_precision"], flipped[top].mean()


def test_audit_config_refuses_unknown_keys(tmp_path):
    f = tmp_path / "audit.yaml"
    f.write_text("folds: 3\nsplits: [train]\n")
    assert load_config(str(f), epochs=2) == AuditConfig(folds=3, splits=("train",), epochs=2)
    f.write_text("fold: 3\n")
    with pytest.raises(ValueError, match="unknown audit key"):
        load_config(str(f))


def manifest():
    return new_rows([{"path": "train/a/1.jpg", "class": "a"},
                     {"path": "train/a/2.jpg", "class": "a"},
                     {"path": "train/b/3.jpg", "class": "b"},
                     {"path": "train/b/4.jpg", "class": "b", "status": REJECTED,
                      "reason": "too small"}])


def test_review_relabels_and_drops_only_what_it_lists_and_says_so():
    m = manifest()
    review = pd.DataFrame({"path": ["train/a/1.jpg", "train/a/2.jpg", "train/b/3.jpg",
                                    "train/b/4.jpg"],
                           "action": ["relabel", "keep", "drop", "relabel"],
                           "new_class": ["b", "b", "", "a"]})
    out = apply_review(m, review, "review.csv").set_index("path")
    assert (m["class"] == ["a", "a", "b", "b"]).all(), "the input manifest must not change"
    assert out.loc["train/a/1.jpg", "class"] == "b"
    assert out.loc["train/a/1.jpg", "status"] == KEPT
    assert out.loc["train/a/1.jpg", "reason"] == "relabelled on review: was 'a' (review.csv)"
    assert out.loc["train/a/2.jpg", "class"] == "a", "keep leaves it"
    assert out.loc["train/b/3.jpg", "status"] == REJECTED
    assert out.loc["train/b/3.jpg", "reason"].startswith("dropped on review")
    assert out.loc["train/b/4.jpg", "reason"] == "too small", "a rejected file stays as it was"


@pytest.mark.parametrize(("row", "message"), [
    (["train/z/9.jpg", "drop", ""], "not files of this dataset"),
    (["train/a/1.jpg", "relabel", "zebra"], "not a class of this dataset"),
    (["train/a/1.jpg", "rename", "b"], "is not one of"),
])
def test_review_refuses_what_it_cannot_apply(row, message):
    with pytest.raises(ValueError, match=message):
        apply_review(manifest(), pd.DataFrame([row], columns=["path", "action", "new_class"]),
                     "review.csv")


def test_out_of_sample_probs_give_a_class_absent_from_the_labels_no_column():
    # Two kinds of 48x48 image, vertical or horizontal stripes (edges HOG tells apart),
    # coded 0 and 2 of 3 classes.
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 60, (40, 48, 48)).astype(np.uint8)
    labels = np.repeat([0, 2], 20)
    stripes = (np.arange(48) // 4 % 2 * 150).astype(np.uint8)
    faces[labels == 0] += stripes[None, None, :]
    faces[labels == 2] += stripes[None, :, None]
    probs = out_of_sample_probs(faces, labels, 3, AuditConfig(model="hog_logreg", folds=4))
    assert probs.shape == (40, 3) and probs.dtype == np.float64
    assert (probs[:, 1] == 0).all() and np.allclose(probs.sum(axis=1), 1)
    assert (probs.argmax(axis=1) == labels).all(), "each held-out face is told apart"
