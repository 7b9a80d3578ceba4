"""The preparation's step for a dataset that is only scored: all of it is the test subset."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from fer_core.prepare import subsets
from fer_core.store import Ref, stage_files
from tasks.caching import result_dir, task_options


def _all_test_dir(a) -> Path:
    return result_dir(a["store_root"], "all-test", [a["manifest"].sha256], None,
                      [subsets, stage_files])


@task(name="all-test", task_run_name="all-test", **task_options(_all_test_dir))
def all_test_task(manifest: Ref, store_root: str) -> Ref:
    return stage_files.manifest_stage(
        _all_test_dir(locals()), lambda: subsets.all_to_test(stage_files.read_manifest(manifest)))
