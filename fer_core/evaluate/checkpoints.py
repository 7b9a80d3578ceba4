"""A saved checkpoint scored on saved sets, with its face spec's TTA (what ``fer evaluate``
reports): on a run folder's evaluation splits, or on another dataset prepared as one test
set, over the classes that dataset holds."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from fer_core import UsageError, store
from fer_core.evaluate import majority, score
from fer_core.models import checkpoint
from fer_core.models.spec import face_spec
from fer_core.runtime.device import resolve_device


def _loaded(checkpoint_path: str | os.PathLike):
    model, meta = checkpoint.load_model(checkpoint_path)
    device = resolve_device("auto")
    return model.to(device), meta, device, face_spec(meta)


def run_sets(run_dir: str | os.PathLike, classes: Sequence[str],
             splits: Sequence[str] | None = None) -> dict[str, store.SavedSet]:
    """The non-empty saved sets of ``run_dir`` (default: its evaluation splits), each checked
    to hold the model's ``classes``."""
    sets = {}
    for split in splits if splits is not None else store.evaluation_splits(run_dir):
        try:
            saved = store.load_set(run_dir, split)
        except FileNotFoundError:
            continue
        if len(saved.labels) == 0:
            continue
        if tuple(saved.classes) != tuple(classes):
            raise UsageError(f"{run_dir}: classes {saved.classes} differ from the model's "
                             f"{list(classes)}; prepare it with the model's classes")
        sets[split] = saved
    return sets


def score_run(checkpoint_path: str | os.PathLike, run_dir: str | os.PathLike,
              splits: Sequence[str] | None = None, *, tta: str | None = None
              ) -> tuple[dict[str, dict], dict]:
    """(metrics per split, the checkpoint's meta); a file of votes' splits say the faces
    their majority labels leave out (``majority.annotate``). ``tta``: another TTA than the
    face spec's (to choose one on validation)."""
    model, meta, device, spec = _loaded(checkpoint_path)
    sets = run_sets(run_dir, meta["classes"], splits)
    metrics = score.evaluate_sets(model, sets, device=device, tta=tta or spec.tta)
    return majority.annotate(metrics, run_dir), meta


def score_other(checkpoint_path: str | os.PathLike, prepared_dir: str | os.PathLike
                ) -> tuple[dict[str, dict], dict]:
    """(scores with the model's full argmax and restricted to the dataset's classes, meta)."""
    model, meta, device, spec = _loaded(checkpoint_path)
    saved = store.load_set(prepared_dir, "test")
    model_classes = list(meta["classes"])
    # The data's labels index its own (sorted) classes; score in the model's indices.
    to_model = [model_classes.index(c) for c in saved.classes]
    logits = score.predict_logits(model, saved.images, device=device,
                                  tta=spec.tta)
    scores = score.present_class_metrics(logits.cpu().numpy(),
                                         np.asarray(to_model)[saved.targets],
                                         model_classes, saved.classes)
    return scores, meta
