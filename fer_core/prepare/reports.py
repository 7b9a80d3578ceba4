"""The paper's Tables 1-5 and Figures 2-5 of a preparation, as data to save.

From the final manifest, the resize index and the augmentation plan: every table (Table 1
distribution, Table 2 split, Table 3 alignment, Table 5 augmentation, and ours: sharpness
per split, label conflicts, the split's groups) as a frame, every figure as a matplotlib
Figure, under the paths they are saved at (``reports/...``, and the manifest at the run
folder's top).
Pure but for two readers the caller passes: an input image by path, and stored
(pre-processed) images by position in the index, for Figures 3 and 4's one example face.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from fer_core.prepare import (
    align,
    augment,
    distribution,
    duplicates,
    figures,
    groups,
    labels,
    quality,
    split,
)
from fer_core.prepare.manifest import KEPT

REPORTS = "reports"

# What each report is, in the paper's words (the Prefect UI's artifact titles).
TITLES = {
    "distribution": "Table 1: distribution before and after SHA-1 duplicate removal",
    "split": "Table 2: label codes and the stratified 80/20 train/validation split per class",
    "alignment": "Table 3: faces aligned by MTCNN (eyes and nose) per class and split",
    "augmentation_plan": "Table 4: the augmentation plan per class (images per noise, "
                         "added or replacing)",
    "augmentation": "Table 5: training images per class before and after augmentation",
    "sharpness": "(ours) sharpness per split: count and 10th/50th/90th percentiles",
    "label_conflicts": "(ours) identical files under different labels, and what was kept",
    "split_groups": "(ours) groups the split kept whole (near-duplicates, a group pattern or "
                    "column), and those with mixed labels",
    "labels": "(ours) faces per class and per reason under the labels file's votes",
    "near_duplicates_by_split": "(ours) near-duplicate pairs by split",
    "near_duplicates_by_class": "(ours) near-duplicate pairs by class",
    "fig2_distribution": "Figure 2: original data distribution per class",
    "fig3_preprocessed": "Figure 3: an input face and its pre-processed (aligned, 96x96) "
                         "version",
    "fig4_augmented": "Figure 4: the pre-processed face with Poisson, speckle and Gaussian "
                      "noise",
    "fig5_augmented_distribution": "Figure 5: training distribution after augmentation",
    "near_duplicates": "(ours) the closest near-duplicate pairs across splits",
}


def report_files(m: pd.DataFrame, index: pd.DataFrame, plan: pd.DataFrame,
                 classes: tuple[str, ...], read_input: Callable[[str], np.ndarray],
                 read_stored: Callable[[np.ndarray], np.ndarray]) -> tuple[dict, list[str]]:
    """({path in the run folder: frame or Figure}, the names of the tables)."""
    before = index.loc[index["split"] == "train", "label"].to_numpy()
    dist = distribution.class_distribution(m)
    aug = augment.augmentation_table(before, plan, classes)
    tables = {"distribution": dist, "split": split.split_table(m, classes),
              "alignment": align.alignment_table(m, classes),
              "augmentation_plan": augment.plan_table(before, plan, classes),
              "augmentation": aug,
              "sharpness": quality.sharpness_table(m),
              # (ours) which identical files were labelled differently and what was kept
              "label_conflicts": duplicates.conflict_table(m),
              # (ours) the groups the split kept whole; mixed_labels: assigned by majority
              "split_groups": groups.group_table(m)}
    if (m["votes"] != "").any():  # (ours) which faces a labels file's votes label
        tables["labels"] = labels.label_table(m)
    files: dict[str, object] = {f"{REPORTS}/{name}.csv": t for name, t in tables.items()}
    per_class = dist[dist["class"] != "Total"]
    files[f"{REPORTS}/fig2_distribution.png"] = figures.histogram(
        dict(zip(per_class["class"], per_class["before_dedup"], strict=True)),
        title="Figure 2: original data distribution")
    after = aug[aug["class"] != "Total"]
    files[f"{REPORTS}/fig5_augmented_distribution.png"] = figures.histogram(
        dict(zip(after["class"], after["after"], strict=True)),
        title="Figure 5: augmented training distribution")
    path = example_path(m)
    if path is not None:
        face = read_stored(np.flatnonzero(index["path"].to_numpy() == path)[:1])[0]
        files |= example_figures(path, read_input(path), face)
    files["manifest.parquet"] = m
    return files, list(tables)


def example_path(m: pd.DataFrame) -> str | None:
    """The face that Figures 3 and 4 show: the first stored training image that was aligned
    (else the first stored training image; else the first stored image), or None."""
    live = m[(m["status"] == KEPT) & (m["split"] != "")]
    live = live[live["split"] == "train"] if (live["split"] == "train").any() else live
    pick = live[live["aligned"]] if live["aligned"].any() else live
    return None if pick.empty else pick["path"].iloc[0]


def example_figures(path: str, image: np.ndarray, face: np.ndarray) -> dict[str, object]:
    """Figure 3 (an input face and its pre-processed version) and Figure 4 (its noisy
    copies, seed 0)."""
    noisy = [augment.add_noise(face, kind, seed=0) for kind in augment.NOISES]
    return {
        f"{REPORTS}/fig3_preprocessed.png": figures.example_faces(
            [image, face], ["input", "aligned, 96x96, /255"],
            title=f"Figure 3: a pre-processed image ({path})"),
        f"{REPORTS}/fig4_augmented.png": figures.example_faces(
            [face, *noisy], ["pre-processed", *augment.NOISES],
            title="Figure 4: augmented images"),
    }
