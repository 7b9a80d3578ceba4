"""Checks of a command's arguments, config files and paths, done before anything heavy.

They run before Prefect is imported or its server started, and import nothing but PyYAML
and the config schema (fer_core.config: pydantic models, no torch): a bad command is
answered in a fraction of a second. A config file is checked by building the very models
the flows build from it, so the keys and values accepted here cannot drift from theirs.
"""

from __future__ import annotations

from pathlib import Path

from fer_core import UsageError  # noqa: F401  (a bad command: one line, exit status 2)


def store_folder(path: str) -> None:
    """A result store: a folder with a ``runs`` record or stage results in it."""
    if not Path(path).is_dir():
        raise UsageError(f"{path}: no such store folder")


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


def model_reference(ref: str | None, option: str) -> str | None:
    """A model reference (a shipped model's name, a checkpoint, RUN/train/NAME or RUN) as
    the checkpoint path it names (fer_core.models.reference); None stays None."""
    if ref is None:
        return None
    from fer_core.models.reference import resolve_model

    try:
        return str(resolve_model(ref))
    except FileNotFoundError as e:
        raise UsageError(f"{option} {e}") from None


def start_model(config: str | None, model: str | None, weights: str | None) -> None:
    """A training that starts from ``weights`` (the command line's, else the config file's)
    builds the checkpoint's architecture; a model (``--model``, else the file's) that cannot
    take those weights fails here, before any training."""
    raw = _mapping(config, read_config(config), "TrainConfig keys") if config else {}
    weights = weights or raw.get("weights")
    if weights is None:
        return
    from fer_core.models.reference import start_model as architecture

    architecture(model_reference(weights, "--weights"), model or raw.get("model"))


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


def label_mode_option(mode: str | None) -> None:
    """``--label-mode``: one of the label modes, else one line naming them."""
    from fer_core.config.train import LABEL_MODES

    if mode is not None and mode not in LABEL_MODES:
        raise UsageError(f"--label-mode {mode!r}: unknown; choose one of "
                         f"{', '.join(LABEL_MODES)}")


def label_mode(run_dir: str, config: str | None, option: str | None = None) -> None:
    """A training's ``label_mode`` (``option``: --label-mode, else the config file's)
    against what the run's sets were prepared with
    (``fer_core.config.train.resolve_label_mode``); run_folder checked first."""
    import json

    from fer_core.config.train import prepared_label_mode, resolve_label_mode

    raw = _mapping(config, read_config(config), "TrainConfig keys") if config else {}
    run = Path(run_dir)
    meta = json.loads((run / "sets" / "meta.json").read_text())
    prepared = (json.loads((run / "prepare.json").read_text()).get("config")
                if (run / "prepare.json").is_file() else None)
    try:
        resolve_label_mode(option or raw.get("label_mode"), prepared_label_mode(prepared),
                           has_distribution=bool(meta.get("distribution")), run_dir=run_dir)
    except ValueError as e:
        where = "--label-mode" if option else config or "label_mode"
        raise UsageError(f"{where}: {e}") from None


def tracking(uri: str | None) -> None:
    """MLflow tracking asked for (``--mlflow``, else $MLFLOW_TRACKING_URI) with mlflow
    installed (fer_core.train.tracking.check: finds it without importing it)."""
    from fer_core.train.tracking import check

    check(uri)


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


def _mapping(path: str, raw: object, what: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of {what}, got {type(raw).__name__}")
    return raw


def prepare_config(path: str | None, data: str | None = None) -> None:
    """A preparation config: sections of fer_core.config.sections (and ``subsets``),
    each one a valid section model (known keys, values of the right type). ``data``: the
    data folder (the ingest section's root)."""
    if path is None:
        return
    from fer_core.config.sections import SECTION_MODELS, SUBSETS, section_model

    raw = _mapping(path, read_config(path), "sections")
    known = {*SECTION_MODELS, SUBSETS}
    unknown = sorted(str(k) for k in set(raw) - known)
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {unknown}; known: {sorted(known)}")
    for name, values in raw.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UsageError(f"{path} [{name}]: expected a mapping, got "
                             f"{type(values).__name__}")
        if name == SUBSETS:
            continue
        if name == "ingest":  # the data folder is the command line's
            values = {**values, "root": str(data if data is not None else ".")}
        try:
            section_model(name).from_values(values, f"{path} [{name}]")
        except ValueError as e:
            raise UsageError(str(e)) from None


def train_config(path: str | None, model: str | None = None, **overrides) -> None:
    """A training config: TrainConfig keys only, a known model (``model``: the command
    line's, which overrides the file's), valid values with the command line's non-None
    ``overrides`` (TrainConfig keys) on top."""
    from fer_core.config.train import MODEL_NAMES, TrainConfig

    raw = _mapping(path, read_config(path), "TrainConfig keys") if path is not None else {}
    known = TrainConfig.model_fields
    bad = sorted(str(k) for k in raw if k not in known)
    if bad:
        raise UsageError(f"{path}: unknown TrainConfig key(s) {bad}; known keys: "
                         f"{', '.join(sorted(known))}")
    name = model if model is not None else raw.get("model")
    if name is not None and name not in MODEL_NAMES:
        where = "--model" if model is not None else f"{path}: model"
        raise UsageError(f"{where} {name!r}: unknown model; known models: "
                         f"{', '.join(MODEL_NAMES)}")
    given = {k: v for k, v in {"model": model, **overrides}.items() if v is not None}
    try:  # as the flows build it: the file on its own, then the command line on top
        if path is not None:
            try:
                TrainConfig.from_dict(raw)
            except ValueError as e:
                raise UsageError(f"{path}: {e}") from None
        TrainConfig.from_dict({**raw, **given})
    except ValueError as e:
        raise UsageError(str(e)) from None


def audit_config(path: str | None, **overrides) -> None:
    """An audit config: AuditConfig keys only, with valid values, and the command line's
    non-None ``overrides`` (AuditConfig keys) on top."""
    from fer_core.config.audit import AuditConfig

    raw = _mapping(path, read_config(path), "audit keys") if path is not None else {}
    known = sorted(AuditConfig.model_fields)
    unknown = sorted(str(k) for k in set(raw) - set(known))
    if unknown:
        raise UsageError(f"{path}: unknown audit key(s) {unknown}; known: {known}")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        AuditConfig.from_values({**raw, **given}, str(path) if path is not None else "options")
    except ValueError as e:
        raise UsageError(str(e)) from None


def model_names() -> tuple[str, ...]:
    """The names of fer_core.models.registry.REGISTRY, without importing torch."""
    from fer_core.config.train import MODEL_NAMES

    return MODEL_NAMES
