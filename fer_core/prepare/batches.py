"""The content-defined batches that alignment and resizing work in, as plain data.

Alignment plans its batches by image size and path hash (``align.plan_batches``): one
changed, added or removed image changes one batch, the others keep their keys and cached
results. Resizing reuses the same batches. Here: the batch plan as the flow passes it on,
the detections of all batches merged back into the manifest, each resize batch's rows and
the lines that key it, and the index of where each resized image's pixels are.
All pure: frames in, new frames out, inputs never changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fer_core.prepare import align
from fer_core.prepare.manifest import KEPT

# What a resized image is made of: its bytes (sha1) and the alignment applied to them.
RESIZE_INPUTS = ("path", "sha1", "aligned", "left_eye_x", "left_eye_y", "right_eye_x",
                 "right_eye_y")
INDEX_COLUMNS = ("path", "split", "label", "class", "sha1", "batch", "row", "content")


def align_plan(manifest: pd.DataFrame, cfg: align.AlignConfig) -> list[dict]:
    """The alignment batches as ``{"paths": [...], "sha1s": [...]}``; none when alignment
    is off."""
    if not cfg.enabled:
        return []
    return [{"paths": b["path"].tolist(), "sha1s": b["sha1"].tolist()}
            for b in align.plan_batches(manifest, cfg)]


def merge_batches(manifest: pd.DataFrame, detections: Sequence[pd.DataFrame],
                  failed: Sequence[Mapping] = ()) -> pd.DataFrame:
    """A new manifest with each batch's detections (frames with a ``path`` column) written
    into their rows, and each failed batch's paths (``{"paths", "error"}``) marked."""
    m = manifest
    # One write of all batches: a write per batch copied the whole manifest each time.
    found = [d for d in detections if len(d)]
    if found:
        found = pd.concat(found, ignore_index=True)
        m = align.merge_alignment(m, found["path"].tolist(), found)
    for f in failed:
        m = align.mark_failed(m, f["paths"], f["error"])
    return m


def store_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows that have pixels in the resized images, in their order (manifest order)."""
    return manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")].reset_index(drop=True)


def resize_batches(manifest: pd.DataFrame, batch_size: int) -> list[pd.DataFrame]:
    """The rows to resize (``RESIZE_INPUTS``), in the alignment's content-defined batches
    (align.plan_batches): one changed, added or removed image changes one batch; the
    others keep their keys."""
    rows = store_rows(manifest).set_index("path", drop=False)
    return [rows.loc[b["path"].tolist(), list(RESIZE_INPUTS)].reset_index(drop=True)
            for b in align.plan_batches(manifest, align.AlignConfig(batch_size=batch_size))]


def batch_key_lines(rows: pd.DataFrame) -> list[str]:
    """A resize batch's key inputs: one line per image, of its ``RESIZE_INPUTS`` values."""
    return ["\t".join(map(repr, r)) for r in rows.itertuples(index=False, name=None)]


def resize_index(manifest: pd.DataFrame, batches: Sequence[pd.DataFrame],
                 folders: Sequence[str], recipe: str = "") -> pd.DataFrame:
    """Where each resized image's pixels are: its batch's folder (``folders[i]`` holds
    ``batches[i]``) and its row there, in ``store_rows`` order; its file's ``sha1``; and what
    its pixels are made of (``content``: a hash of the image's ``RESIZE_INPUTS`` and
    ``recipe``, the resizing's config and code), which keys a later stage's work on some
    images alone."""
    where = {p: (folder, j, line) for folder, b in zip(folders, batches, strict=True)
             for j, (p, line) in enumerate(zip(b["path"].tolist(), batch_key_lines(b),
                                               strict=True))}
    index = store_rows(manifest)[["path", "split", "label", "class", "sha1"]].copy()
    index["batch"] = [where[p][0] for p in index["path"]]
    index["row"] = np.array([where[p][1] for p in index["path"]], dtype=np.int64)
    index["content"] = [hashlib.sha256(f"{recipe}\n{where[p][2]}".encode()).hexdigest()[:32]
                        for p in index["path"]]
    return index
