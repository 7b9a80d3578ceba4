"""One model reference for every door (``--model``, ``--weights``, ``--checkpoint``, the
flows' model parameters): a shipped model's name (``fer2013``), a checkpoint file, a
training folder (``RUN/train/NAME``) or a run folder (``RUN``: its ``model/best.pt``, the
latest or promoted training). Pure path logic: imports no torch, so a command checks its
model before anything heavy loads."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core import MissingInput
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
