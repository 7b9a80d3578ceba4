"""The paper's data preparation (sections 4-5) as a Prefect flow, one line per stage."""

# No ``from __future__ import annotations``: Prefect resolves the flow's parameter types
# (typed forms in its UI) in the namespace of the wrapper ``rerun_table`` puts around it.

from pathlib import Path

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core import UsageError, store
from fer_core.config.labels import LabelsConfig
from fer_core.prepare import ingest, subsets
from fer_core.prepare.align import AlignConfig
from fer_core.prepare.config import PrepareConfig, PrepareOptions, build_config
from fer_core.prepare.split import classes_of
from fer_core.store.gc import records_run
from tasks.audit import near_duplicates_task, review_task
from tasks.caching import rerun_table
from tasks.prepare import (
    align_batch_task,
    augment_task,
    duplicates_task,
    ingest_task,
    merge_alignment_task,
    plan_align_batches,
    quality_task,
    read_manifest,
    resize_task,
    reuse_align_batches_task,
    sealed_align_batches,
    split_task,
)
from tasks.reports import publish_artifacts, reports_task
from tasks.save import save_task
from tasks.subsets import all_test_task


class AlignmentIncomplete(UsageError):
    """Some alignment batches failed after their retries (named, with their images, which
    are marked): the user reruns to retry them."""


@records_run("prepare")
def prepare_sets(cfg: PrepareConfig, out_dir: str, store_root: str | None = None, *,
                 retries: int = 2, retry_delay_s: float = 2.0,
                 dask_address: str | None = None,
                 known_classes: tuple[str, ...] | None = None) -> dict:
    """Run every preparation stage of ``cfg`` and save the sets under ``out_dir``.

    ``known_classes``: the classes the data may have (a model's, when it is only scored);
    another class is an error naming it, raised before alignment.
    """
    store_root = store_root or str(Path(out_dir) / "store")
    root = ingest.data_root(cfg.ingest.root)
    manifest = ingest_task(cfg.ingest, store_root)                       # 4: read with OpenCV
    if cfg.all_test:                                                     # (ours) scored only:
        manifest = all_test_task(manifest, store_root)                   #   all of it is test
    if cfg.review.file:                                                  # (ours) a person's
        manifest = review_task(manifest, cfg.review, store_root)         #   relabels, drops
    manifest = duplicates_task(manifest, cfg.dedup, store_root)          # 4: SHA-1 duplicates
    manifest = near = near_duplicates_task(manifest, cfg.near_duplicates, root,  # (ours) near-
                                           store_root)                   #   duplicates, pHash
    manifest = split_task(manifest, cfg.split, store_root, near)         # 4: encode, split 80/20
    #                                                                      (ours) by group
    check_classes(classes_of(read_manifest(manifest)), known_classes, cfg.ingest.root)
    warnings = quality_task(manifest, cfg.quality)                       # (ours) blur per split
    batches = plan_align_batches(manifest, cfg.align)                    # 5: MTCNN alignment
    failed = align_runner(dask_address, cfg.align)(                      #   (a sub-flow of
        manifest, cfg.align, root, store_root, retries, retry_delay_s)   #   batch tasks),
    manifest = merge_alignment_task(manifest, batches, plain(failed), cfg.align,  # merged
                                    store_root)                          #   from the store
    classes = classes_of(read_manifest(manifest))
    resized = resize_task(manifest, cfg.resize, root, store_root,        # 5: 96x96, /255 on load
                          cfg.align.batch_size)                          #   (per align batch)
    augmented = augment_task(resized, classes, cfg.augment, store_root)  # 5: noise augmentation
    counts = save_task(resized, augmented, classes, out_dir, cfg.subsets,  # 5: one-hot, save
                       manifest, store_root)                             #  (+ named subsets)
    warnings = [*warnings, *subset_warnings(out_dir)]
    reports = reports_task(manifest, resized, augmented, classes, root, out_dir, near,
                           store_root)
    publish_artifacts(reports, out_dir)
    result = {"classes": list(classes), "sets": counts, "reports": reports,
              "manifest": str(Path(out_dir) / "manifest.parquet"), "failed_batches": failed,
              "warnings": warnings}
    store.write_json(Path(out_dir) / "prepare.json", {"config": cfg.to_dict(), **result})
    return result


def check_classes(present: tuple[str, ...], known: tuple[str, ...] | None, data: str) -> None:
    unknown = [c for c in present if known is not None and c not in known]
    if unknown:
        raise UsageError(f"{data}: class(es) {unknown} are not among the model's classes "
                         f"{list(known)}; rename them with --class-map old=New or leave them "
                         "out with --classes")


def subset_warnings(out_dir: str) -> list[str]:
    """Listed images that are not in a saved subset, said in the run's log."""
    from prefect import get_run_logger

    lines = subsets.warnings(store.read_sets_meta(out_dir))
    for line in lines:
        get_run_logger().warning(line)
    return lines


def align_runner(dask_address: str | None, cfg: AlignConfig):
    """The alignment sub-flow: ``cfg.workers`` batches at a time, or on a Dask cluster when
    an address is given."""
    if not dask_address:
        return align_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=cfg.workers))
    from prefect_dask import DaskTaskRunner

    return align_flow.with_options(task_runner=DaskTaskRunner(address=dask_address))


def plain(failed: list[dict]) -> list[dict]:
    """The align sub-flow's failed batches as new plain data. Prefect records a sub-flow's
    return value given to a task as an input of kind ``flow_run``, which its UI cannot
    show (the task run list and page stay blank); the batches' results themselves are read
    through the store by the merge task."""
    return [{"index": f["index"], "first": str(f["first"]), "paths": list(f["paths"]),
             "error": str(f["error"])} for f in failed]


@flow(name="align", task_runner=ThreadPoolTaskRunner(max_workers=1))
def align_flow(manifest: store.Ref, cfg: AlignConfig, root: str, store_root: str,
               retries: int, retry_delay_s: float) -> list[dict]:
    """MTCNN over content-defined batches of ``manifest``'s images, each a task with
    retries and backoff. Returns the batches that failed after their retries.

    A batch that still fails does not stop the others: its images are marked in the
    manifest, and the flow fails naming it once the report of what did work is written.
    The sub-flow takes the manifest by reference and plans its batches itself (as its
    parent does, for the merge): a flow run's parameters are stored by the Prefect server,
    which refuses them past 512 KiB, and FER2013's batch lists alone are 2.7 MB.
    """
    batches = plan_align_batches(manifest, cfg)
    return _align_batches(batches, cfg, root, store_root, retries, retry_delay_s)


def _align_batches(batches: list[dict], cfg: AlignConfig, root: str, store_root: str,
                   retries: int, retry_delay_s: float) -> list[dict]:
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    # The batches already in the store are recorded by one task run (shown Cached), not one
    # each: a rerun's cost is a key check per batch, not a task run per batch.
    sealed = sealed_align_batches(batches, cfg, store_root)
    reused = set()
    if sealed:
        state = reuse_align_batches_task(batches, sorted(sealed), len(sealed), cfg, store_root,
                                         return_state=True)
        reused = {int(i) for i, _, _ in state.result()}
    stale = [i for i in range(len(batches)) if i not in reused]
    progress = create_progress_artifact(0.0, key="alignment-progress",
                                        description="MTCNN alignment batches done")
    if not stale:  # nothing to align: torch is not even imported
        update_progress_artifact(progress, 100.0)
        return []
    from fer_core.runtime.device import threads

    task = align_batch_task.with_options(
        retries=retries, retry_delay_seconds=[retry_delay_s * 2**i for i in range(retries)])
    failed = []
    with threads(cfg.threads):
        futures = task.map([batches[i] for i in stale], stale, unmapped(cfg), unmapped(root),
                           unmapped(store_root))
        for n, (i, future) in enumerate(zip(stale, futures, strict=True)):
            future.wait()
            if not future.state.is_completed():
                batch = batches[i]
                failed.append({"index": i, "first": batch["paths"][0],
                               "paths": batch["paths"],
                               "error": f"batch {i} failed: {future.state.message}"})
            update_progress_artifact(progress, 100.0 * (n + 1) / len(stale))
    return failed


def raise_if_incomplete(result: dict, retries: int) -> None:
    if not result["failed_batches"]:
        return
    names = ", ".join(f"#{f['index']} ({len(f['paths'])} images from {f['first']})"
                      for f in result["failed_batches"])
    raise AlignmentIncomplete(
        f"alignment failed for batch(es) {names} after {retries} retries; their images are "
        f"marked in {result['manifest']} (align_error) and the sets are saved without their "
        "alignment. Rerun the same command (or `prefect flow-run retry`) to redo only them.")


@flow(name="prepare", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
@rerun_table
def prepare(data: str, out: str, classes: str | None = None, class_map: str | None = None,
            augment: str = "auto", align: bool = True, config_file: str | None = None,
            store_root: str | None = None, retries: int = 2, retry_delay_s: float = 2.0,
            dask_address: str | None = None, subsets: dict[str, str] | None = None,
            options: PrepareOptions | None = None, labels: LabelsConfig | None = None) -> dict:
    """Prepare a labelled face folder as the paper does: manifest to saved, augmented sets.

    ``subsets``: named subsets of the test split, ``{name: list file}`` (a relative path is
    relative to the data folder), e.g. ``{"test_private": "test_private.txt"}``.
    ``options``: preparation sections; the keys set in them override ``config_file``'s.
    ``labels``: a labels file as the dataset (its paths relative to ``data``); the keys set
    override the config file's ``ingest.labels``, its ``preset`` fills in the rest.
    """
    cfg = build_config(data, file=config_file, classes=classes, class_map=class_map,
                       augment=augment, align=align, subsets=subsets,
                       overrides=options.overrides() if options else None,
                       labels=labels.model_dump(exclude_unset=True) if labels else None)
    result = prepare_sets(cfg, out, store_root, retries=retries, retry_delay_s=retry_delay_s,
                          dask_address=dask_address)
    raise_if_incomplete(result, retries)
    return result
