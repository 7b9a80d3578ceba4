"""Section 4: label encoding (scikit-learn's LabelEncoder) and the stratified 80/20 split.

The split is taken over the kept images of the ``train`` subset only; a held-out ``test``
subset (FER2013 / RAF-DB layouts) is kept whole as the test set. A labels file that gives
the split (a ``val`` subset: FER+'s PublicTest) replaces the 80/20 split: kept as given.
(ours) Otherwise it splits whole groups (near-duplicates, one subject or clip:
fer_core.prepare.groups); when every group is one image it is the paper's
``train_test_split``, row for row.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder

from fer_core import UsageError
from fer_core.config.split import SplitConfig
from fer_core.prepare import groups as grouping
from fer_core.prepare.distribution import with_total
from fer_core.prepare.manifest import KEPT


def encode_labels(manifest: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """LabelEncoder codes (classes in sorted order, as the paper's Table 2) for kept rows."""
    out = manifest.copy()
    mask = out["status"] == KEPT
    encoder = LabelEncoder().fit(out.loc[mask, "class"])
    out["label"] = -1
    out.loc[mask, "label"] = encoder.transform(out.loc[mask, "class"])
    return out, tuple(str(c) for c in encoder.classes_)


def split(manifest: pd.DataFrame, cfg: SplitConfig,
          pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Shuffle, then split the train subset 80/20 stratified by label (seed 0), whole
    groups at a time. ``pairs``: near-duplicate pairs by path (``path_a``, ``path_b``)."""
    if not 0 < cfg.val_fraction < 1:
        raise UsageError(f"val_fraction must be in (0, 1), got {cfg.val_fraction}")
    out = manifest.copy()
    out["split"] = ""
    out[grouping.SPLIT_GROUP] = -1
    out.loc[(out["status"] == KEPT) & (out["subset"] == "test"), "split"] = "test"
    if given_split(out):
        for name in ("train", "val"):
            out.loc[(out["status"] == KEPT) & (out["subset"] == name), "split"] = name
        return out
    pool = out[(out["status"] == KEPT) & (out["subset"] == "train")]
    if pool.empty:
        if (out["split"] == "test").any():
            return out  # a test-only dataset (e.g. for cross-dataset evaluation)
        raise UsageError("no kept images to split")
    small = pool["label"].value_counts()
    if (small < 2).any():
        names = sorted(pool.loc[pool["label"].isin(small[small < 2].index), "class"].unique())
        raise UsageError(f"classes with fewer than 2 images cannot be split: {names}")
    groups = grouping.find_groups(pool, pairs if cfg.group_near_duplicates else None,
                                  cfg.group_pattern)
    out.loc[pool.index, grouping.SPLIT_GROUP] = groups
    if groups.max() + 1 == len(pool):  # every group one image: the paper's split
        train_idx, val_idx = train_test_split(
            pool.index.to_numpy(), test_size=cfg.val_fraction, shuffle=True,
            stratify=pool["label"].to_numpy(), random_state=cfg.random_state)
    else:
        to_val = grouping.assign_groups(groups, pool["label"].to_numpy(), cfg.val_fraction,
                                        cfg.random_state)
        train_idx, val_idx = pool.index[~to_val], pool.index[to_val]
    out.loc[train_idx, "split"] = "train"
    out.loc[val_idx, "split"] = "val"
    return out


def given_split(manifest: pd.DataFrame) -> bool:
    """Whether the data gives its own validation split (a labels file's split column)."""
    return bool(((manifest["status"] == KEPT) & (manifest["subset"] == "val")).any())


def split_table(manifest: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Table 2: class, code, train, val (a held-out test set is counted in Table 3; when the
    data gives its split, test too: the split as given)."""
    live = manifest[manifest["status"] == KEPT]
    splits = ["train", "val", "test"] if given_split(manifest) else ["train", "val"]
    counts = live.groupby(["class", "split"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=list(classes), columns=splits, fill_value=0)
    # Codes as text: the total row has none.
    table = pd.DataFrame({"class": list(classes), "code": [str(i) for i in range(len(classes))],
                          **{s: counts[s].to_numpy() for s in splits}})
    return with_total(table)


def classes_of(manifest: pd.DataFrame) -> tuple[str, ...]:
    """The encoder's classes (sorted names of kept images), as encode_labels fits them."""
    return tuple(sorted(str(c) for c in manifest.loc[manifest["status"] == KEPT, "class"].unique()))


def encode_and_split(manifest: pd.DataFrame, cfg: SplitConfig,
                     pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The split stage: LabelEncoder codes (``encode_labels``), then the split (``split``)."""
    return split(encode_labels(manifest)[0], cfg, pairs)
