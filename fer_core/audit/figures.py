"""(ours) Image grids of the dataset audit: near-duplicate pairs side by side, and the likeliest
label errors of each class. Each returns a matplotlib Figure (store.write_figure saves it)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pair_grid(pairs: Sequence[tuple[np.ndarray, np.ndarray]], captions: Sequence[str], *,
              title: str, per_row: int = 4):
    """Each pair as two faces side by side, captioned; ``per_row`` pairs to a row."""
    n = max(1, len(pairs))
    rows = -(-n // per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(2.0 * 2 * per_row, 2.3 * rows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, ((a, b), caption) in enumerate(zip(pairs, captions, strict=True)):
        r, c = divmod(k, per_row)
        axes[r, 2 * c].imshow(a, cmap="gray")
        axes[r, 2 * c + 1].imshow(b, cmap="gray")
        axes[r, 2 * c].set_title(caption, fontsize=7, loc="left")
    if not pairs:
        axes[0, 0].set_title("no pairs", fontsize=9, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def class_rows(faces: dict[str, list[tuple[np.ndarray, str]]], *, title: str, per_row: int = 8):
    """One row per class: its faces (image, caption), left to right."""
    rows = max(1, len(faces))
    fig, axes = plt.subplots(rows, per_row, figsize=(1.6 * per_row, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (cls, items) in enumerate(faces.items()):
        for c, (img, caption) in enumerate(items[:per_row]):
            axes[r, c].imshow(img, cmap="gray")
            axes[r, c].set_title(caption, fontsize=6)
        axes[r, 0].text(-0.15, 0.5, cls, transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
