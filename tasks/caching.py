"""Prefect caching by content: a task's key is where its result lives in the store.

That location is a hash of what the task reads (input content hashes, not paths), its
parameters, and the source of the fer_core modules it runs (fer_core.cache). A task is a
cache hit only while that result folder is sealed and whole. A result folder that is
damaged (a deleted or truncated file), or deleted after Prefect recorded it, gets a key
never seen before, so Prefect runs the task, which recomputes it: a record left from
before is never trusted.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fer_core import store
from fer_core.cache import stage_key


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
    """Task options for a stage: content-keyed cache with its small Ref persisted."""
    if locate is None:
        from prefect.cache_policies import NONE

        return {"cache_policy": NONE, "persist_result": False}
    return {"cache_key_fn": stored_result_key(locate), "persist_result": True}
