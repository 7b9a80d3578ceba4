"""Classifiers by name from one explicit registry (``create_model``, timm style).

Every model takes float RGB batches scaled to [0, 1] (uint8 / 255), NCHW, at the entry's
input size, and returns logits. Mean/std normalisation happens inside the model, so a
saved checkpoint plus the uint8 -> /255 rule is all a caller needs to predict.
Nothing here downloads: models start from scratch unless ``weights`` names a local file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.vision_transformer import VisionTransformer

# FER2013 pixel statistics on [0, 1] (grey faces copied into three channels); the models
# train from scratch, so dataset statistics suit them better than ImageNet's.
FER_MEAN = (0.508, 0.508, 0.508)
FER_STD = (0.255, 0.255, 0.255)
INPUT_SIZE = 96


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One registry entry: how to build the network and what input it expects."""

    name: str
    build: Callable[[int], nn.Module]
    input_size: int = INPUT_SIZE
    mean: tuple[float, float, float] = FER_MEAN
    std: tuple[float, float, float] = FER_STD
    summary: str = ""


class Normalized(nn.Module):
    """Apply the entry's mean/std, then the backbone.

    The buffers are not persistent: they come from the registry, so state_dicts stay
    interchangeable between a wrapped model and its bare backbone weights.
    """

    def __init__(self, backbone: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _compact_cnn(num_classes: int) -> nn.Module:
    # FER faces are 48x48 upscaled to 96, so a stride-2 stem loses almost nothing; thin
    # early stages and wide late ones keep it near 250 training images/s on 2 CPU cores.
    layers: list[nn.Module] = [*_conv_bn(3, 24, stride=2), nn.MaxPool2d(2)]  # 24x24
    layers += [*_conv_bn(24, 48), nn.MaxPool2d(2)]  # 12x12
    layers += [*_conv_bn(48, 96), *_conv_bn(96, 96), nn.MaxPool2d(2)]  # 6x6
    layers += [*_conv_bn(96, 192), *_conv_bn(192, 192)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
               nn.Linear(192, num_classes)]
    return nn.Sequential(*layers)


def _small_input_resnet(net: nn.Module) -> nn.Module:
    # ImageNet's 7x7/2 stem + max-pool shrink 96 px to 24 before the first block; a
    # 3x3/1 stem keeps the 96x96 resolution that small faces need (CIFAR-style ResNet).
    net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def _vit_tiny(num_classes: int) -> nn.Module:
    return VisionTransformer(image_size=INPUT_SIZE, patch_size=8, num_layers=6, num_heads=3,
                             hidden_dim=192, mlp_dim=768, dropout=0.0, num_classes=num_classes)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(name="compact_cnn", build=_compact_cnn,
                  summary="VGG-style CNN, 0.64M parameters, stride-2 stem; trains on 2 CPU cores"),
        ModelSpec(name="resnet18",
                  build=lambda n: _small_input_resnet(resnet18(num_classes=n)),
                  summary="torchvision ResNet-18, 3x3 stride-1 stem, no max-pool"),
        ModelSpec(name="resnet50",
                  build=lambda n: _small_input_resnet(resnet50(num_classes=n)),
                  summary="torchvision ResNet-50, 3x3 stride-1 stem, no max-pool"),
        ModelSpec(name="vit_tiny", build=_vit_tiny,
                  summary="ViT with 8x8 patches (144 tokens), 6 layers, width 192"),
    )
}
DEFAULT_MODEL = "resnet18"


def model_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None


def create_model(name: str, *, num_classes: int,
                 weights: str | os.PathLike | None = None) -> nn.Module:
    """Build registry model ``name`` with ``num_classes`` outputs.

    ``weights`` is a local file holding a state_dict (bare, wrapped, or a checkpoint with
    a ``model`` entry); tensors whose shape differs (e.g. another head) are skipped with a
    warning, any other mismatch is an error.
    """
    spec = model_spec(name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    model = Normalized(spec.build(num_classes), spec.mean, spec.std)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a local state_dict into ``model``; returns the keys skipped for shape."""
    from fer_core.checkpoint import safe_load  # checkpoint imports this module

    state = safe_load(path)
    if isinstance(state.get("model"), dict):
        state = state["model"]
    own = model.state_dict()
    if not any(k in own for k in state):  # bare backbone weights
        state = {f"backbone.{k}": v for k, v in state.items()}
    skipped = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if skipped:
        warnings.warn(f"{path}: shapes differ, left at initialisation: {skipped}", stacklevel=2)
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return skipped
