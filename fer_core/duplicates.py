"""Section 4: exact duplicates by SHA-1 of the file bytes, removed before the split.

Duplicates across train and val would leak; so would a training copy of a test image,
so the held-out test copy is the one kept when a group spans both subsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from fer_core.manifest import DUPLICATE, KEPT, REJECTED


@dataclass(frozen=True, kw_only=True)
class DedupConfig:
    # The same bytes under two labels cannot both be right: drop every copy ("drop"),
    # or keep the first copy in path order and its label ("keep_first").
    on_conflict: Literal["drop", "keep_first"] = "drop"


def find_duplicates(manifest: pd.DataFrame, cfg: DedupConfig) -> pd.DataFrame:
    """Mark all but one file of each SHA-1 group as a duplicate of the one kept."""
    out = manifest.copy()
    live = out[out["status"] == KEPT]
    live = live[live.duplicated("sha1", keep=False)]  # only the groups that have copies
    # Test copies first, then path order: the kept file is the same on every run.
    order = live.assign(_test=live["subset"] != "test").sort_values(["_test", "path"])
    for _, group in order.groupby("sha1", sort=False):
        classes = sorted(set(group["class"]))
        keep = group.index[0]
        if len(classes) > 1 and cfg.on_conflict == "drop":
            out.loc[group.index, "status"] = REJECTED
            out.loc[group.index, "reason"] = (
                f"label conflict: identical bytes labelled {', '.join(classes)} "
                f"in {', '.join(group['path'])}")
            continue
        rest = group.index[1:]
        out.loc[rest, "status"] = DUPLICATE
        out.loc[rest, "duplicate_of"] = out.at[keep, "path"]
        if len(classes) > 1:
            out.loc[rest, "reason"] = f"label conflict: kept as '{out.at[keep, 'class']}'"
    return out


def duplicate_report(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per class: how many files were duplicates (the paper's 196 = 193 + 2 + 1)."""
    dup = manifest[manifest["status"] == DUPLICATE]
    return dup.groupby("class").size().rename("duplicates").reset_index()


def label_conflicts(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[manifest["reason"].str.startswith("label conflict")]
