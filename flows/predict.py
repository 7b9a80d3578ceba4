"""Prediction on new images, folders and videos as a Prefect flow, one line per stage."""

from __future__ import annotations

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core.infer import video
from fer_core.infer.predict import PredictConfig
from tasks.predict import list_inputs_task, predict_batch_task, write_results_task


@flow(name="predict", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
def predict(inputs: list[str], model: str, out: str = "predictions.csv",
            annotate: str | None = None, every: int = 1, batch_size: int = 64,
            device: str = "auto", margin: float = 0.2, min_face_size: int = 40,
            detect_max_side: int = 0, files_per_batch: int = 64, threads: int = 1,
            detect_workers: int = 2) -> dict:
    """Every face in ``inputs`` (images, folders searched recursively, videos) classified
    by the checkpoint ``model``; one row per face in ``out`` (.csv or .json)."""
    if min(every, batch_size, files_per_batch, detect_workers) < 1 or threads < 0:
        raise ValueError("every, batch_size, files_per_batch and detect_workers must be at "
                         "least 1, threads at least 0")
    cfg = PredictConfig(every=every, batch_size=batch_size, device=device, margin=margin,
                        min_face_size=min_face_size, detect_max_side=detect_max_side,
                        files_per_batch=files_per_batch, torch_threads=threads,
                        detect_workers=detect_workers)
    files = list_inputs_task(inputs)                                  # images, folders, videos
    names = video.output_names(files)
    batches = video.plan_batches(files, cfg.files_per_batch)          # a task per batch / video
    parts = predict_batch_task.map(batches, range(len(batches)), unmapped(names),
                                   unmapped(model), unmapped(cfg), unmapped(annotate))
    result = write_results_task(parts.result(), out, model, cfg)     # CSV/JSON, timelines
    print(f"{result['rows']} rows in {out}: {result['status']}")
    return result
