"""The shipped model: the checkpoint `fer predict` uses when it is given no ``--model``.

It is package data (``pyproject.toml``: ``fer_core/models/weights/*.pt`` and ``*.json``), so an
installed ``fer`` finds it too. ``DEFAULT_CHECKPOINT`` is the one place that names it.
"""

from __future__ import annotations

from pathlib import Path

from fer_core import MissingInput

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "fer2013_vgg_faces.pt"


def default_checkpoint() -> Path:
    """The shipped checkpoint's path, or MissingInput naming where it should be."""
    if not DEFAULT_CHECKPOINT.is_file():
        raise MissingInput(
            f"no shipped model at {DEFAULT_CHECKPOINT}: pass --model with a checkpoint "
            "written by `fer train` (RUN_DIR/model/best.pt), or install a fer-pipeline "
            "that ships its weights")
    return DEFAULT_CHECKPOINT
