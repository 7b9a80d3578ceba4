"""(ours) The audit's reports as data to save: near-duplicate pairs and likely label errors.

Each function returns ``{file name: frame or matplotlib Figure}`` for the run's reports
folder (``fer_core.store.stage_files.write_files`` saves it). Pure but for the reader the
caller passes, ``read_input(path) -> RGB image``, for the faces in the figures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from fer_core.audit import figures as audit_figures
from fer_core.audit import labels as audit
from fer_core.prepare import near_duplicates

CLOSEST = 16  # cross-split near-duplicate pairs shown in the figure
NEAR_TABLES = ("near_duplicates_by_split", "near_duplicates_by_class")
# The label audit's files, by the name its summary gives each.
ISSUE_FILES = {"label_issues.csv": "label_issues", "label_issues.png": "figure",
               "label_review.csv": "review"}


def near_duplicate_files(m: pd.DataFrame, pairs: pd.DataFrame,
                         read_input: Callable[[str], np.ndarray]) -> dict[str, object]:
    """near_duplicates.csv (the pairs by the final split), its counts per split pair and
    per class (``NEAR_TABLES``), and near_duplicates.png: the closest pairs across splits."""
    table = near_duplicates.pair_table(m, pairs)
    files: dict[str, object] = {
        "near_duplicates.csv": table,
        f"{NEAR_TABLES[0]}.csv": near_duplicates.split_counts(table),
        f"{NEAR_TABLES[1]}.csv": near_duplicates.class_counts(table)}
    across = table["split_a"] != table["split_b"]
    cross = table[across].head(CLOSEST)
    faces = [(read_input(a), read_input(b))
             for a, b in zip(cross["path_a"], cross["path_b"], strict=True)]
    captions = [f"{r.split_a} {r.class_a} | {r.split_b} {r.class_b}\nd={r.distance}"
                for r in cross.itertuples()]
    files["near_duplicates.png"] = audit_figures.pair_grid(
        faces, captions, title=f"Closest near-duplicates across splits ({len(table)} pairs "
        f"in all, {int(across.sum())} across splits)")
    return files


def label_issue_files(rows: pd.DataFrame, probs: np.ndarray, classes: tuple[str, ...],
                      cfg: audit.AuditConfig, read_input: Callable[[str], np.ndarray],
                      review_action: str | None = None) -> tuple[dict[str, object], dict]:
    """(label_issues.csv and label_issues.png: cleanlab's ranking of likely label errors,
    the likeliest ``cfg.top_per_class`` of each given class shown; with ``review_action``
    also label_review.csv, the review file a person edits before `fer prepare` applies it;
    and a summary: images audited, flagged, flagged per class)."""
    labels = rows["label"].to_numpy()
    issues = audit.issue_table(rows, probs, labels, classes, audit.ranked_issues(probs, labels))
    top = {c: issues[issues["given_label"] == c].head(cfg.top_per_class) for c in classes}
    faces = {c: [(read_input(r.path), f"-> {r.suggested_label}\n{r.self_confidence:.2f}")
                 for r in t.itertuples()] for c, t in top.items()}
    files: dict[str, object] = {"label_issues.csv": issues, "label_issues.png":
                                audit_figures.class_rows(
        faces, per_row=cfg.top_per_class, title=f"Likeliest label errors per given class "
        f"({len(issues)} of {len(rows)} flagged; -> suggested label, self-confidence)")}
    if review_action:
        files["label_review.csv"] = audit.review_list(issues, review_action)
    return files, {"audited": len(rows), "flagged": len(issues),
                   "per_class": issues["given_label"].value_counts()
                   .reindex(classes, fill_value=0).astype(int).to_dict()}
