"""Content keys for stage results: what a stage read, how it was configured, and its code.

A key is the hash of (stage name, the content hashes of its inputs, its config, and the
source of the fer_core modules it runs). Same key, same result: the result store reuses
a result whose files are all present and whole, and recomputes it otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

import fer_core

# Every stage runs on top of these; a change in any of them invalidates all results.
_SHARED = ("manifest", "store", "cache")


@cache
def module_source_hash(name: str) -> str:
    """The hash of a fer_core module's source (every file of it, for a package)."""
    base = Path(fer_core.__file__).parent / name
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def code_version(modules: Iterable[str | ModuleType]) -> str:
    names = sorted({m.__name__.rsplit(".", 1)[-1] if isinstance(m, ModuleType) else m
                    for m in (*modules, *_SHARED)})
    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}:{module_source_hash(name)}\n".encode())
    return h.hexdigest()


def _plain(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def stage_key(stage: str, *, inputs: Sequence[str], config=None,
              modules: Iterable[str | ModuleType] = ()) -> str:
    payload = {"stage": stage, "inputs": list(inputs), "config": _plain(config),
               "code": code_version(modules)}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
