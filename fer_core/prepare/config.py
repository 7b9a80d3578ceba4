"""The preparation config from a YAML/JSON file and command-line options (the schema, one
frozen section per stage, is fer_core.config.prepare).

Beside the stage sections a file may name test subsets, ``subsets: {NAME: LIST_FILE}``
(LIST_FILE relative to the data folder), e.g. ``subsets: {test_private: test_private.txt}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fer_core import MissingInput, UsageError, store
from fer_core.config.labels import with_preset
from fer_core.config.prepare import SECTIONS, PrepareConfig, PrepareOptions
from fer_core.config.sections import SUBSETS
from fer_core.prepare import ingest
from fer_core.prepare import labels as labels_mod
from fer_core.prepare.ingest import resolve_class_map, resolve_classes
from fer_core.prepare.subsets import specs_from

__all__ = ["SECTIONS", "SUBSETS", "PrepareConfig", "PrepareOptions", "build_config",
           "evaluation_config"]


def build_config(data: str, *, file: str | Path | None = None, classes=None, class_map=None,
                 augment: str | None = None, align: bool | None = None,
                 overrides: Mapping[str, Mapping] | None = None,
                 subsets: Mapping[str, str] | None = None,
                 all_test: bool = False, labels: Mapping | None = None) -> PrepareConfig:
    """Config from a file (if any), then command-line options on top.

    ``labels``: labels-file options (fer_core.config.labels.LabelsConfig's keys) on top of
    the file's ``ingest.labels``; a ``preset`` fills in the options not given. The labels
    file is found from here or else from the data folder, and read once to fail at once
    when nothing of it can be parsed.

    ``subsets`` ({name: list file}) adds to or replaces the file's; a relative list path is
    relative to the data folder. A list file that does not exist is an error here.
    """
    raw = {k: dict(v or {}) for k, v in (store.read_yaml(file) or {} if file else {}).items()}
    unknown = sorted(set(raw) - set(SECTIONS) - {SUBSETS})
    if unknown:
        raise UsageError(f"{file}: unknown section(s) {unknown}; known: "
                         f"{sorted([*SECTIONS, SUBSETS])}")
    lists = {**{str(k): str(v) for k, v in raw.pop(SUBSETS, {}).items()}, **(subsets or {})}
    specs = specs_from(lists, ingest.data_root(data))
    for spec in specs:
        if not Path(spec.list_path).is_file():
            raise MissingInput(f"subset {spec.name}: list file {spec.list_path} not found "
                                    "(a relative path is taken relative to the data folder)")
    for name, values in (overrides or {}).items():
        raw.setdefault(name, {}).update(values)
    ing = raw.setdefault("ingest", {})
    ing["root"] = str(data)
    if class_map is not None:
        ing["class_map"] = class_map
    ing["class_map"] = resolve_class_map(ing.get("class_map"))
    if classes is not None:
        ing["classes"] = classes
    ing["classes"] = resolve_classes(ing.get("classes"))
    if labels or ing.get("labels"):
        raw["ingest"] = ing = _with_labels(ing, labels, data)
    if augment is not None:
        raw.setdefault("augment", {})["plan"] = augment
    if align is not None:
        raw.setdefault("align", {})["enabled"] = align
    review = raw.get("review") or {}
    if review.get("file"):
        if not Path(review["file"]).is_file():
            raise MissingInput(f"review file {review['file']} not found")
        review["file"] = str(Path(review["file"]).resolve())
    where = str(file or "options")
    return PrepareConfig(**{name: cls.from_values(raw.get(name, {}), f"{where} [{name}]")
                            for name, cls in SECTIONS.items()},
                         subsets=specs, all_test=all_test)


def _with_labels(ing: dict, labels: Mapping | None, data: str) -> dict:
    given = ing.get("labels")
    given = {"file": given} if isinstance(given, str) else dict(given or {})
    ing = with_preset({**ing, "labels": {**given, **(labels or {})}})
    ing["class_map"] = resolve_class_map(ing.get("class_map"))
    spec = dict(ing["labels"])
    file = spec.get("file")
    if not file:
        raise UsageError("ingest.labels: no labels file given")
    found = next((p for p in (Path(file), Path(ingest.data_root(data)) / file) if p.is_file()),
                 None)
    if found is None:
        raise MissingInput(f"labels file {file} not found (from here or the data folder)")
    spec["file"] = str(found.resolve())
    checked = labels_mod.LabelsConfig.from_values(spec, "ingest.labels")
    labels_mod.check_file(store.read_text(spec["file"]), checked)
    return {**ing, "labels": spec}


# The run's sections that decide what a face looks like to its model (and which files count):
# a dataset scored by that model is prepared with the same ones.
_AS_THE_RUN = ("dedup", "quality", "align", "resize")
_INGEST_AS_THE_RUN = ("min_size", "extensions", "workers")


def evaluation_config(data: str, run_config: Mapping | None, *, class_map=None,
                      classes=None) -> PrepareConfig:
    """The preparation of another dataset to score a run's model on (cross-dataset).

    Every kept image is a test image (no split, no augmentation); duplicates, alignment and
    resizing as ``run_config`` (the ``config`` of the run's prepare.json) has them; the class
    map is ``class_map`` when given, else the run's.
    """
    run = dict(run_config or {})
    overrides = {name: dict(run[name]) for name in _AS_THE_RUN if run.get(name) is not None}
    run_ingest = run.get("ingest") or {}
    overrides["ingest"] = {k: run_ingest[k] for k in _INGEST_AS_THE_RUN if k in run_ingest}
    if class_map is None:
        class_map = run_ingest.get("class_map") or None
    return build_config(data, classes=classes, class_map=class_map, augment="none",
                        overrides=overrides, all_test=True)
