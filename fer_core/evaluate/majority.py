"""Scores as FER+ reports them (Barsoum et al. 2016): accuracy on the majority labels of the
test split, with the count of faces left out for having none.

The saved val and test splits of a file of votes hold only the faces its votes label by
majority (``fer_core.prepare.votes``: val and test are labelled by majority whatever the
training mode); the others are rows of the run's manifest with their reason (``no
majority``, ``unknown``, ``not a face``). ``annotate`` adds that count to each split's scores,
so a figure always says how many faces it leaves out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fer_core import store

MANIFEST = "manifest.parquet"  # RUN_DIR's copy of the manifest (fer_core.store.stage_files)
LABELS = "majority"


def label_exclusions(run_dir: str | os.PathLike) -> dict[str, dict[str, int]] | None:
    """Per split of a file of votes (train, val, test), its faces whose votes give no
    label, by reason; None for a run whose data had no votes (or no manifest)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    m = store.read_frame(path)
    if "votes" not in m or "distribution" not in m or not (m["votes"] != "").any():
        return None
    voted = m[m["votes"] != ""]
    out: dict[str, dict[str, int]] = {str(s): {} for s in voted["subset"].unique()}
    rows = voted[voted["distribution"] == ""]
    reasons = rows["reason"].str.split(":").str[0]
    for (split, reason), n in reasons.groupby([rows["subset"], reasons]).size().items():
        out[str(split)][str(reason)] = int(n)
    return out


def annotate(metrics: Mapping[str, dict], run_dir: str | os.PathLike) -> dict[str, dict]:
    """``metrics`` with, for each split of a file of votes, the labels it was scored on
    (``labels: majority``), the faces left out (``excluded``: {reason: n}) and their total
    (``excluded_n``); other splits and runs without votes are returned as they are."""
    excluded = label_exclusions(run_dir) or {}
    out = {}
    for split, m in metrics.items():
        left_out = excluded.get(split)
        out[split] = m if left_out is None or split == "train" else {
            **m, "labels": LABELS, "excluded": dict(sorted(left_out.items())),
            "excluded_n": sum(left_out.values())}
    return out
