"""The tables and figures drawn from scores (pure: returned, never written): the confusion
matrix as a frame and as a figure, per-class scores, training curves, trainings compared."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

__all__ = ["confusion_frame", "per_class_frame", "confusion_figure", "curves_figure",
           "compare_figure"]


def confusion_frame(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                    predicted: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows = true class, columns = predicted class (``predicted``, default the same
    classes), first column names the true class."""
    df = pd.DataFrame(np.asarray(confusion, dtype=np.int64),
                      columns=list(classes if predicted is None else predicted))
    df.insert(0, "true", list(classes))
    return df


def per_class_frame(metrics: dict) -> pd.DataFrame:
    return pd.DataFrame([{"class": c, **v} for c, v in metrics["per_class"].items()])


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], *,
                     title: str = "", predicted: Sequence[str] | None = None) -> Figure:
    """Row-normalised confusion matrix (recall on the diagonal), counts in the cells;
    ``predicted`` names the columns when they are not ``classes``."""
    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    cols = list(classes if predicted is None else predicted)
    n, k = len(classes), len(cols)
    # Square cells, and room for the rotated column names below and the colour bar beside:
    # the figure comes out about as wide as tall.
    fig = Figure(figsize=(0.9 * k + 2.6, 0.9 * n + 2.0))
    ax = fig.add_subplot()
    # scikit-learn draws the matrix; its cell texts hold one number and its ticks assume a
    # square matrix, so the cells (count and rate) and the ticks are set here.
    disp = ConfusionMatrixDisplay(rates, display_labels=list(classes)).plot(
        ax=ax, include_values=False, cmap="Blues", colorbar=False,
        im_kw={"vmin": 0, "vmax": 1})
    ax.set_xticks(range(k), cols, rotation=45, ha="right")
    ax.set_yticks(range(n), list(classes))
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{rates[i, j]:.0%}", ha="center", va="center",
                    fontsize=8, color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(disp.im_, ax=ax, fraction=0.046)
    ax.set_title(title)
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame) -> Figure:
    """Loss, accuracy and macro-F1 per epoch, train against validation."""
    fig = Figure(figsize=(13, 3.8))
    panels = (("loss", "train_loss", "val_loss"), ("accuracy", "train_acc", "val_acc"),
              ("macro-F1", None, "val_macro_f1"))
    for k, (title, train_col, val_col) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        if train_col:
            ax.plot(history["epoch"], history[train_col], marker=".", label="train")
        ax.plot(history["epoch"], history[val_col], marker=".", label="val")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def compare_figure(histories: dict[str, pd.DataFrame]) -> Figure:
    """Validation accuracy and macro-F1 per epoch of several trainings (``fer compare``)."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for name, h in histories.items():
        for ax, col in zip(axes, ("val_acc", "val_macro_f1"), strict=True):
            if col in h:
                ax.plot(h["epoch"], h[col], marker="o", markersize=3, label=name)
    for ax, title in zip(axes, ("validation accuracy", "validation macro-F1"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if histories:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
