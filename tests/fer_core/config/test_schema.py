"""The one config schema (fer_core.config): typed, frozen, unknown keys refused, the paper's
defaults, torch-free, and the same cache-key data as the dataclasses it replaced."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from fer_core.config.base import Config

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "fer_core" / "config"
MODULES = sorted(f"fer_core.config.{p.stem}" for p in CONFIG.glob("*.py") if p.stem != "__init__")


def models() -> list[type[BaseModel]]:
    out = {}
    for name in MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, type) and issubclass(obj, Config) and obj is not Config:
                out[obj.__qualname__] = obj
    return [out[k] for k in sorted(out)]


def example(cls: type[BaseModel]) -> BaseModel:
    """An instance with every required field given."""
    required = {"root": "data", "name": "test_private", "list_path": "list.txt",
                "ingest": {"root": "data"}}
    return cls(**{k: required[k] for k, f in cls.model_fields.items() if f.is_required()})


ALL = models()


def test_every_model_is_frozen_and_refuses_unknown_keys():
    names = {cls.__name__ for cls in ALL}
    assert {"IngestConfig", "ReviewConfig", "DedupConfig", "NearDupConfig", "SplitConfig",
            "QualityConfig", "AlignConfig", "ResizeConfig", "AugmentConfig", "SubsetSpec",
            "PrepareConfig", "PrepareOptions", "TrainConfig", "AuditConfig",
            "DemoConfig"} <= names
    for cls in ALL:
        assert cls.model_config.get("extra") == "forbid", cls
        assert cls.model_config.get("frozen") is True, cls


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_unknown_key_refused_and_frozen(cls):
    cfg = example(cls)
    with pytest.raises(ValidationError, match="bogus_key"):
        cls(**{**cfg.model_dump(), "bogus_key": 1})
    field = next(iter(cls.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(cfg, field, getattr(cfg, field))
    changed = cfg.model_copy(update={field: getattr(cfg, field)})
    assert changed == cfg and changed is not cfg


def test_from_values_is_one_line_naming_where_the_key_and_the_known_keys():
    from fer_core.config.align import AlignConfig
    from fer_core.config.duplicates import DedupConfig

    with pytest.raises(ValueError) as e:
        AlignConfig.from_values({"batch_size": 6, "bacth": 2}, "prep.yaml [align]")
    assert str(e.value).startswith("prep.yaml [align]: unknown key(s) ['bacth']; known: [")
    assert "'batch_size'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError) as e:
        DedupConfig.from_values({"on_conflict": "maybe"}, "prep.yaml [dedup]")
    assert "prep.yaml [dedup]: on_conflict:" in str(e.value) and "'maybe'" in str(e.value)
    assert "\n" not in str(e.value)
    # File values read as the flow reads them: lists as tuples, ints as floats.
    cfg = AlignConfig.from_values({"rotations": [-10, 10], "pad": 0}, "f")
    assert cfg.rotations == (-10.0, 10.0) and isinstance(cfg.pad, float)


def test_defaults_are_the_papers():
    """Sections 4-5 of the paper are the oracle: a stratified 80/20 split after a shuffle
    with seed 0; MTCNN alignment; 96 x 96; Poisson, speckle and Gaussian noise with seed 0;
    the six classes of its tables."""
    from fer_core.config.align import AlignConfig
    from fer_core.config.augment import AugmentConfig
    from fer_core.config.ingest import PAPER_CLASSES, resolve_classes
    from fer_core.config.resize import ResizeConfig
    from fer_core.config.split import SplitConfig

    paper = (REPO.parent / "shared" / "seed" / "fer-in-the-wild-paper.txt")
    if paper.is_file():  # the figures below are quoted from it
        text = paper.read_text(encoding="utf-8")
        for quote in ("80% and 20% ratio", "random seed was set into 0", "96 x 96",
                      "Poisson Noise", "Speckle Noise", "Gaussian Noise"):
            assert quote in text, quote
    assert SplitConfig().val_fraction == 0.2 and SplitConfig().random_state == 0
    assert AlignConfig().enabled is True
    assert ResizeConfig().size == 96
    assert set(AugmentConfig().noises) == {"poisson", "speckle", "gaussian"}
    assert AugmentConfig().random_state == 0
    assert PAPER_CLASSES == ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
    assert resolve_classes("paper") == PAPER_CLASSES


def test_file_spellings_of_classes_and_class_maps_are_read():
    from fer_core.config.ingest import IngestConfig

    cfg = IngestConfig(root="d", classes="paper", class_map="fer2013")
    assert cfg.classes[0] == "Anger" and cfg.class_map["happy"] == "Happiness"
    assert IngestConfig(root="d", classes="all", class_map=None) == IngestConfig(root="d")
    with pytest.raises(ValidationError, match="class map"):
        IngestConfig(root="d", class_map="nonsense")


def test_torch_free_lists_agree_with_their_sources():
    from fer_core import store
    from fer_core.config import ingest, train
    from fer_core.models import registry
    from fer_core.runtime import device

    assert train.MODEL_NAMES == tuple(registry.REGISTRY)
    assert train.DEFAULT_MODEL == registry.DEFAULT_MODEL
    assert train.DEVICES == device.DEVICES
    assert ingest.IMAGE_EXTENSIONS == store.IMAGE_SUFFIXES


# (where callers import it from, its name, its module in fer_core.config)
HOMES = [("prepare.align", "AlignConfig", "align"), ("prepare.augment", "AugmentConfig", "augment"),
         ("prepare.augment", "NOISES", "augment"), ("prepare.duplicates", "DedupConfig",
                                                     "duplicates"),
         ("prepare.ingest", "IngestConfig", "ingest"), ("prepare.ingest", "PAPER_CLASSES",
                                                        "ingest"),
         ("prepare.near_duplicates", "NearDupConfig", "near_duplicates"),
         ("prepare.quality", "QualityConfig", "quality"), ("prepare.resize", "ResizeConfig",
                                                           "resize"),
         ("prepare.review", "ReviewConfig", "review"), ("prepare.split", "SplitConfig", "split"),
         ("prepare.subsets", "SubsetSpec", "subsets"), ("prepare.config", "SECTIONS", "prepare"),
         ("prepare.config", "PrepareConfig", "prepare"), ("train.config", "TrainConfig", "train"),
         ("train.config", "RESUME_FREE", "train"), ("train.loop", "TrainConfig", "train"),
         ("audit.labels", "AuditConfig", "audit"), ("datasets.demo", "DemoConfig", "demo")]


@pytest.mark.parametrize(("where", "name", "home"), HOMES, ids=lambda v: str(v))
def test_stage_modules_expose_the_same_names(where, name, home):
    old = importlib.import_module(f"fer_core.{where}")
    assert getattr(old, name) is getattr(importlib.import_module(f"fer_core.config.{home}"), name)


def test_the_schema_imports_no_stage_code_torch_or_prefect():
    """By its source (pydantic, the standard library, PyYAML lazily, itself, and
    fer_core's ``__init__``, which holds only the UsageError classes) and in a fresh
    interpreter."""
    stdlib = set(sys.stdlib_module_names)
    for path in CONFIG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert (top in stdlib or top in ("pydantic", "yaml")
                        or name.startswith("fer_core.config") or name == "fer_core"), \
                    (path.name, name)
    script = (f"import json, sys\nfor m in {MODULES!r}:\n    __import__(m)\n"
              "print(json.dumps(sorted(m for m in ('torch', 'cv2', 'numpy', 'pandas', "
              "'prefect', 'fer_core.store', 'fer_core.prepare') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == [], out.stderr


def test_cache_key_data_is_the_dataclasses_data():
    """What fer_core.store.keys hashes of a config: plain data, tuples as lists, as it was
    when the configs were dataclasses (these dicts are what those gave)."""
    from fer_core.config.align import AlignConfig
    from fer_core.config.ingest import IngestConfig
    from fer_core.config.near_duplicates import NearDupConfig
    from fer_core.config.prepare import PrepareConfig
    from fer_core.config.subsets import SubsetSpec
    from fer_core.config.train import TrainConfig
    from fer_core.store.keys import _plain, stage_key

    assert _plain(NearDupConfig()) == {
        "policy": "report", "max_distance": 10, "max_fine_distance": 72, "shift": 2.0,
        "scales": [0.93, 1.08], "probe": "half", "chunk": 1024, "block_radius": 1}
    align = _plain(AlignConfig())
    assert align["thresholds"] == [0.6, 0.7, 0.7] and align["passes"] == ["mtcnn", "crop",
                                                                           "rotated"]
    cfg = PrepareConfig(ingest=IngestConfig(root="d", class_map={"b": "B", "a": "A"}),
                        subsets=(SubsetSpec(name="p", list_path="l.txt"),))
    plain = _plain(cfg)
    assert plain["subsets"] == [{"name": "p", "list_path": "l.txt", "parent": "test"}]
    assert list(plain["ingest"]["class_map"]) == ["a", "b"]
    assert plain["align"] == align
    train = TrainConfig(model="compact_cnn")
    assert stage_key("s", inputs=["x"], config=train) == stage_key(
        "s", inputs=["x"], config=json.loads(json.dumps(train.model_dump())))


def test_prepare_options_override_only_the_keys_set():
    from fer_core.config.align import AlignConfig
    from fer_core.config.prepare import PrepareOptions

    options = PrepareOptions(align=AlignConfig(batch_size=6))
    assert options.overrides() == {"align": {"batch_size": 6}}
    assert PrepareOptions.model_validate({"resize": {"size": 48}}).overrides() == {
        "resize": {"size": 48}}
    assert PrepareOptions().overrides() == {}


def test_train_config_keeps_its_checks():
    from fer_core.config.train import RESUME_FREE, TrainConfig, validate

    assert RESUME_FREE == {"device", "num_threads", "compile", "eval_batch_size"}
    with pytest.raises(ValueError, match="unknown model 'nope'; known models: compact_cnn"):
        TrainConfig.from_dict({"model": "nope"})
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig.from_dict({"epochs": 0})
    with pytest.raises(ValueError, match=r"TrainConfig\.lr: expected float"):
        TrainConfig.from_dict({"lr": True})
    with pytest.raises(ValueError, match="lr=-1.0"):
        validate(TrainConfig().model_copy(update={"lr": -1.0}))


def test_the_command_lines_section_map_is_the_schemas():
    """fer_cli checks a section by importing its model alone, from this map."""
    from fer_core.config.prepare import SECTIONS
    from fer_core.config.sections import SECTION_MODELS, section_model

    assert {name: section_model(name) for name in SECTION_MODELS} == SECTIONS
