"""(ours) The audit's reports as data: near-duplicate pairs by split and class with the
closest cross-split pairs drawn, and the likely label errors with their review file."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fer_core.audit import reports
from fer_core.audit.labels import AuditConfig
from fer_core.prepare.manifest import KEPT, new_rows


def reading(log: list):
    def read_input(path):
        log.append(path)
        return np.zeros((8, 8, 3), np.uint8)

    return read_input


def test_near_duplicate_files_count_pairs_and_draw_only_the_cross_split_ones():
    m = new_rows([{"path": p, "class": c, "split": s, "status": KEPT}
                  for p, c, s in (("t1", "a", "test"), ("t2", "a", "test"),
                                  ("r1", "a", "train"), ("r2", "b", "train"))])
    pairs = pd.DataFrame({"path_a": ["t1", "t1", "r1"], "path_b": ["r1", "t2", "r2"],
                          "probe": [0, 0, 0], "distance": [2, 0, 5],
                          "fine_distance": [10, 0, 20]})
    log = []
    files = reports.near_duplicate_files(m, pairs, reading(log))
    assert list(files) == ["near_duplicates.csv", "near_duplicates_by_split.csv",
                           "near_duplicates_by_class.csv", "near_duplicates.png"]
    assert [f"{t}.csv" for t in reports.NEAR_TABLES] == list(files)[1:3]
    assert len(files["near_duplicates.csv"]) == 3
    assert isinstance(files["near_duplicates.png"], matplotlib.figure.Figure)
    assert sorted(log) == ["r1", "t1"], "only the one cross-split pair is read and drawn"
    assert "3 pairs in all, 1 across splits" in files["near_duplicates.png"]._suptitle.get_text()
    plt.close("all")


def confident_probs(labels: np.ndarray, wrong: dict[int, int]) -> np.ndarray:
    """A model that agrees with every label but those of ``wrong`` (index: its class)."""
    rng = np.random.default_rng(0)
    probs = np.full((len(labels), 3), 0.05)
    probs[np.arange(len(labels)), labels] = 0.9
    for i, other in wrong.items():
        probs[i] = 0.01
        probs[i, other] = 0.98
    probs += rng.uniform(0, 1e-3, probs.shape)
    return probs / probs.sum(1, keepdims=True)


def test_label_issue_files_flag_the_planted_errors_and_draw_the_top_of_each_class():
    labels = np.repeat(np.arange(3), 30)
    rows = pd.DataFrame({"path": [f"img{i}" for i in range(90)], "split": "train",
                         "label": labels})
    probs = confident_probs(labels, {3: 2, 40: 0, 75: 1})
    log = []
    cfg = AuditConfig(top_per_class=2)
    files, summary = reports.label_issue_files(rows, probs, ("a", "b", "c"), cfg, reading(log))
    assert list(files) == ["label_issues.csv", "label_issues.png"]
    issues = files["label_issues.csv"]
    assert set(issues["path"]) == {"img3", "img40", "img75"}
    assert summary == {"audited": 90, "flagged": 3, "per_class": {"a": 1, "b": 1, "c": 1}}
    assert sorted(log) == ["img3", "img40", "img75"]
    with_review, _ = reports.label_issue_files(rows, probs, ("a", "b", "c"), cfg,
                                               reading([]), "drop")
    review = with_review["label_review.csv"]
    assert set(review["action"]) == {"drop"} and set(review["path"]) == set(issues["path"])
    assert {reports.ISSUE_FILES[n] for n in with_review} == {"label_issues", "figure", "review"}
    plt.close("all")
