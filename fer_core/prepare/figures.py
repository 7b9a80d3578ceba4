"""The paper's figures: class histograms (Figures 2 and 5) and example faces (Figures 3-4).

Each function returns a matplotlib Figure; the result store writes it (store.write_figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def histogram(counts: Mapping[str, int] | Sequence[tuple[str, int]], *, title: str):
    """A bar chart of images per class (Figures 2 and 5)."""
    items = list(counts.items()) if isinstance(counts, Mapping) else list(counts)
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    ax.bar_label(bars, fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    fig.tight_layout()
    return fig


def example_faces(images: Sequence[np.ndarray], titles: Sequence[str], *, title: str):
    """A row of faces with a caption each (a pre-processed face; its noisy versions)."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.6), squeeze=False)
    for ax, img, caption in zip(axes[0], images, titles, strict=True):
        ax.imshow(img)
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
