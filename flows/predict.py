"""Prediction on new images, folders and videos as a Prefect flow, one line per stage.

Every setting defaults to None: the checkpoint's face spec and PredictConfig's defaults, the
same ones ``fer predict`` and ``fer serve`` use, so a deployment answers as they do.
"""

from __future__ import annotations

from prefect import flow, runtime, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core.infer import video
from fer_core.infer.predict import predict_config
from fer_core.models.reference import resolve_model
from tasks.predict import list_inputs_task, predict_batch_task, write_results_task


def results_name(out: str | None) -> str:
    """``out``, or a file named after this flow run: runs of one deployment never share one."""
    if out:
        return out
    return f"predictions/{runtime.flow_run.name or runtime.flow_run.id or 'local'}.csv"


@flow(name="predict", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
def predict(inputs: list[str], model: str, out: str | None = None,
            annotate: str | None = None, every: int | None = None,
            batch_size: int | None = None, device: str | None = None,
            margin: float | None = None, min_face_size: int | None = None,
            detect_max_side: int | None = None, files_per_batch: int | None = None,
            threads: int | None = None, detect_workers: int | None = None) -> dict:
    """Every face in ``inputs`` (images, folders searched recursively, videos) classified
    by ``model`` (a shipped model's name, a checkpoint, RUN/train/NAME or RUN); one row per
    face in ``out`` (.csv or .json; default predictions/<flow run name>.csv)."""
    model = str(resolve_model(model))
    cfg = predict_config(every=every, batch_size=batch_size, device=device, margin=margin,
                         min_face_size=min_face_size, detect_max_side=detect_max_side,
                         files_per_batch=files_per_batch, torch_threads=threads,
                         detect_workers=detect_workers)
    out = results_name(out)
    files = list_inputs_task(inputs)                                  # images, folders, videos
    names = video.output_names(files)
    batches = video.plan_batches(files, cfg.files_per_batch)          # a task per batch / video
    parts = predict_batch_task.map(batches, range(len(batches)), unmapped(names),
                                   unmapped(model), unmapped(cfg), unmapped(annotate))
    result = write_results_task(parts.result(), out, model, cfg)     # CSV/JSON, timelines
    print(f"{result['rows']} rows in {out}: {result['status']}")
    return result
