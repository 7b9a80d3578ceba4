"""Evaluation: predictions, metrics (scikit-learn) and the reports stored from them.

Prediction and metric functions are pure, and so are the tables and figures drawn from
them (``fer_core.evaluate.figures``); ``write_reports`` and ``write_cross_reports`` are the
places that store them, through ``fer_core.store``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from torch import nn

from fer_core import UsageError, store
from fer_core.evaluate.figures import confusion_figure, confusion_frame, curves_figure
from fer_core.evaluate.logits import predict_logits, predict_proba, to_input  # noqa: F401

REPORTS = "reports"


# ---------------------------------------------------------------- metrics (pure)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                           classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Every class counts in the macro average, also one never predicted (its F1 is 0).
    """
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]),
                          "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate(model: nn.Module, saved: store.SavedSet, *,
             device: torch.device | str | None = None,
             batch_size: int = 256, tta: str = "none") -> dict:
    """``classification_metrics`` of ``model`` on a saved split."""
    proba = predict_proba(model, saved.images, device=device, batch_size=batch_size,
                          tta=tta)
    return classification_metrics(saved.targets, proba.argmax(axis=1), saved.classes)


def evaluate_sets(model: nn.Module, sets: Mapping[str, store.SavedSet], *,
                  device: torch.device | str | None = None, batch_size: int = 256,
                  tta: str = "none") -> dict[str, dict]:
    """``classification_metrics`` on each of ``sets`` (in their order). A named subset
    (``test_private``) whose parent split is among them is scored from the parent's
    predictions, so its images are not classified twice."""
    predicted: dict[str, np.ndarray] = {}

    def argmax_of(name: str) -> np.ndarray:
        if name not in predicted:
            predicted[name] = predict_logits(
                model, sets[name].images, device=device, batch_size=batch_size,
                tta=tta).argmax(dim=1).cpu().numpy()
        return predicted[name]

    metrics = {}
    for name, saved in sets.items():
        from_parent = saved.parent is not None and saved.parent in sets
        y_pred = argmax_of(saved.parent)[saved.rows] if from_parent else argmax_of(name)
        metrics[name] = classification_metrics(saved.targets, y_pred, saved.classes)
    return metrics


# ------------------------------------------------- another dataset, some classes (pure)

ALL_CLASSES, PRESENT_CLASSES = "all_classes", "present_classes"


def present_class_metrics(logits: np.ndarray, y_true: np.ndarray,
                          model_classes: Sequence[str],
                          present: Sequence[str]) -> dict[str, dict]:
    """Scores of a model on data holding only the classes ``present`` (a subset of
    ``model_classes``); ``y_true`` and the columns of ``logits`` index ``model_classes``.

    Both are scored over the present classes (accuracy, macro-F1 over them, per-class):
    ``all_classes`` takes the model's argmax over all its classes (a face called a class
    the data lacks is an error); ``present_classes`` takes the argmax over the present
    classes only. The first's confusion has a column per model class, the second's per
    present class.
    """
    model_classes, present = list(model_classes), list(present)
    missing = [c for c in present if c not in model_classes]
    if missing:
        raise UsageError(f"class(es) {missing} are not among the model's {model_classes}")
    idx = np.array([model_classes.index(c) for c in present], dtype=np.int64)
    logits = np.asarray(logits)
    full = logits.argmax(axis=1)
    restricted = idx[logits[:, idx].argmax(axis=1)]
    absent = [c for c in model_classes if c not in present]
    out = {ALL_CLASSES: _scored_over(y_true, full, idx, np.arange(len(model_classes)),
                                     model_classes),
           PRESENT_CLASSES: _scored_over(y_true, restricted, idx, idx, model_classes)}
    out[ALL_CLASSES]["predicted_absent"] = int(np.isin(full, idx, invert=True).sum())
    out[ALL_CLASSES]["absent_classes"] = absent
    return out


def _scored_over(y_true, y_pred, rows: np.ndarray, cols: np.ndarray,
                 names: Sequence[str]) -> dict:
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=rows, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=rows, average="macro",
                                   zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {names[c]: {"precision": float(p[i]), "recall": float(r[i]),
                                 "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(rows)},
        # rows: the true (present) classes; columns: the classes a prediction can be
        "confusion": confusion_matrix(y_true, y_pred, labels=cols)[
            [list(cols).index(c) for c in rows]].tolist(),
        "true_classes": [names[c] for c in rows],
        "predicted_classes": [names[c] for c in cols],
    }


# ---------------------------------------------------------------- reports (writes)


def write_reports(out_dir: str | os.PathLike, metrics: dict[str, dict],
                  history: pd.DataFrame | None, classes: Sequence[str], *,
                  extra: dict | None = None) -> dict[str, store.Ref]:
    """``reports/``: metrics.json, confusion_<split>.*, and with a ``history`` (training's)
    history.csv and training_curves.png. Without one (a later evaluation) training's
    history and curves are left as they are."""
    reports = Path(out_dir) / REPORTS
    # Top level: the held-out test split's scores when there is one (else the first split),
    # so `metrics.json["macro_f1"]` is the headline figure; every split stays under its name,
    # and "splits" names them (val, test, then the named subsets such as test_private).
    headline = "test" if "test" in metrics else next(iter(metrics), None)
    top = ({"split": headline, "headline": headline_note(headline),
            **{k: metrics[headline][k] for k in ("accuracy", "macro_f1", "per_class")}}
           if headline else {})
    refs = {"metrics": store.write_json(reports / "metrics.json",
                                        {**(extra or {}), "classes": list(classes), **top,
                                         "splits": list(metrics), **metrics})}
    if history is not None:
        refs["history"] = store.write_csv(reports / "history.csv", history)
        if len(history):
            refs["curves"] = store.write_figure(reports / "training_curves.png",
                                                curves_figure(history))
    for split, m in metrics.items():
        refs.update(_write_confusion(reports, split, m, classes))
    return refs


def headline_note(split: str | None) -> str:
    """What the headline figure is: a held-out test score, or validation, which is not
    held out (it chose the epoch and stopped training)."""
    if split == "test":
        return "held-out test split"
    return (f"{split}: validation, which chose the epoch (no held-out test split: not an "
            "unbiased estimate)") if split == "val" else f"{split}"


def headline_line(metrics_json: Mapping) -> str | None:
    """The CLI's last line: the headline figure and what it is."""
    split = metrics_json.get("split")
    if split is None or split not in metrics_json:
        return None
    m = metrics_json[split]
    return (f"headline ({headline_note(split)}): accuracy {m['accuracy']:.4f}  "
            f"macro-F1 {m['macro_f1']:.4f}")


def split_metrics(metrics_json: Mapping) -> dict[str, dict]:
    """The per-split entries of a metrics.json (val, test, subsets), in report order."""
    names = metrics_json.get("splits") or [s for s in ("train", "val", "test")
                                            if s in metrics_json]
    return {s: metrics_json[s] for s in names}


def _write_confusion(reports: Path, name: str, m: Mapping, classes: Sequence[str],
                     predicted: Sequence[str] | None = None) -> dict[str, store.Ref]:
    return {
        f"confusion_{name}_csv": store.write_csv(
            reports / f"confusion_{name}.csv", confusion_frame(m["confusion"], classes,
                                                               predicted)),
        f"confusion_{name}_png": store.write_figure(
            reports / f"confusion_{name}.png",
            confusion_figure(m["confusion"], classes, predicted=predicted,
                             title=f"{name}: accuracy {m['accuracy']:.1%}, "
                                   f"macro-F1 {m['macro_f1']:.3f}")),
    }


CROSS = "cross"


def cross_reports_dir(run_dir: str | os.PathLike, name: str) -> Path:
    return Path(run_dir) / REPORTS / CROSS / name


def write_cross_reports(run_dir: str | os.PathLike, name: str, scores: dict[str, dict], *,
                        extra: dict | None = None) -> dict[str, store.Ref]:
    """Another dataset's scores (``present_class_metrics``) under
    RUN_DIR/reports/cross/<name>/ (metrics.json, confusion_{all,present}_classes.*), and
    its line in RUN_DIR/reports/cross/summary.json; training's reports are not touched."""
    out = cross_reports_dir(run_dir, name)
    head = scores[ALL_CLASSES]
    present = head["true_classes"]
    refs = {"metrics": store.write_json(out / "metrics.json", {
        **(extra or {}), "name": name, "classes": present,
        "absent_classes": head["absent_classes"], "n": head["n"],
        # headline: the model as it is, every class it knows open to it
        "scoring": ALL_CLASSES, **{k: head[k] for k in ("accuracy", "macro_f1", "per_class")},
        **scores})}
    for variant, m in scores.items():
        refs.update(_write_confusion(out, variant, m, m["true_classes"],
                                     m["predicted_classes"]))
    summary_path = out.parent / "summary.json"
    line = {**{k: v for k, v in (extra or {}).items() if k in ("data", "checkpoint")},
            "n": head["n"], "classes": present, "absent_classes": head["absent_classes"],
            "reports": str(out.relative_to(Path(run_dir) / REPORTS)),
            **{v: {k: m[k] for k in ("accuracy", "macro_f1")} for v, m in scores.items()}}
    # Several evaluations of one run may write their lines at once: under its lock.
    store.update_json(summary_path, lambda summary: summary.update({name: line}))
    refs["summary"] = store.ref(summary_path)
    return refs
