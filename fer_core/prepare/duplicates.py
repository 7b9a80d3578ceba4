"""Section 4: exact duplicates by SHA-1 of the file bytes, removed before the split.

Duplicates across train and val would leak; so would a training copy of a test image,
so the held-out test copy is the one kept when a group spans both subsets, whatever
label the training copy carries (the held-out set is the reference: dropping its images
over a training folder's mislabel would change the benchmark, 7,178 -> 7,065 on FER2013).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_core.config.duplicates import DedupConfig
from fer_core.prepare.manifest import DUPLICATE, HELD_OUT, KEPT, REJECTED

TEST = "test"
CONFLICT = "label conflict"
CONFLICT_COLUMNS = ["path", "subset", "class", "conflicting_path", "conflicting_class", "action"]


def find_duplicates(manifest: pd.DataFrame, cfg: DedupConfig) -> pd.DataFrame:
    """Mark all but one file of each SHA-1 group as a duplicate of the one kept.

    A group with held-out test copies keeps every test copy with its own label (the
    official split is scored whole, FER2013's 7,178); its training copies become
    duplicates of the first test copy (never trained on), with a label-conflict reason
    when their label differs. A group without a test copy keeps its first copy, and a
    label conflict in it follows ``cfg.on_conflict``.
    """
    out = manifest.copy()
    live = out[out["status"] == KEPT]
    live = live[live.duplicated("sha1", keep=False)]  # only the groups that have copies
    # Test copies first, then path order: the kept file is the same on every run. Whole
    # columns at once (a loop over FER2013's ~1,800 groups cost seconds on every rerun).
    held = live["subset"].isin(HELD_OUT)
    order = live.assign(_test=~held).sort_values(["_test", "path"])
    by = order.groupby("sha1", sort=False)
    rank = by.cumcount()
    n_test = (~order["_test"]).groupby(order["sha1"]).transform("sum")
    kept_path, kept_class = by["path"].transform("first"), by["class"].transform("first")
    # No copy's label can be trusted in a conflicting group without a test copy: with
    # on_conflict "drop" no copy is kept.
    dropped = (n_test == 0) & (by["class"].transform("nunique") > 1) & \
        (cfg.on_conflict == "drop")
    for _, group in order[dropped].groupby("sha1", sort=False):
        out.loc[group.index, "status"] = REJECTED
        out.loc[group.index, "reason"] = (
            f"{CONFLICT}: identical bytes labelled {', '.join(sorted(set(group['class'])))} "
            f"in {', '.join(group['path'])}")
    # The held-out copies all stay, with their own labels; the training copies (or all
    # but the first, without a test copy) become duplicates of the first.
    copies = ~dropped & (rank >= n_test.clip(lower=1))
    rest = order.index[copies]
    out.loc[rest, "status"] = DUPLICATE
    out.loc[rest, "duplicate_of"] = kept_path[copies]
    # Only copies whose label differs are conflicts; same-label copies are plain duplicates.
    other = copies & (order["class"] != kept_class)
    where = np.where(n_test[other] > 0, "the held-out ", "")
    out.loc[order.index[other], "reason"] = [
        f"{CONFLICT}: labelled '{c}' here, kept as '{k}' in {w}{p}"
        for c, k, w, p in zip(order["class"][other], kept_class[other], where,
                              kept_path[other], strict=True)]
    return out


def duplicate_report(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per class: how many files were duplicates (the paper's 196 = 193 + 2 + 1)."""
    dup = manifest[manifest["status"] == DUPLICATE]
    return dup.groupby("class").size().rename("duplicates").reset_index()


def label_conflicts(manifest: pd.DataFrame) -> pd.DataFrame:
    """The copies removed over a label conflict (rejected, or a duplicate of another label)."""
    return manifest[manifest["reason"].str.startswith(CONFLICT)]


def conflict_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Every label conflict of a deduplicated manifest, one row per file and file it conflicts with.

    ``action`` is what happened to ``path``. A copy removed as a duplicate is paired with
    the kept copy (and the kept copy with it, so the held-out images that had a conflicting
    training copy are listed too); when every copy was rejected, each is paired with every
    copy of another label.
    """
    lost = label_conflicts(manifest)
    by_path = manifest.set_index("path")
    rows = []
    for _, r in lost[lost["status"] == DUPLICATE].iterrows():
        k = by_path.loc[r["duplicate_of"]]
        rows.append(_pair(r["path"], r, r["duplicate_of"], k))
        rows.append(_pair(r["duplicate_of"], k, r["path"], r))
    rejected = lost[lost["status"] == REJECTED]
    for _, group in rejected.groupby("sha1", sort=False):
        for _, a in group.iterrows():
            for _, b in group[group["class"] != a["class"]].iterrows():
                rows.append(_pair(a["path"], a, b["path"], b))
    table = pd.DataFrame(rows, columns=CONFLICT_COLUMNS)
    return table.sort_values(["path", "conflicting_path"], ignore_index=True)


def _pair(path: str, a: pd.Series, other: str, b: pd.Series) -> dict:
    return {"path": path, "subset": a["subset"], "class": a["class"], "conflicting_path": other,
            "conflicting_class": b["class"], "action": a["status"]}
