"""The whole method end to end: preparation (sections 4-5), training and evaluation."""

# No ``from __future__ import annotations``: Prefect resolves the flow's parameter types
# (typed forms in its UI) in the namespace of the wrapper ``rerun_table`` puts around it.

from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core import store
from fer_core.config.train import TrainConfig
from fer_core.prepare.config import PrepareOptions, build_config
from flows.prepare import prepare_sets, raise_if_incomplete
from flows.train import train_and_evaluate, train_config
from tasks.caching import rerun_table


@flow(name="pipeline", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
@rerun_table
def pipeline(data: str, out: str, classes: str | None = None, class_map: str | None = None,
             augment: str = "auto", align: bool = True, model: str | None = None,
             epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
             device: str | None = None, seed: int | None = None,
             prepare_config: str | None = None, train_config_file: str | None = None,
             store_root: str | None = None, retries: int = 2,
             dask_address: str | None = None, prepare: PrepareOptions | None = None,
             train: TrainConfig | None = None, mlflow: str | None = None) -> dict:
    """Labelled face folder -> aligned, balanced sets -> trained, evaluated classifier.

    ``prepare`` (preparation sections) and ``train`` (TrainConfig keys): the keys set in
    them override the config files'; the parameters above (when given) override both.
    ``mlflow``: an MLflow tracking URI the training is also logged to (default
    $MLFLOW_TRACKING_URI)."""
    prep_cfg = build_config(data, file=prepare_config, classes=classes, class_map=class_map,
                            augment=augment, align=align,
                            overrides=prepare.overrides() if prepare else None)
    tcfg = train_config(train_config_file, train, model=model, epochs=epochs,
                        batch_size=batch_size, lr=lr, device=device, random_state=seed)
    prepared = prepare_sets(prep_cfg, out, store_root, retries=retries,
                            dask_address=dask_address)
    raise_if_incomplete(prepared, retries)  # never train on half-aligned sets
    trained = train_and_evaluate(out, tcfg, store_root, sets=prepared["sets"], mlflow=mlflow)
    store.write_json(Path(out) / "pipeline.json", {
        "prepare": prep_cfg.to_dict(), "train": tcfg.to_dict(), **prepared, **trained})
    return {**prepared, **trained}
