"""Section 5's last step as data: what the saved sets hold (docs/FORMATS.md).

From the resize index (one row per stored image: path, split, label), the augmentation
plan (the training set's rows) and the classes: each split's one-hot labels and sources,
which stored images each of val and test copies, meta.json, and each named subset as row
indices into its parent split, matched from its list file's text. Pure: the caller reads
the list files and writes what comes back (``fer_core.store.stage_files.write_files``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.prepare import onehot
from fer_core.prepare import subsets as subsets_mod
from fer_core.prepare.subsets import SubsetSpec
from fer_core.store import SETS_META
from fer_core.store.stage_files import IMAGES

INDEX = "index.npy"  # a subset's rows in its parent split
COPIED = ("val", "test")  # the splits whose images are copied from the resized ones


@dataclass(frozen=True, kw_only=True)
class SubsetList:
    """A named subset's list file, as read: its text and the hash of its bytes."""

    spec: SubsetSpec
    text: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SetsLayout:
    files: dict[str, object]  # {path in the sets folder: an array, a frame or meta.json's dict}
    images: dict[str, np.ndarray]  # {path of a split's images.npy: positions in the index}
    counts: dict[str, int]  # images per split
    subsets: dict[str, int]  # images per named subset


def sets_layout(index: pd.DataFrame, plan: pd.DataFrame, classes: tuple[str, ...],
                shape: Sequence[int], lists: Sequence[SubsetList] = (),
                manifest: pd.DataFrame | None = None) -> SetsLayout:
    """The saved sets of ``classes``: train from ``plan`` (its images are augment's array,
    not copied here), val and test from ``index`` (test left out when it has no image),
    ``shape`` the stored images' (h, w, 3). ``manifest`` says why a listed image matched
    nothing, and the label distributions (``distribution.npy``, when it has them: a labels
    file's votes). A list that matches no image is an error (``subsets.check_matched``)."""
    n = len(classes)
    files = labels_files("train", plan["label"].to_numpy(), n,
                         plan[["path", "noise"]].rename(columns={"path": "source"}))
    dist = distributions(manifest, classes)
    if dist is not None:  # a noisy copy carries its source's distribution
        files["train/distribution.npy"] = dist(plan["path"], plan["label"])
    counts = {"train": len(plan)}
    images, paths = {}, {}
    split = index["split"].to_numpy()
    for name in COPIED:
        pos = np.flatnonzero(split == name)
        if name == "test" and not len(pos):
            continue
        images[f"{name}/{IMAGES}"] = pos
        paths[name] = index["path"].to_numpy()[pos]
        files |= labels_files(name, index["label"].to_numpy()[pos], n,
                              pd.DataFrame({"source": paths[name], "noise": "none"}))
        if dist is not None:
            files[f"{name}/distribution.npy"] = dist(paths[name], index["label"].to_numpy()[pos])
        counts[name] = len(pos)
    meta = {"classes": list(classes), "image_size": [int(shape[0]), int(shape[1])],
            "channels": "RGB", "scale": 255, "splits": counts}
    if dist is not None:
        meta["distribution"] = "distribution.npy"
    if lists:
        meta["subsets"] = {}
        for listed in lists:
            record, subset_files = subset_files_of(listed, paths, manifest)
            meta["subsets"][listed.spec.name] = record
            files |= subset_files
    files[SETS_META] = meta
    return SetsLayout(files=files, images=images, counts=counts,
                      subsets={k: s["n"] for k, s in meta.get("subsets", {}).items()})


def distributions(manifest: pd.DataFrame | None, classes: tuple[str, ...]):
    """``f(paths, labels) -> float32 (N, C)``: each image's label distribution over
    ``classes`` (renormalised over them; one-hot where a row has none), or None when the
    manifest holds no distribution (a dataset of plain labels)."""
    if manifest is None or "distribution" not in manifest or \
            not (manifest["distribution"] != "").any():
        return None
    rows = manifest[manifest["distribution"] != ""]
    table = {}
    for path, text in zip(rows["path"], rows["distribution"], strict=True):
        given = json.loads(text)
        table[path] = np.array([given.get(c, 0.0) for c in classes], np.float64)

    def of(paths, labels) -> np.ndarray:
        out = onehot.one_hot(np.asarray(labels), len(classes)).astype(np.float32)
        for i, p in enumerate(paths):
            if p in table and table[p].sum() > 0:
                out[i] = table[p] / table[p].sum()
        return out

    return of


def labels_files(split: str, labels: np.ndarray, n_classes: int,
                 sources: pd.DataFrame) -> dict[str, object]:
    """A split's one-hot labels and its sources table (source path, noise)."""
    return {f"{split}/labels.npy": onehot.one_hot(labels, n_classes),
            f"{split}/sources.csv": sources}


def subset_files_of(listed: SubsetList, paths: dict[str, np.ndarray],
                    manifest: pd.DataFrame | None) -> tuple[dict, dict[str, object]]:
    """(meta.json's record of the subset, its files: the row indices into its parent split
    and their sources). ``paths``: each saved split's image paths, in stored order."""
    spec = listed.spec
    parent = paths.get(spec.parent, np.array([], dtype=object))
    found = subsets_mod.match(subsets_mod.parse_list(listed.text), parent.tolist(), manifest,
                              parent=spec.parent)
    subsets_mod.check_matched(spec, found, parent.tolist())
    rel = f"{spec.name}/{INDEX}"
    files = {rel: found.rows,
             f"{spec.name}/sources.csv": pd.DataFrame({"source": parent[found.rows],
                                                       "row": found.rows})}
    record = {"parent": spec.parent, "index": rel, "list": Path(spec.list_path).name,
              "list_sha256": listed.sha256, **subsets_mod.summary(found)}
    return record, files
