"""Checks of a command's arguments, config files and paths, done before anything heavy.

They run before Prefect is imported or its server started, and import nothing but PyYAML:
a bad command is answered in a fraction of a second. The config keys they accept are read
from the source of the config classes (``ast``), not from a copy kept here, so they cannot
drift from what the flows accept (tests/flows/test_cli.py checks that they agree).
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path


class UsageError(ValueError):
    """A bad command: printed as one line, exit status 2."""


def data_path(path: str) -> None:
    """A data folder (or FER2013 CSV) that exists."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such data folder or file")
    if p.is_file() and p.suffix.lower() != ".csv":
        raise UsageError(f"{path}: a file, but not a FER2013 .csv; give a data folder "
                         "DATA/<class>/*, DATA/{train,test}/<class>/* or fer2013.csv")


def existing_file(path: str | None, option: str) -> None:
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")


def out_folder(path: str | None, option: str = "--out") -> None:
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")


def run_folder(path: str) -> None:
    """A run folder that `fer prepare` made (its saved sets' meta.json)."""
    p = Path(path)
    if (p / "sets" / "meta.json").is_file():
        return
    what = ("does not exist" if not p.exists() else "is not a folder" if not p.is_dir()
            else "was not made by `fer prepare` (it has no sets/meta.json)")
    raise UsageError(f"{path} {what}; make one with `fer prepare DATA --out {path}`")


def read_config(path: str) -> object:
    """A YAML (or JSON) config file's content; a syntax error is one line with the file,
    line and column."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such config file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot be read as a text file ({e})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = e.problem or "syntax error"
        if e.context:
            what += f" ({e.context})"
        raise UsageError(f"{path}: {where}not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML: {e}") from None


def prepare_config(path: str | None) -> None:
    """A preparation config: sections of fer_core.prepare.config.SECTIONS (and ``subsets``), each
    with known keys only."""
    if path is None:
        return
    raw = read_config(path)
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    sections = prepare_sections()
    if sections is None:  # the source is not laid out as expected: the flow checks later
        return
    known = {*sections, "subsets"}
    unknown = sorted(str(k) for k in set(raw) - known)
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {unknown}; known: {sorted(known)}")
    for name, values in raw.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UsageError(f"{path} [{name}]: expected a mapping, got "
                             f"{type(values).__name__}")
        fields = sections.get(name)
        bad = sorted(str(k) for k in values if fields is not None and k not in fields)
        if bad:
            raise UsageError(f"{path} [{name}]: unknown key(s) {bad}; known: {sorted(fields)}")


def train_config(path: str | None, model: str | None = None) -> None:
    """A training config: TrainConfig keys only, a known model (``model``: the command
    line's, which overrides the file's)."""
    raw = read_config(path) if path is not None else None
    if raw is not None and not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of TrainConfig keys, got "
                         f"{type(raw).__name__}")
    raw = raw or {}
    fields = dataclass_fields("fer_core.train.config", "TrainConfig")
    bad = sorted(str(k) for k in raw if fields is not None and k not in fields)
    if bad:
        raise UsageError(f"{path}: unknown TrainConfig key(s) {bad}; known keys: "
                         f"{', '.join(sorted(fields))}")
    name = model if model is not None else raw.get("model")
    known = model_names()
    if name is not None and known is not None and name not in known:
        where = "--model" if model is not None else f"{path}: model"
        raise UsageError(f"{where} {name!r}: unknown model; known models: {', '.join(known)}")


def model_names() -> tuple[str, ...] | None:
    """The names in fer_core.models.registry.REGISTRY (its ``ModelSpec(name=...)`` entries), from
    the source; None when it is not laid out so."""
    tree = _module_tree("fer_core.models.registry")
    for node in tree.body if tree is not None else ():
        target = (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
                  else node.target if isinstance(node, ast.AnnAssign) else None)
        if isinstance(target, ast.Name) and target.id == "REGISTRY" and node.value:
            names = [kw.value.value for call in ast.walk(node.value)
                     if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                     and call.func.id == "ModelSpec"
                     for kw in call.keywords
                     if kw.arg == "name" and isinstance(kw.value, ast.Constant)]
            return tuple(names) or None
    return None


# --- config keys from the source of the config classes ------------------------------------


@cache
def _module_tree(module: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def _imported_from(tree: ast.Module, name: str, module: str) -> str | None:
    """The module ``name`` is imported from in ``tree`` (``module``'s source), if any."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    base = node.module or ""
                    if node.level:  # relative import
                        parts = module.split(".")[:-node.level]
                        base = ".".join([*parts, base] if base else parts)
                    return base
    return None


def dataclass_fields(module: str, name: str) -> frozenset[str] | None:
    """The annotated fields of class ``name`` as found in ``module``'s source (following
    one ``from X import name``), bases from the same source included; None when not
    found."""
    tree = _module_tree(module)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            fields = {s.target.id for s in node.body
                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                      and "ClassVar" not in ast.unparse(s.annotation)}
            for base in node.bases:
                if isinstance(base, ast.Name):
                    inherited = dataclass_fields(module, base.id)
                    if inherited is None and base.id not in ("object", "Generic"):
                        return None
                    fields |= inherited or set()
            return frozenset(fields)
    source = _imported_from(tree, name, module)
    return dataclass_fields(source, name) if source and source != module else None


def prepare_sections() -> dict[str, frozenset[str]] | None:
    """fer_core.prepare.config.SECTIONS as {section: its keys}, from the source."""
    module = "fer_core.prepare.config"
    tree = _module_tree(module)
    if tree is None:
        return None
    for node in tree.body:
        target = (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
                  else node.target if isinstance(node, ast.AnnAssign) else None)
        if not (isinstance(target, ast.Name) and target.id == "SECTIONS"
                and isinstance(node.value, ast.Dict)):
            continue
        out = {}
        for key, value in zip(node.value.keys, node.value.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(value, ast.Name)):
                return None
            fields = dataclass_fields(module, value.id)
            if fields is None:
                return None
            out[key.value] = fields
        return out
    return None
