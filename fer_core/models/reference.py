"""One model reference for every door (``--model``, ``--weights``, ``--checkpoint``, the
flows' model parameters): a shipped model's name (``fer2013``, ``ferplus``), a checkpoint
file, a training folder (``RUN/train/NAME``) or a run folder (``RUN``: its ``model/best.pt``,
the latest or promoted training). Pure path logic: imports no torch, so a command checks its
model before anything heavy loads."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core import MissingInput, UsageError
from fer_core.models.weights import DEFAULT_CHECKPOINT, FERPLUS_CHECKPOINT, WEIGHTS_DIR

# Shipped models by name -> the file stem of their checkpoint in WEIGHTS_DIR (looked up when
# asked, so a model shipped after import is found).
SHIPPED = {"fer2013": DEFAULT_CHECKPOINT.stem, "ferplus": FERPLUS_CHECKPOINT.stem}
# How to make a shipped model that is not there yet: a name the user may type before its
# weights exist gets these steps instead of "no such file".
HOW_TO_SHIP = {
    "fer2013": "python bench/ship_model.py bench/results/train_cpu_30min.json "
               "--prepare-command CMD (or install a fer-pipeline that ships its weights)",
    "ferplus": "python bench/train_ferplus.py (about 2 hours a label mode on 2 CPU cores), "
               "then python bench/ship_model.py bench/results/train_ferplus_crossentropy.json "
               "--model ferplus",
}
TITLES = {"fer2013": "the FER2013 model", "ferplus": "the FER+ model"}


def shipped_names() -> list[str]:
    return sorted({*SHIPPED, *(p.stem for p in WEIGHTS_DIR.glob("*.pt"))})


def shipped_path(name: str) -> Path:
    """The checkpoint of the shipped model ``name`` (fer2013, ferplus), or MissingInput saying
    it is not shipped yet and how to make it."""
    path = WEIGHTS_DIR / f"{SHIPPED[name]}.pt"
    if not path.is_file():
        raise MissingInput(f"model {name!r}: {TITLES[name]} is not shipped yet (no "
                           f"fer_core/models/weights/{path.name}); make it with "
                           f"{HOW_TO_SHIP[name]}, or pass --model with a checkpoint written "
                           "by `fer train` (RUN_DIR/model/best.pt)")
    return path


def resolve_model(ref: str | os.PathLike) -> Path:
    """The checkpoint file ``ref`` names, or FileNotFoundError saying what was looked for."""
    text = str(ref)
    if text in SHIPPED:  # a name first: a data folder called fer2013/ is no model
        return shipped_path(text)
    if not any(sep in text for sep in ("/", os.sep)) and (WEIGHTS_DIR / f"{text}.pt").is_file() \
            and not Path(text).exists():
        return WEIGHTS_DIR / f"{text}.pt"
    path = Path(ref)
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / "model" / "best.pt", path / "best.pt"):
            if candidate.is_file():
                return candidate
        raise MissingInput(
            f"{path}: a folder without a model (looked for model/best.pt and best.pt); "
            "give a checkpoint, a training folder RUN/train/NAME or a run folder that "
            "`fer train` wrote into")
    raise MissingInput(f"model {text!r}: no such file or folder, and not a shipped model "
                            f"({', '.join(shipped_names())})")


def checkpoint_model(path: str | os.PathLike) -> str | None:
    """The architecture a checkpoint's metadata names (the JSON beside it), or None for a
    bare state_dict."""
    meta = Path(path).with_suffix(".json")
    if not meta.is_file():
        return None
    import json

    return json.loads(meta.read_text(encoding="utf-8")).get("model")


def start_model(weights: str | os.PathLike, model: str | None) -> str | None:
    """The model a training that starts from ``weights`` builds: the checkpoint's own
    architecture unless ``model`` names one; a ``model`` that cannot take those weights is
    a UsageError naming both. None: a bare state_dict and no ``model``."""
    own = checkpoint_model(weights)
    if model is not None and own is not None and model != own:
        raise UsageError(f"model {model!r} cannot start from the weights {weights}: that "
                         f"checkpoint is a {own!r}; leave the model unset (or ask for {own!r})")
    return model or own
