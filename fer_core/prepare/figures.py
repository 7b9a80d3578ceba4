"""The paper's figures: class histograms (Figures 2 and 5) and example faces (Figures 3-4).

Each function returns a matplotlib Figure; the result store writes it (store.write_figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import textwrap  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def fitted(title: str, width_in: float, fontsize: float) -> str:
    """``title`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points (a
    character is at most ~0.62 em wide in the default font): a long path never runs past
    the figure's edges."""
    return textwrap.fill(title, max(12, int(width_in * 72 / (0.62 * fontsize))),
                         break_long_words=True)


def histogram(counts: Mapping[str, int] | Sequence[tuple[str, int]], *, title: str):
    """A bar chart of images per class (Figures 2 and 5)."""
    items = list(counts.items()) if isinstance(counts, Mapping) else list(counts)
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    ax.bar_label(bars, fontsize=8)
    ax.set_title(fitted(title, 6.5, 12))  # axes titles are "large": 12 pt
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    fig.tight_layout()
    return fig


def example_faces(images: Sequence[np.ndarray], titles: Sequence[str], *, title: str):
    """A row of faces with a caption each (a pre-processed face; its noisy versions)."""
    width = max(2.2 * len(images), 4.4)
    fig, axes = plt.subplots(1, len(images), figsize=(width, 2.9), squeeze=False,
                             layout="constrained")
    for ax, img, caption in zip(axes[0], images, titles, strict=True):
        ax.imshow(img)
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    fig.suptitle(fitted(title, width - 0.2, 10), fontsize=10)
    return fig
