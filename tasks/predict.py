"""Thin Prefect tasks over fer_core's prediction (fer_core.infer.predict, fer_core.infer.video)."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from fer_core import store
from fer_core.infer import batch, video
from fer_core.infer.predict import PredictConfig, Predictor, load_predictor

# Predictions are cheap to redo and their inputs are arbitrary files: no result caching.
TASK = {"cache_policy": NONE, "persist_result": False}


@lru_cache(maxsize=2)
def _predictor(checkpoint: str, sha256: str, cfg: PredictConfig) -> Predictor:
    # Keyed by the checkpoint's hash: a best.pt rewritten by training is loaded afresh.
    return load_predictor(checkpoint, cfg)


def predictor(checkpoint: str, cfg: PredictConfig) -> Predictor:
    return _predictor(checkpoint, store.file_sha256(checkpoint), cfg)


@task(name="list-inputs", task_run_name="list-inputs", **TASK)
def list_inputs_task(inputs: list[str]) -> list[str]:
    return batch.list_files(inputs)


@task(name="predict-batch", task_run_name="predict-batch-{index}", **TASK)
def predict_batch_task(files: list[str], index: int, names: dict[str, str], checkpoint: str,
                       cfg: PredictConfig, annotate_dir: str | None) -> pd.DataFrame:
    """Detect and classify every face in a batch of images (or in one video)."""
    return video.score_files(files, predictor(checkpoint, cfg), cfg, names=names,
                             annotate_dir=annotate_dir)


@task(name="write-predictions", task_run_name="write-predictions", **TASK)
def write_results_task(parts: list[pd.DataFrame], out: str, checkpoint: str,
                       cfg: PredictConfig) -> dict:
    return batch.write_summary(out, parts, predictor(checkpoint, cfg).classes)
