"""Starting a training from a trained checkpoint (fine-tuning): its weights loaded into a
model for other data, the class head mapped row by row by class name, and the face spec
(grey or colour) reconciled with the new faces.

Class names match through the project's class maps (``fer_core.config``): ``angry``,
``anger`` and ``Anger`` are one class, as are ``happy``/``happiness`` and ``sad``/
``sadness``. A class the checkpoint knows keeps its row; a new class starts fresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from fer_core.config.ingest import CLASS_MAPS
from fer_core.config.labels import FERPLUS_CLASSES
from fer_core.models.checkpoint import is_grayscale, load_checkpoint, load_weights, meta_path
from fer_core.models.registry import LUMA

_ALIASES = {k.lower(): v.lower() for m in (*CLASS_MAPS.values(), FERPLUS_CLASSES)
            for k, v in m.items()}


def canonical(name: str) -> str:
    """One spelling per class: case-insensitive, through the class maps."""
    low = name.strip().lower()
    return _ALIASES.get(low, low)


def head_name(model: nn.Module) -> str:
    """The classifier: the last Linear layer (every registry model ends in one)."""
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError("the model has no Linear classifier head")
    return linear[-1]


def is_head(model: nn.Module, param_name: str) -> bool:
    return param_name.startswith(head_name(model) + ".")


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@dataclass(frozen=True)
class FaceChoice:
    """Grey or colour for a fine-tuned model, and the line that says why."""

    grayscale: bool
    widen: bool  # a grey checkpoint's first layer made colour (luma-weighted)
    message: str


def face_choice(start_meta: dict | None, data_grey: bool, wanted: bool | None) -> FaceChoice:
    """``wanted``: TrainConfig.grayscale (None: decide). A grey model on colour faces stays
    grey unless ``grayscale: false`` is asked for; then its first layer is widened."""
    if start_meta is None:  # a bare state_dict: no spec to reconcile
        grey = data_grey if wanted is None else wanted
        return FaceChoice(grey, False, "")
    was = is_grayscale(start_meta)
    grey = was if wanted is None else wanted
    data = "grey" if data_grey else "colour"
    if was and not grey:
        return FaceChoice(False, True, f"fine-tuning: the grey starting model becomes colour "
                          f"(grayscale: false) on {data} faces: its first layer is widened to "
                          "three channels, luma-weighted, so it starts as the grey model")
    if was and not data_grey:
        how = "grayscale: true" if wanted else "the default"
        return FaceChoice(True, False, f"fine-tuning: the starting model is grey and stays "
                          f"grey ({how}) on colour faces: colour is dropped at its input; "
                          "grayscale: false trains it in colour")
    if not was and grey:
        return FaceChoice(True, False, f"fine-tuning: the colour starting model becomes grey "
                          f"(grayscale: true) on {data} faces")
    return FaceChoice(grey, False, f"fine-tuning: starting model and {data} faces agree "
                      f"({'grey' if grey else 'colour'})")


def start_meta(path: str | os.PathLike) -> dict | None:
    """The checkpoint's metadata, or None for a bare state_dict without one."""
    return load_checkpoint(path)[1] if meta_path(path).is_file() else None


@torch.no_grad()
def start_from(model: nn.Module, path: str | os.PathLike, classes: tuple[str, ...], *,
               widen: bool = False) -> dict:
    """Load ``path`` into ``model`` (built for ``classes``): every tensor but the head's by
    name, the head's rows by class name. Returns what was done, for the log and the
    checkpoint: {"kept": {class: its class in the checkpoint}, "fresh": [...], "dropped":
    [checkpoint classes not trained on], "widened": bool}."""
    if not meta_path(path).is_file():  # a bare state_dict: no class names to map by
        skipped = load_weights(model, path)
        return {"kept": {}, "fresh": list(classes) if skipped else [], "dropped": [],
                "widened": False, "by": "index (no class names in the file)"}
    payload, meta = load_checkpoint(path)
    state = dict(payload["model"])
    own = model.state_dict()
    head = head_name(model)
    head_keys = [k for k in own if k.startswith(head + ".")]
    missing = sorted(set(own) - set(state))
    wrong = [k for k in own if k in state and k not in head_keys
             and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(f"{path}: weights of a {meta['model']!r} do not fit this model: "
                         f"missing {missing[:3]}, other shapes {wrong[:3]}")
    old = [canonical(c) for c in meta["classes"]]
    rows = {new: old.index(canonical(new)) for new in classes if canonical(new) in old}
    for key in head_keys:  # fresh rows: the model's own initialisation
        fresh = own[key].clone()
        for i, new in enumerate(classes):
            if new in rows:
                fresh[i] = state[key][rows[new]]
        state[key] = fresh
    conv = first_conv(model)
    conv_key = next(k for k, m in model.named_modules() if m is conv) + ".weight"
    if widen:
        # The grey model saw three equal channels: sum_c W_c * grey. Luma weights on the
        # summed kernel give the same response to colour input as to its grey.
        w = state[conv_key]
        luma = torch.tensor(LUMA, dtype=w.dtype).view(1, 3, 1, 1)
        state[conv_key] = w.sum(dim=1, keepdim=True) * luma
    model.load_state_dict(state)
    used = {canonical(c) for c in classes}
    return {"kept": {c: meta["classes"][i] for c, i in rows.items()},
            "fresh": [c for c in classes if c not in rows],
            "dropped": [c for c in meta["classes"] if canonical(c) not in used],
            "widened": widen, "by": "class name"}


def head_line(report: dict) -> str:
    kept = ", ".join(f"{c}<-{o}" if c != o else c for c, o in report["kept"].items())
    return (f"fine-tuning: head rows by {report['by']}: kept [{kept}], fresh "
            f"{report['fresh']}, dropped {report['dropped']}")


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze (or thaw) every parameter but the head's: a frozen parameter gets no gradient,
    so the optimiser leaves it as it is."""
    for name, p in model.named_parameters():
        if not is_head(model, name):
            p.requires_grad_(not frozen)
