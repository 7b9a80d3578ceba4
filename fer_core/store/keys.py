"""Content keys for stage results: what a stage read, how it was configured, and its code.

A key is the hash of (stage name, the content hashes of its inputs, its config, the source
of the fer_core modules it runs, and the versions of the libraries among them that shape
results). Same key, same result: the result store reuses a result whose files are all
present and whole, and recomputes it otherwise.

The modules behind a key are not kept by hand: from the modules a stage names (its seeds)
and the ones every stage runs on (``SHARED``), ``dependencies`` follows every ``fer_core``
import in their source (``ast``, imports inside functions included) to the whole closure,
so a module used only indirectly (prepare.ingest -> prepare.quality) is in it. The
libraries in a key are the same closure's imports of installed distributions
(``importlib.metadata.packages_distributions``), at their installed versions, but the few of
``NEUTRAL_LIBRARIES`` that cannot shape a result. A config field marked result-neutral in
its schema (``fer_core.config.base.neutral``) is left out of every key.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

import fer_core

# A folder's content in a key (tasks import them from here).
from fer_core.store.fingerprints import content_fingerprint, file_hashes  # noqa: F401

PACKAGE = Path(fer_core.__file__).resolve().parent

# Every stage runs on top of these; a change in any of them invalidates all results.
_SHARED = ("prepare.manifest", "store", "store.keys")

# Imported libraries that cannot shape a stored result, left out of keys, each with why.
NEUTRAL_LIBRARIES: dict[str, str] = {
    "fer_core": "our own code: its modules' source is in the key itself",
    "tqdm": "progress bars on the terminal",
    "yaml": "reads config files; the values it reads are in the key",
    "pydantic": "checks configs; the values it checks are in the key",
    "fastapi": "serving requests (fer serve) stores no result",
    "starlette": "serving requests (fer serve) stores no result",
    "uvicorn": "serving requests (fer serve) stores no result",
}

# fer_core.config.base.RESULT_NEUTRAL (a test checks they agree): the json_schema_extra
# key that marks a config field no result depends on (threads, workers, batch sizes shown
# equal bitwise by a test).
RESULT_NEUTRAL = "result_neutral"


def _short(module: str | ModuleType) -> str:
    """``fer_core.prepare.align`` / a module object / ``prepare.align`` -> ``prepare.align``."""
    name = module.__name__ if isinstance(module, ModuleType) else module
    parts = name.split(".")
    return ".".join(parts[1:]) if parts[0] == "fer_core" and len(parts) > 1 else name


def _files(name: str, root: Path) -> list[Path]:
    """A module's one source file: ``a.b`` -> a/b.py, or a/b/__init__.py for a package.

    A package counts as its ``__init__`` alone: its other modules are in a closure only
    when something imports them, so a change to one stage's module reruns that stage."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return [path]
    return []


def module_source_hash(name: str, root: Path = PACKAGE) -> str:
    """The hash of a fer_core module's source (every file of it, for a package)."""
    h = hashlib.sha256()
    for path in _files(name, root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@cache
def _imports(source: bytes, module: str, is_package: bool) -> tuple[frozenset, frozenset]:
    """(fer_core modules, dotted below fer_core, and other top-level packages) that
    ``source`` imports anywhere in it.

    ``module``: its dotted name (for relative imports)."""
    ours, others = set(), set()
    package = module if is_package else module.rpartition(".")[0]

    def absolute(name: str, names: Iterable[str] = ()) -> None:
        parts = name.split(".")
        if parts[0] != "fer_core":
            others.add(parts[0])
            return
        # Importing a.b.c runs the __init__ of a and a.b first.
        ours.update(".".join(parts[1:i]) for i in range(2, len(parts) + 1))
        ours.update(".".join([*parts[1:], n]) for n in names)  # submodules (dropped if not)
        if len(parts) == 1:
            ours.add("__init__")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                absolute(alias.name)
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                absolute(".".join([*base, node.module] if node.module else base), names)
            else:
                absolute(node.module or "", names)
    return frozenset(ours), frozenset(others)


def _scan(name: str, root: Path) -> tuple[frozenset, frozenset]:
    ours, others = set(), set()
    for path in _files(name, root):
        rel = path.relative_to(root).with_suffix("").parts
        is_package = rel[-1] == "__init__"
        module = ".".join(("fer_core", *(rel[:-1] if is_package else rel)))
        o, t = _imports(path.read_bytes(), module, is_package)
        ours |= o
        others |= t
    return frozenset(n for n in ours if _files(n, root)), frozenset(others)


def _snapshot(root: Path) -> tuple:
    """What the cached closures depend on: every source file's name, size and mtime."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".py"):
                st = os.stat(os.path.join(dirpath, f))
                out.append((dirpath, f, st.st_size, st.st_mtime_ns))
    return tuple(out)


@cache
def _closure(seeds: frozenset[str], root: Path, snapshot: tuple) -> tuple[tuple, tuple]:
    todo, seen, libraries = list(seeds), set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")  # importing a.b.c runs a's and a.b's __init__ too
        todo.extend(p for i in range(1, len(parts))
                    if (p := ".".join(parts[:i])) not in seen and _files(p, root))
        ours, others = _scan(name, root)
        libraries |= others
        todo.extend(ours - seen)
    third_party = libraries - set(sys.stdlib_module_names) - set(NEUTRAL_LIBRARIES)
    return tuple(sorted(seen)), tuple(sorted(third_party))


def dependencies(modules: Iterable[str | ModuleType], root: Path = PACKAGE) -> tuple[str, ...]:
    """Every fer_core module the given ones (and ``_SHARED``) import, transitively."""
    return _closure(frozenset(map(_short, (*modules, *_SHARED))), root, _snapshot(root))[0]


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def library_version(name: str) -> str:
    """The installed version(s) of the distribution(s) that provide the import ``name``
    (``cv2`` -> opencv-python-headless's); ``absent`` when none is installed."""
    versions = []
    for dist in sorted(set(_distributions().get(name, ()))):
        try:
            versions.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ",".join(versions) or "absent"


def forget_versions() -> None:
    """Read installed versions again (after an install in this process, or in a test)."""
    for fn in (_distributions, library_version, _code_version):
        fn.cache_clear()


def libraries(modules: Iterable[str | ModuleType], root: Path = PACKAGE) -> dict[str, str]:
    """{library: installed version} of the libraries the modules' closure imports."""
    names = _closure(frozenset(map(_short, (*modules, *_SHARED))), root, _snapshot(root))[1]
    return {n: library_version(n) for n in names}


def code_version(modules: Iterable[str | ModuleType], root: Path = PACKAGE) -> str:
    """The hash of the source of the modules' closure and the versions of its libraries."""
    seeds = frozenset(map(_short, (*modules, *_SHARED)))
    return _code_version(seeds, root, _snapshot(root))


@cache
def _code_version(seeds: frozenset[str], root: Path, snapshot: tuple) -> str:
    names, libs = _closure(seeds, root, snapshot)
    h = hashlib.sha256()
    for name in names:
        h.update(f"{name}:{module_source_hash(name, root)}\n".encode())
    for name in libs:
        h.update(f"lib:{name}=={library_version(name)}\n".encode())
    return h.hexdigest()


def _plain(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    fields = getattr(type(obj), "model_fields", None)
    if isinstance(fields, Mapping) and not isinstance(obj, type):
        # A config model (pydantic, fer_core.config): its fields but the result-neutral
        # ones, each as it is (a nested model is treated the same way).
        return {name: _plain(getattr(obj, name)) for name, info in sorted(fields.items())
                if not (info.json_schema_extra or {}).get(RESULT_NEUTRAL)}
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
