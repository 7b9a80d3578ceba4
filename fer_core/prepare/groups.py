"""(ours) Groups for the split: images that must land on one side of train/val together.

Re-crops of one photo, frames of one clip, photos of one subject: a split per image puts
them on both sides, so validation scores faces the model has already seen. A group is a
connected component of the links between images: near-duplicate pairs (the near-duplicate
stage's), the same id from ``split.group_pattern`` (a regular expression on the file name
whose first group is the subject or clip id) and the same value of a manifest ``group``
column (a labels file's). An image linked to nothing is a group of its own.

Whole groups are assigned, per class, so that each class keeps its val fraction; a group
whose members carry different labels counts under its most common label (the smallest code
on a tie) and is counted in the report.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

GROUP_COLUMN = "group"          # a labels file's subject/clip id, when the manifest has one
SPLIT_GROUP = "split_group"     # the group the split assigned whole (-1: not split)


def _links_by_key(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row with a key linked to the first row with the same key (positions)."""
    keys = pd.Series(keys.to_numpy(object))
    valid = keys.notna() & (keys.astype(str) != "")
    pos = np.flatnonzero(valid)
    codes, _ = pd.factorize(keys[valid].astype(str))
    _, first = np.unique(codes, return_index=True)
    return pos, pos[first[codes]]


def find_groups(pool: pd.DataFrame, pairs: pd.DataFrame | None,
                pattern: str | None) -> np.ndarray:
    """A group id (0..k-1, in order of first appearance) for each row of ``pool``.

    ``pairs``: near-duplicate pairs by path (``path_a``, ``path_b``); those with an image
    outside ``pool`` are ignored."""
    n = len(pool)
    a_parts, b_parts = [np.arange(n)], [np.arange(n)]
    if pairs is not None and len(pairs):
        at = pd.Series(np.arange(n), index=pool["path"].to_numpy())
        inside = pairs["path_a"].isin(at.index) & pairs["path_b"].isin(at.index)
        a_parts.append(at.loc[pairs.loc[inside, "path_a"]].to_numpy())
        b_parts.append(at.loc[pairs.loc[inside, "path_b"]].to_numpy())
    if pattern:
        regex = re.compile(pattern)
        names = pool["path"].map(lambda p: p.replace("\\", "/").rsplit("/", 1)[-1])
        ids = names.map(lambda s: (m.group(1) if (m := regex.search(s)) else None))
        for part, dest in zip(_links_by_key(ids), (a_parts, b_parts), strict=True):
            dest.append(part)
    if GROUP_COLUMN in pool.columns:
        for part, dest in zip(_links_by_key(pool[GROUP_COLUMN]), (a_parts, b_parts),
                              strict=True):
            dest.append(part)
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumbered by first appearance: the ids do not depend on scipy's numbering.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]


def group_labels(groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each group's most common label, smallest on a tie; whether it has several labels)."""
    table = pd.crosstab(groups, labels)
    return table.idxmax(axis=1).to_numpy(), (table > 0).sum(axis=1).to_numpy() > 1


def assign_groups(groups: np.ndarray, labels: np.ndarray, val_fraction: float,
                  seed: int) -> np.ndarray:
    """Whether each row goes to val: whole groups, per class (a group's majority label),
    in a seeded random order, each taken when it brings the class's val count nearer
    ``val_fraction`` of the class's images."""
    majority, _ = group_labels(groups, labels)
    sizes = np.bincount(groups)
    rng = np.random.default_rng(seed)
    val_group = np.zeros(len(sizes), bool)
    for label in np.unique(majority):
        members = np.flatnonzero(majority == label)
        target = val_fraction * sizes[members].sum()
        taken = 0
        order = rng.permutation(members)
        for g in order:
            if abs(taken + sizes[g] - target) < abs(taken - target):
                val_group[g] = True
                taken += sizes[g]
        if taken == 0 and len(members) > 1:  # groups too big for the target: one, the smallest
            val_group[order[np.argmin(sizes[order])]] = True
    return val_group[groups]


def group_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """reports/split_groups.csv: each group of more than one image, its size, classes,
    the label it was assigned by, whether its labels differ, and its split."""
    m = manifest[manifest.get(SPLIT_GROUP, pd.Series(-1, index=manifest.index)) >= 0]
    columns = ["group", "images", "classes", "mixed_labels", "split", "first_path"]
    if m.empty:
        return pd.DataFrame(columns=columns)
    g = m.groupby(SPLIT_GROUP)
    out = pd.DataFrame({"group": g.size().index, "images": g.size().to_numpy(),
                        "classes": g["class"].agg(lambda s: ";".join(sorted(set(s)))).to_numpy(),
                        "split": g["split"].agg(lambda s: ";".join(sorted(set(s)))).to_numpy(),
                        "first_path": g["path"].first().to_numpy()})
    out["mixed_labels"] = out["classes"].str.contains(";")
    return out[out["images"] > 1][columns].sort_values(
        ["images", "group"], ascending=[False, True], ignore_index=True)


def summary(manifest: pd.DataFrame) -> dict:
    """Counts for the log and prepare.json: groups, grouped images, mixed-label groups."""
    table = group_table(manifest)
    return {"groups_of_several": len(table), "grouped_images": int(table["images"].sum()),
            "largest_group": int(table["images"].max()) if len(table) else 1,
            "mixed_label_groups": int(table["mixed_labels"].sum())}
