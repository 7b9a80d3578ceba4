"""Class distributions: Table 1 (images per class before and after duplicate removal)."""

from __future__ import annotations

import pandas as pd

from fer_core.prepare.manifest import DUPLICATE, KEPT


def class_distribution(manifest: pd.DataFrame) -> pd.DataFrame:
    """Table 1: images per class before and after duplicate removal, with a total row.

    'Before' counts every readable image (kept or duplicate) of the training subset;
    the held-out test subset is reported separately by the split table.
    """
    live = manifest[manifest["status"].isin([KEPT, DUPLICATE]) & (manifest["subset"] == "train")]
    before = live.groupby("class").size()
    after = live[live["status"] == KEPT].groupby("class").size()
    table = pd.DataFrame({"before_dedup": before, "after_dedup": after}).fillna(0).astype(int)
    table = table.rename_axis("class").reset_index()
    return with_total(table)


def with_total(table: pd.DataFrame, *, label_col: str = "class") -> pd.DataFrame:
    numeric = [c for c in table.columns
               if c != label_col and pd.api.types.is_integer_dtype(table[c])]
    total = {label_col: "Total", **{c: int(table[c].sum()) for c in numeric}}
    for c in table.columns:
        total.setdefault(c, "")
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)
