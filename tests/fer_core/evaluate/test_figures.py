"""The tables and figures drawn from scores: what they show, against scikit-learn and hand
counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from fer_core.evaluate.figures import confusion_figure, confusion_frame, curves_figure
from fer_core.evaluate.score import classification_metrics

CLASSES = ("angry", "happy", "sad")
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 1, 0, 0, 1])  # 'sad' is never predicted


def test_confusion_frame_rows_are_true_classes():
    df = confusion_frame([[2, 1, 0], [0, 2, 0], [2, 1, 0]], CLASSES)
    assert list(df.columns) == ["true", *CLASSES]
    assert df.set_index("true").loc["sad"].tolist() == [2, 1, 0]


def cells(ax) -> dict[tuple[int, int], str]:
    """The cell texts by (row, column)."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts}


def test_confusion_figure_shows_the_matrix_row_normalised_with_its_counts():
    cm = confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2])  # the oracle
    fig = confusion_figure(classification_metrics(Y_TRUE, Y_PRED, CLASSES)["confusion"],
                           CLASSES, title="test: accuracy 50.0%")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (3, 3), "square: a row and a column per class"
    # Colours are recall per row: 2/3 1/3 0 | 0 1 0 | 2/3 1/3 0 (worked by hand)
    assert np.allclose(shown, cm / cm.sum(axis=1, keepdims=True))
    assert np.allclose(shown, [[2 / 3, 1 / 3, 0], [0, 1, 0], [2 / 3, 1 / 3, 0]])
    assert ax.images[0].get_clim() == (0, 1)
    # Every cell names its count and its share of the row.
    assert cells(ax) == {(i, j): f"{cm[i, j]}\n{cm[i, j] / cm[i].sum():.0%}"
                         for i in range(3) for j in range(3)}
    assert cells(ax)[(0, 0)] == "2\n67%" and cells(ax)[(1, 1)] == "2\n100%"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert ax.get_title() == "test: accuracy 50.0%"
    assert ax.get_xlim() == pytest.approx((-0.5, 2.5))
    assert ax.get_ylim() == pytest.approx((2.5, -0.5))  # first class on top


def test_a_confusion_figure_over_other_predicted_classes_and_an_empty_row():
    # rows: the data's classes (angry, sad, the latter with no image); columns: the model's
    fig = confusion_figure([[3, 1, 0], [0, 0, 0]], ("angry", "sad"), predicted=CLASSES)
    ax = fig.axes[0]
    assert np.asarray(ax.images[0].get_array()).shape == (2, 3)
    assert np.allclose(ax.images[0].get_array(), [[0.75, 0.25, 0], [0, 0, 0]])
    assert cells(ax)[(0, 0)] == "3\n75%" and cells(ax)[(1, 2)] == "0\n0%" and len(ax.texts) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["angry", "sad"]
    assert ax.get_xlim() == pytest.approx((-0.5, 2.5))
    assert ax.get_ylim() == pytest.approx((1.5, -0.5))


def test_curves_figure_plots_each_history_column_per_epoch():
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9],
                         "train_acc": [0.3, 0.4], "val_acc": [0.3, 0.35],
                         "val_macro_f1": [0.2, 0.3]})
    fig = curves_figure(hist)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "macro-F1"]
    plotted = [{line.get_label(): line.get_ydata().tolist() for line in ax.get_lines()}
               for ax in fig.axes]
    assert plotted == [{"train": [1.0, 0.8], "val": [1.1, 0.9]},
                       {"train": [0.3, 0.4], "val": [0.3, 0.35]}, {"val": [0.2, 0.3]}]
    assert all(line.get_xdata().tolist() == [1, 2] for ax in fig.axes for line in ax.get_lines())


def test_curves_have_integer_epoch_ticks():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9],
                         "train_acc": [0.3, 0.4], "val_acc": [0.3, 0.35],
                         "val_macro_f1": [0.2, 0.3]})
    fig = curves_figure(hist)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize("n", [2, 7, 12])
def test_a_confusion_matrix_is_square(n):
    """Square cells, and a figure about as wide as tall (not a tall strip)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = np.random.default_rng(n)
    fig = confusion_figure(rng.integers(0, 9, (n, n)), [f"class {i}" for i in range(n)],
                           title="t")
    FigureCanvasAgg(fig).draw()
    box = fig.axes[0].get_window_extent()
    assert box.width == pytest.approx(box.height, rel=0.02)
    w, h = fig.get_size_inches()
    assert 0.8 <= w / h <= 1.3
