"""The manifest: one row per input file, the thread that runs through every stage.

Each stage returns a new manifest (never mutates the one it was given: cached results
are shared between runs and tasks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEPT, DUPLICATE, REJECTED = "kept", "duplicate", "rejected"
# The held-out subsets, never dropped for a training copy: test, and a labels file's val
# (FER+'s PublicTest; 557 groups of identical JPEGs cross its usages).
HELD_OUT = ("test", "val")

LANDMARKS = ("left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y", "nose_x", "nose_y")

COLUMNS: dict[str, object] = {
    "path": "", "subset": "", "class": "", "sha1": "", "width": 0, "height": 0,
    "status": KEPT, "reason": "", "duplicate_of": "", "label": -1, "split": "",
    "sharpness": np.nan,  # fer_core.prepare.quality: variance of the Laplacian at 96x96
    "aligned": False, **{c: np.nan for c in LANDMARKS}, "face_prob": np.nan, "angle": np.nan,
    "align_pass": "",  # the detection pass that found the face (fer_core.prepare.detect)
    "align_note": "",  # why an image stays unaligned: no face, or implausible landmarks
    "align_error": "",  # an alignment batch that failed after its retries
    "group": "",  # a labels file's subject or clip id (fer_core.prepare.labels)
    "votes": "",  # a labels file's votes, JSON {column: votes} as read
    "distribution": "",  # the label distribution the votes give, JSON {class: p}
}
_DTYPES = {"width": "int64", "height": "int64", "label": "int64", "aligned": "bool",
           **{c: "float64" for c in (*LANDMARKS, "face_prob", "angle", "sharpness")}}


def new_rows(rows: list[dict]) -> pd.DataFrame:
    """A manifest from partial row dicts: missing columns take their defaults."""
    df = pd.DataFrame([{**COLUMNS, **r} for r in rows], columns=list(COLUMNS))
    for col, dtype in _DTYPES.items():
        df[col] = df[col].fillna(COLUMNS[col]).astype(dtype)
    for col in set(COLUMNS) - set(_DTYPES):
        df[col] = df[col].fillna("").astype(str)
    return df


def empty_manifest() -> pd.DataFrame:
    return new_rows([])


def kept(manifest: pd.DataFrame, split: str | None = None) -> pd.DataFrame:
    """Rows that go on to the next stage (optionally only one split)."""
    mask = manifest["status"] == KEPT
    if split is not None:
        mask &= manifest["split"] == split
    return manifest[mask]


def status_counts(manifest: pd.DataFrame) -> dict[str, int]:
    return {s: int((manifest["status"] == s).sum()) for s in (KEPT, DUPLICATE, REJECTED)}
