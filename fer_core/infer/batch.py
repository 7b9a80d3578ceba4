"""Prediction over files as ``fer predict`` runs it: inputs listed, the model loaded once,
batches scored, one results file. The ``predict`` flow runs the same steps as tasks (one per
batch, for deployments); this runs them in-process, so that a photo costs one start of
torch and MTCNN and no Prefect server."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from fer_core import MissingInput, store
from fer_core.infer import video
from fer_core.infer.predict import PredictConfig, load_predictor


def list_files(inputs: Sequence[str]) -> list[str]:
    files = store.list_inputs(inputs)
    if not files:
        raise MissingInput(f"no images or videos found in {list(inputs)}")
    return files


def write_summary(out: str | os.PathLike, parts: list[pd.DataFrame],
                  classes: Sequence[str]) -> dict:
    """The rows of every batch written to ``out``; what was written, and counts by status."""
    rows = pd.concat(parts, ignore_index=True)
    written = video.write_results(out, rows, classes)
    return {**written, "rows": len(rows), "status": video.status_counts(rows),
            "classes": list(classes)}


def predict_paths(inputs: Sequence[str], checkpoint: str | os.PathLike, cfg: PredictConfig,
                  *, out: str | os.PathLike, annotate: str | None = None) -> dict:
    files = list_files(inputs)
    predictor = load_predictor(checkpoint, cfg)
    names = video.output_names(files)
    parts = [video.score_files(batch, predictor, cfg, names=names, annotate_dir=annotate)
             for batch in video.plan_batches(files, cfg.files_per_batch)]
    return write_summary(out, parts, predictor.classes)
