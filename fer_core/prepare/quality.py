"""Image sharpness per split: catches a training set degraded unlike the test set.

A classifier trained on blurred faces and scored on sharp ones measures the blur, not
the method: FER2013 as shipped in ../shared has every ``train/`` image blurred (about a
3 px Gaussian at 48x48) and sharp ``test/`` images. Nothing in the labels shows it, so
ingestion records each image's sharpness and the prepare flow warns when the splits'
medians are far apart.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from fer_core.config.quality import QualityConfig
from fer_core.prepare.manifest import KEPT

# Every image is resized to the pipeline's own resolution first, so images of different
# sizes are scored on one scale (the Laplacian's variance depends on the pixel grid).
SHARPNESS_SIZE = 96


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image resized to 96x96 (higher is sharper)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape[:2]
    interp = cv2.INTER_AREA if min(h, w) > SHARPNESS_SIZE else cv2.INTER_LINEAR
    grey = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=interp)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharpness_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per split of the kept images: count and the 10th/50th/90th sharpness percentiles."""
    live = manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")
                    & manifest["sharpness"].notna()]
    rows = []
    for name, group in live.groupby("split", sort=True):
        p10, p50, p90 = np.percentile(group["sharpness"], [10, 50, 90])
        rows.append({"split": name, "images": len(group), "sharpness_p10": round(p10, 2),
                     "sharpness_median": round(p50, 2), "sharpness_p90": round(p90, 2)})
    return pd.DataFrame(rows, columns=["split", "images", "sharpness_p10", "sharpness_median",
                                       "sharpness_p90"])


def sharpness_warnings(table: pd.DataFrame,
                       cfg: QualityConfig = QualityConfig()) -> list[str]:  # noqa: B008
    """One line when the sharpest and the blurriest split differ by more than the ratio."""
    big = table[table["images"] >= cfg.min_images]
    if len(big) < 2:
        return []
    lo, hi = big.loc[big["sharpness_median"].idxmin()], big.loc[big["sharpness_median"].idxmax()]
    ratio = hi["sharpness_median"] / max(lo["sharpness_median"], 1e-9)
    if ratio <= cfg.max_sharpness_ratio:
        return []
    return [f"the {lo['split']} images are much blurrier than the {hi['split']} images "
            f"(median sharpness {lo['sharpness_median']:g} vs {hi['sharpness_median']:g}, "
            f"{ratio:.0f}x; see reports/sharpness.csv): a model trained on one and scored "
            "on the other measures the blur; check how the data was exported"]


def split_warnings(manifest: pd.DataFrame, cfg: QualityConfig = QualityConfig()  # noqa: B008
                   ) -> list[str]:
    """The quality stage: ``sharpness_warnings`` of the manifest's ``sharpness_table``."""
    return sharpness_warnings(sharpness_table(manifest), cfg)
