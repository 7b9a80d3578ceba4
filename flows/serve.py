"""A trained model behind ``fer serve``'s HTTP service, started from Prefect: point it at a
checkpoint, or at a training run folder whose published model (RUN/model/best.pt) it
serves. The flow run lasts as long as the service; cancel it to stop serving."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from fer_core import MissingInput, UsageError
from fer_core.infer.predict import predict_config
from fer_core.models.reference import resolve_model
from fer_core.serve.app import ServeConfig, serve


def checkpoint_of(model: str | None, run_dir: str | None) -> str:
    if (model is None) == (run_dir is None):
        raise UsageError("give exactly one of model (a checkpoint) and run_dir (a run folder "
                         "that fer train or the pipeline wrote)")
    if model is not None:  # a shipped model's name, a checkpoint, RUN/train/NAME, RUN
        return str(resolve_model(model))
    path = Path(run_dir) / "model" / "best.pt"
    if not path.is_file():
        raise MissingInput(f"no checkpoint at {path}")
    return str(path)


@flow(name="serve", log_prints=True)
def serve_model(model: str | None = None, run_dir: str | None = None,
                host: str = "127.0.0.1", port: int = 8000, max_bytes: int = 20 * 2**20,
                device: str | None = None) -> None:
    """Serve ``model``, or the best model of the training run ``run_dir``, over HTTP."""
    serve(checkpoint_of(model, run_dir), host=host, port=port,
          cfg=predict_config(device=device), scfg=ServeConfig(max_bytes=max_bytes))
