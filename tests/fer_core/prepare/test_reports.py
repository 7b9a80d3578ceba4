"""The preparation's Tables and Figures as data: every file under the path it is saved at,
and Figures 3-4 drawn from one example face, read through the readers passed in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_core.prepare import reports
from fer_core.prepare.manifest import DUPLICATE, KEPT, new_rows

CLASSES = ("a", "b")


def prepared(aligned: dict[str, bool] | None = None) -> tuple[pd.DataFrame, pd.DataFrame,
                                                              pd.DataFrame]:
    aligned = aligned or {}
    specs = [("a0", "a", 0, "train"), ("a1", "a", 0, "val"), ("b0", "b", 1, "train"),
             ("b1", "b", 1, "train"), ("b2", "b", 1, "val")]
    m = new_rows([{"path": p, "class": c, "label": lab, "split": s, "subset": "train",
                   "status": KEPT, "sha1": p, "sharpness": 10.0, "aligned": aligned.get(p, False)}
                  for p, c, lab, s in specs]
                 + [{"path": "a0copy", "class": "a", "status": DUPLICATE, "duplicate_of": "a0",
                     "subset": "train", "sha1": "a0"}])
    index = pd.DataFrame({"path": [s[0] for s in specs], "split": [s[3] for s in specs],
                          "label": [s[2] for s in specs], "class": [s[1] for s in specs]})
    plan = pd.DataFrame({"source": [0, 1, 2, 0], "noise": ["none", "none", "none", "speckle"],
                         "label": [0, 1, 1, 0], "class": ["a", "b", "b", "a"],
                         "seed": [1, 2, 3, 4]})
    return m, index, plan


def readers(log: list):
    def read_input(path):
        log.append(("input", path))
        return np.full((30, 20, 3), 100, np.uint8)

    def read_stored(positions):
        log.append(("stored", np.asarray(positions).tolist()))
        return np.full((len(positions), 16, 16, 3), 50, np.uint8)

    return read_input, read_stored


def test_every_table_and_figure_is_under_its_report_path():
    import matplotlib.figure

    m, index, plan = prepared(aligned={"b1": True})
    log = []
    files, tables = reports.report_files(m, index, plan, CLASSES, *readers(log))
    assert tables == ["distribution", "split", "alignment", "augmentation_plan", "augmentation",
                      "sharpness", "label_conflicts", "split_groups"]
    assert set(files) == {*(f"reports/{t}.csv" for t in tables), "reports/fig2_distribution.png",
                          "reports/fig3_preprocessed.png", "reports/fig4_augmented.png",
                          "reports/fig5_augmented_distribution.png", "manifest.parquet"}
    assert all(isinstance(files[k], matplotlib.figure.Figure) for k in files if k.endswith(".png"))
    assert files["manifest.parquet"] is m
    aug = files["reports/augmentation.csv"].set_index("class")
    assert aug.loc["a", "before"] == 1 and aug.loc["a", "after"] == 2  # train index vs plan
    assert aug.loc["b", "before"] == 2 and aug.loc["b", "after"] == 2
    # The example is the aligned training image; its stored row is index position 3.
    assert log == [("stored", [3]), ("input", "b1")]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_example_face_is_the_first_aligned_training_image_else_the_first_one():
    m, _, _ = prepared()
    assert reports.example_path(m) == "a0"
    m, _, _ = prepared(aligned={"a1": True, "b1": True})
    assert reports.example_path(m) == "b1", "aligned, and in train"
    m, _, _ = prepared(aligned={"a1": True})
    assert reports.example_path(m) == "a0", "no aligned training image: the first training one"
    val_only = m.assign(split=m["split"].replace("train", "val"))
    assert reports.example_path(val_only) == "a1"
    assert reports.example_path(m.assign(status="rejected")) is None


def test_no_stored_image_means_no_example_figures_and_no_reads():
    m, index, plan = prepared()
    log = []
    files, _ = reports.report_files(m.assign(split=""), index, plan, CLASSES, *readers(log))
    assert log == [] and "reports/fig3_preprocessed.png" not in files
    assert "reports/fig2_distribution.png" in files
    import matplotlib.pyplot as plt

    plt.close("all")


def test_every_title_lies_inside_its_figure():
    """Figure 3's title holds a long input path: it is wrapped, never cut off at the edges."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    m, index, plan = prepared(aligned={"b1": True})
    long = "fer2013/train/angry/" + "Training_1234567890" * 3 + ".jpg"
    m.loc[m["path"] == "b1", "path"] = long
    index.loc[index["path"] == "b1", "path"] = long
    files, _ = reports.report_files(m, index, plan, CLASSES, *readers([]))
    figs = {k: f for k, f in files.items() if k.endswith(".png")}
    assert long in figs["reports/fig3_preprocessed.png"]._suptitle.get_text().replace("\n", "")
    for name, fig in figs.items():
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        box = fig.bbox
        titles = [fig._suptitle] if fig._suptitle else []
        titles += [ax.title for ax in fig.axes if ax.title.get_text()]
        assert titles, name
        for t in titles:
            ext = t.get_window_extent(renderer)
            assert (ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0
                    and ext.y1 <= box.y1), (name, t.get_text(), ext, box)


def test_every_report_is_named_after_the_paper():
    for n in (1, 2, 3, 4, 5):
        assert sum(t.startswith(f"Table {n}: ") for t in reports.TITLES.values()) == 1
    for n in (2, 3, 4, 5):
        assert sum(t.startswith(f"Figure {n}: ") for t in reports.TITLES.values()) == 1
    assert reports.TITLES["distribution"] == ("Table 1: distribution before and after SHA-1 "
                                              "duplicate removal")
