"""Test-time augmentation: the views of a face whose logits a model averages (torch alone).

One function serves every door: ``evaluate.logits`` (``fer evaluate``, ``fer predict``,
``fer serve``, training's validation) and the exported graph (``models.export``), so the
exported file gives the TTA that the card was measured with.

The crops are five views at the model's working size (its centre and four corners) of the
face zoomed by ``CROP_ZOOM``: shifts of +-5% of the side, inside the training's random
shifts and zooms (``crop_translate``, ``crop_scale``: 10%), so every view is a face the
model saw the like of in training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fer_core.models.spec import TTA_MODES

CROP_ZOOM = 1.1


def zoomed_size(work_size: int) -> int:
    return round(work_size * CROP_ZOOM)


def crops(zoomed: torch.Tensor, work_size: int) -> list[torch.Tensor]:
    """The centre and four corners, ``work_size`` square, of a zoomed NCHW batch."""
    d = zoomed.shape[-1] - work_size
    offsets = [(d // 2, d // 2), (0, 0), (0, d), (d, 0), (d, d)]
    return [zoomed[..., i:i + work_size, j:j + work_size] for i, j in offsets]


def tta_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str,
               *, zoom: Callable[[torch.Tensor], torch.Tensor], work_size: int
               ) -> torch.Tensor:
    """The mean float32 logits of ``forward`` over ``mode``'s views of the NCHW batch ``x``.

    ``forward`` takes the whole face (any size) or a crop (``work_size``); ``zoom`` gives
    ``x`` at ``zoomed_size(work_size)``. One view at a time: ten views of an evaluation
    batch at once would hold ten times its activations.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA {mode!r}; choose one of {', '.join(TTA_MODES)}")
    views = crops(zoom(x), work_size) if mode in ("fivecrop", "tencrop") else [x]
    mirror = mode in ("hflip", "tencrop")  # faces are left-right symmetric
    total = None
    for view in views:
        out = forward(view).float()
        if mirror:
            out = out + forward(view.flip(3)).float()
        total = out if total is None else total + out
    return total / (len(views) * (2 if mirror else 1))
