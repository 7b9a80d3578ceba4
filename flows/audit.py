"""(ours) The dataset audit of a prepared run: likely label errors, as a Prefect flow."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core import store
from fer_core.audit import labels as audit_core
from fer_core.config.audit import AuditConfig
from fer_core.prepare import ingest
from tasks.audit import label_issues_task, out_of_sample_task


@flow(name="audit", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
def audit(run_dir: str, config_file: str | None = None, store_root: str | None = None,
          review: str | None = None, model: str | None = None, folds: int | None = None,
          epochs: int | None = None, device: str | None = None,
          options: AuditConfig | None = None) -> dict:
    """Likely label errors among a run's training images: k-fold out-of-sample probabilities
    of a fast model, ranked by cleanlab. ``review`` (relabel | drop) also writes the list a
    person edits and `fer prepare --config` applies (``review: {file: ...}``).
    ``options``: any AuditConfig keys; those set override ``config_file``'s, and ``model``,
    ``folds``, ``epochs`` and ``device`` (when given) override both."""
    run = Path(run_dir)
    given = {"model": model, "folds": folds, "epochs": epochs, "device": device}
    cfg = audit_core.load_config(config_file, **{
        **(options.model_dump(exclude_unset=True) if options else {}),
        **{k: v for k, v in given.items() if v is not None}})
    prepared = store.read_json(run / "prepare.json")
    root = ingest.data_root(prepared["config"]["ingest"]["root"])
    manifest = store.ref(run / "manifest.parquet")
    probs = out_of_sample_task(manifest, cfg, root, store_root or str(run / "store"))  # k-fold
    result = label_issues_task(probs, cfg, root, run_dir, review)                     # cleanlab
    publish_audit_artifacts(result, run_dir)
    store.write_json(run / "audit.json", {"config": cfg.__dict__ | {"splits": list(cfg.splits)},
                                          **result})
    return result


def publish_audit_artifacts(result: dict, run_dir: str, top: int = 100) -> None:
    """The likeliest errors as a table, and the per-class image grid, in the Prefect UI."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from tasks.reports import figures_markdown

    issues = store.read_csv(result["reports"]["label_issues"], dtype=str, keep_default_na=False)
    create_table_artifact(issues.head(top).to_dict("records"), key="label-issues",
                          description=f"the {top} likeliest of {len(issues)} label issues "
                          f"({result['reports']['label_issues']})")
    create_markdown_artifact(figures_markdown(f"Label audit of `{run_dir}`",
                                              [Path(result["reports"]["figure"])]),
                             key="label-issues-figure",
                             description="the likeliest label errors of each class")
