"""Prefect caching by content: a task's key is where its result lives in the store.

That location is a hash of what the task reads (input content hashes, not paths), its
parameters, the source of the fer_core modules it runs (the closure of the ones it names,
found by fer_core.store.keys) and the versions of the libraries among them. A task is a
cache hit only while that result folder is sealed and whole. A result folder that is
damaged (a deleted or truncated file), or deleted after Prefect recorded it, gets a key
never seen before, so Prefect runs the task, which recomputes it: a record left from
before is never trusted.

What a run did is shown in the Prefect UI: a flow decorated with ``@rerun_table`` ends
with the table artifact ``stages``, every stage task with ``cached`` or ``ran`` and its
seconds (recorded by a completion/failure hook that ``task_options`` gives every stage).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fer_core import store
from fer_core.store.keys import stage_key


def result_dir(store_root: str, stage: str, inputs: list[str], config, modules) -> Path:
    return store.result_dir(store_root, stage, stage_key(stage, inputs=inputs, config=config,
                                                         modules=modules))


def stored_result_key(locate: Callable[[dict[str, Any]], Path]):
    """A Prefect ``cache_key_fn`` over ``locate(task inputs) -> result folder``."""

    def key(ctx, inputs: dict[str, Any]) -> str:
        out = locate(inputs)
        base = "fer-" + hashlib.sha256(str(out.resolve()).encode()).hexdigest()
        if store.cached(out, full=False) is not None:
            return base
        if out.exists() or _recorded(ctx, base):
            # Damaged, or deleted after Prefect recorded it: that record must not be used.
            return f"{base}-recompute-{uuid.uuid4().hex}"
        return base  # never computed: compute it and record it under its key

    return key


def _recorded(ctx, key: str) -> bool:
    result_store = getattr(ctx, "result_store", None)
    try:
        return bool(result_store is not None and result_store.exists(key))
    except Exception:  # noqa: BLE001 - an unreachable record store means: do not trust it
        return True


def task_options(locate: Callable[[dict[str, Any]], Path] | None) -> dict:
    """Task options for a stage: content-keyed cache with its small Ref persisted, and the
    hooks that record it for the rerun table."""
    hooks = {"on_completion": [record_stage], "on_failure": [record_stage]}
    if locate is None:
        from prefect.cache_policies import NONE

        return {"cache_policy": NONE, "persist_result": False, **hooks}
    return {"cache_key_fn": stored_result_key(locate), "persist_result": True, **hooks}


# --- the rerun table -------------------------------------------------------------------------

RERUN_TABLE_KEY = "stages"
_recorders: list[list[dict]] = []
_recorders_lock = threading.Lock()


def record_stage(task, task_run, state) -> None:
    """A task hook: the finished task run (its stage, state and seconds) to every running
    ``rerun_table``."""
    start = getattr(task_run, "start_time", None)
    seconds = (state.timestamp - start).total_seconds() if start and state.timestamp else 0.0
    row = {"stage": task.name, "run": task_run.name, "state": state.name,
           "seconds": max(0.0, seconds)}
    with _recorders_lock:
        for records in _recorders:
            records.append(row)


class _QuietHook(logging.Filter):
    """Prefect logs two lines per hook call; for the recorder, on every task, that is noise
    (and a log write to the API each)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage().find(f"'{record_stage.__name__}'") < 0


logging.getLogger("prefect.task_runs").addFilter(_QuietHook())


def stage_rows(records: list[dict]) -> list[dict]:
    """One row per stage, in the order stages first finished: ``cached`` or ``ran`` (or
    e.g. ``ran 1 of 141, cached 140`` for a mapped stage), runs and seconds."""
    stages: dict[str, list[dict]] = {}
    for r in records:
        stages.setdefault(r["stage"], []).append(r)
    rows = []
    for stage, runs in stages.items():
        counts: dict[str, int] = {}
        for r in runs:
            word = ("cached" if r["state"] == "Cached" else
                    "ran" if r["state"] == "Completed" else r["state"].lower())
            counts[word] = counts.get(word, 0) + 1
        if len(counts) == 1:
            status = next(iter(counts))
        else:
            status = ", ".join(f"{w} {n} of {len(runs)}" for w, n in
                               sorted(counts.items(), key=lambda kv: (kv[0] != "ran", kv[0])))
        rows.append({"stage": stage, "status": status, "runs": len(runs),
                     "seconds": round(sum(r["seconds"] for r in runs), 2)})
    return rows


def publish_rerun_table(records: list[dict]) -> list[dict]:
    from prefect.artifacts import create_table_artifact

    rows = stage_rows(records)
    create_table_artifact(rows, key=RERUN_TABLE_KEY,
                          description=f"What this run did: {stages_summary(rows)}")
    return rows


def stages_summary(rows: list[dict]) -> str:
    """E.g. "14 stages: all ran", "14 stages: 3 ran, 11 cached", "14 stages: 12 cached,
    1 partly cached, 1 failed" (a mapped stage whose runs were part cached is partly)."""
    counts: dict[str, int] = {}
    for r in rows:
        kind = r["status"]
        if kind not in ("ran", "cached"):
            kind = "partly cached" if "cached" in kind else kind.split()[0]
        counts[kind] = counts.get(kind, 0) + 1
    total = f"{len(rows)} stage{'' if len(rows) == 1 else 's'}"
    if len(counts) == 1:
        return f"{total}: {'all ' if len(rows) > 1 else ''}{next(iter(counts))}"
    return f"{total}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())


def rerun_table(fn):
    """Decorate a flow's function (under ``@flow``): when it ends, its stages go to the
    ``stages`` table artifact of its run."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        records: list[dict] = []
        with _recorders_lock:
            _recorders.append(records)
        try:
            return fn(*args, **kwargs)
        finally:
            with _recorders_lock:
                _recorders[:] = [r for r in _recorders if r is not records]
            try:
                publish_rerun_table(records)
            except Exception as e:  # noqa: BLE001 - the table never hides the run's outcome
                logging.getLogger("fer").warning("rerun table not published: %s", e)

    return wrapper
