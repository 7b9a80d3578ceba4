"""(ours) A person's review of the label audit, applied after ingest: relabel or drop files.

`fer audit RUN --review relabel|drop` writes the list (path, action, new_class, ...) for a
person to edit; `review: {file: LIST}` in a `fer prepare --config` file applies it. Nothing
else changes a label: every applied row is said in the manifest's ``reason`` (a relabelled
file stays kept, a dropped one is rejected), so the change is never silent.
"""

from __future__ import annotations

import pandas as pd

from fer_core import UsageError
from fer_core.config.review import ReviewConfig  # noqa: F401  (its config, re-exported)
from fer_core.prepare.manifest import KEPT, REJECTED

ACTIONS = ("relabel", "drop", "keep")
COLUMNS = ["path", "action", "new_class"]
RELABELLED, DROPPED = "relabelled on review", "dropped on review"


def check_review(review: pd.DataFrame, manifest: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows that act (relabel, drop), or ValueError naming what is wrong in ``source``."""
    missing = sorted(set(COLUMNS) - set(review.columns))
    if missing:
        raise UsageError(f"{source}: review file lacks column(s) {missing}; needs {COLUMNS}")
    review = review.fillna({"new_class": "", "action": ""}).astype({"new_class": str})
    bad = review[~review["action"].isin(ACTIONS)]
    if len(bad):
        raise UsageError(f"{source}: action '{bad['action'].iloc[0]}' for {bad['path'].iloc[0]} "
                         f"is not one of {list(ACTIONS)}")
    acting = review[review["action"] != "keep"]
    unknown = acting[~acting["path"].isin(manifest["path"])]
    if len(unknown):
        raise UsageError(f"{source}: {len(unknown)} path(s) are not files of this dataset "
                         f"(e.g. {unknown['path'].iloc[0]})")
    classes = set(manifest.loc[manifest["status"] == KEPT, "class"])
    relabel = acting[acting["action"] == "relabel"]
    odd = relabel[~relabel["new_class"].isin(classes)]
    if len(odd):
        raise UsageError(f"{source}: new_class '{odd['new_class'].iloc[0]}' for "
                         f"{odd['path'].iloc[0]} is not a class of this dataset {sorted(classes)}")
    if acting["path"].duplicated().any():
        raise UsageError(f"{source}: {acting['path'][acting['path'].duplicated()].iloc[0]} "
                         "is listed twice")
    return acting


def apply_review(manifest: pd.DataFrame, review: pd.DataFrame, source: str) -> pd.DataFrame:
    """Relabel and drop the kept files ``review`` lists; the reason names ``source``."""
    out = manifest.copy()
    acting = check_review(review, manifest, source)
    row = pd.Series(out.index, index=out["path"])
    for r in acting.itertuples(index=False):
        i = row[r.path]
        if out.at[i, "status"] != KEPT:
            continue  # already out (rejected at ingest): nothing to review
        if r.action == "drop":
            out.at[i, "status"] = REJECTED
            out.at[i, "reason"] = f"{DROPPED}: labelled '{out.at[i, 'class']}' ({source})"
        elif r.new_class != out.at[i, "class"]:
            out.at[i, "reason"] = f"{RELABELLED}: was '{out.at[i, 'class']}' ({source})"
            out.at[i, "class"] = r.new_class
    return out
