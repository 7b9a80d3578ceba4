"""One model reference for every door (``--model``, ``--weights``, ``--checkpoint``, the
flows' model parameters): a shipped model's name (``fer2013``), a checkpoint file, a
training folder (``RUN/train/NAME``) or a run folder (``RUN``: its ``model/best.pt``, the
latest or promoted training). Pure path logic: imports no torch, so a command checks its
model before anything heavy loads."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core import MissingInput, UsageError
from fer_core.models.weights import DEFAULT_CHECKPOINT, WEIGHTS_DIR

# Shipped models by name; each checkpoint's file stem names it too.
SHIPPED = {"fer2013": DEFAULT_CHECKPOINT}


def shipped_names() -> list[str]:
    return sorted({*SHIPPED, *(p.stem for p in WEIGHTS_DIR.glob("*.pt"))})


def resolve_model(ref: str | os.PathLike) -> Path:
    """The checkpoint file ``ref`` names, or FileNotFoundError saying what was looked for."""
    text = str(ref)
    if text in SHIPPED:
        return SHIPPED[text]
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
