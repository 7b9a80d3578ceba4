"""A model's predictions on uint8 faces (torch alone): what ``fer predict`` and ``fer serve``
run per face, and what scoring (``fer_core.evaluate.score``, scikit-learn) builds on. Kept
apart so that predicting imports neither scikit-learn nor matplotlib."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_core.models.tta import tta_logits, zoomed_size
from fer_core.prepare.resize import SCALE
from fer_core.runtime.device import autocast


def to_input(batch_uint8_nhwc: torch.Tensor, *, channels_last: bool = False) -> torch.Tensor:
    """uint8 NHWC (on any device) -> float NCHW in [0, 1], the models' input contract."""
    x = batch_uint8_nhwc.permute(0, 3, 1, 2).float().div_(SCALE)
    return x.contiguous(memory_format=torch.channels_last if channels_last
                        else torch.contiguous_format)


def _model_device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device


@torch.inference_mode()
def predict_logits(model: nn.Module, images: np.ndarray | torch.Tensor, *,
                   device: torch.device | str | None = None, batch_size: int = 256,
                   tta: str = "none", amp: bool = False,
                   channels_last: bool = False) -> torch.Tensor:
    """Logits (N, C) as float32 on ``device`` (default: where the model's weights are),
    averaged over the views of ``tta`` (``models.tta``); ``images`` is uint8 NHWC, a memmap
    is fine."""
    device = torch.device(device) if device is not None else _model_device(model)
    model.eval()
    work = getattr(model, "_orig_mod", model).work_size  # torch.compile keeps the module
    side = zoomed_size(work)

    def zoom(x: torch.Tensor) -> torch.Tensor:  # as the model resizes (registry.Normalized)
        return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True,
                             align_corners=False)

    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        # np.array copies: a memmap slice is read-only, which torch.from_numpy warns about.
        chunk = chunk if torch.is_tensor(chunk) else torch.from_numpy(np.array(chunk))
        x = to_input(chunk.to(device, non_blocking=True), channels_last=channels_last)
        with autocast(device, amp, cpu=amp):  # the caller chose bf16 for this device
            out.append(tta_logits(model, x, tta, zoom=zoom, work_size=work))
    if not out:
        raise ValueError("no images to predict")
    return torch.cat(out)


def predict_proba(model: nn.Module, images_uint8_nhwc: np.ndarray, *,
                  device: torch.device | str | None = None, batch_size: int = 256,
                  tta: str = "none") -> np.ndarray:
    """Class probabilities (N, C) float32 for uint8 RGB images (N, H, W, 3)."""
    if images_uint8_nhwc.dtype != np.uint8 or images_uint8_nhwc.ndim != 4 \
            or images_uint8_nhwc.shape[-1] != 3:
        raise ValueError("images must be uint8 (N, H, W, 3) RGB, got "
                         f"{images_uint8_nhwc.dtype} {images_uint8_nhwc.shape}")
    logits = predict_logits(model, images_uint8_nhwc, device=device, batch_size=batch_size,
                            tta=tta)
    return torch.softmax(logits, dim=1).cpu().numpy()
