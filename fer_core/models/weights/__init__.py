"""The shipped models: the checkpoint `fer predict` uses when it is given no ``--model``
(FER2013's 7 classes), and the FER+ one (8 classes) that ``--model ferplus`` names.

They are package data (``pyproject.toml``: ``fer_core/models/weights/*.pt`` and ``*.json``), so
an installed ``fer`` finds them too. ``DEFAULT_CHECKPOINT`` and ``FERPLUS_CHECKPOINT`` are the
one place that names each (bench/ship_model.py writes them); ``reference.shipped_path``
finds them by name, or says how to make one that is missing.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "fer2013_vgg_faces.pt"
FERPLUS_CHECKPOINT = WEIGHTS_DIR / "ferplus_vgg_faces.pt"

