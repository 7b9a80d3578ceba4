"""Classifiers by name from one explicit registry (``create_model``, timm style).

Every model takes float RGB batches scaled to [0, 1] (uint8 / 255), NCHW, at the entry's
input size, and returns logits. Everything else happens inside the model (``Normalized``):
grey conversion for a model trained on grey faces, the resize to the size the backbone
works at, and mean/std normalisation. So a saved checkpoint plus the uint8 -> /255 rule is
all a caller needs to predict, and evaluate, predict and export cannot disagree.
Nothing here downloads: models start from scratch unless ``weights`` names a local file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.vision_transformer import VisionTransformer

from fer_core import UsageError

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
    input_size: int = INPUT_SIZE  # what callers feed: the size `fer prepare` saves
    # The size the backbone runs at; the wrapper resizes (antialiased) when it differs.
    # FER2013's faces are 48 px upscaled to 96, so a backbone at 40-48 px loses little
    # and costs a quarter to a sixth of the compute.
    work_size: int = INPUT_SIZE
    mean: tuple[float, float, float] = FER_MEAN
    std: tuple[float, float, float] = FER_STD
    summary: str = ""


# ITU-R BT.601 luma, OpenCV's and PIL's RGB -> grey weights; they sum to 1, so a grey
# face stored as three equal channels passes unchanged.
LUMA = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma; a one-channel batch passes as it is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def grey_input(batch_uint8_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC RGB -> float (N, 1, H, W) luma in [0, 1], in one pass: the training
    loop's feed for a grey model, without first making a float NCHW copy of all three
    channels (that copy took an eighth of a CPU training step)."""
    w = torch.tensor(LUMA, device=batch_uint8_nhwc.device) / 255
    return (batch_uint8_nhwc.float() @ w).unsqueeze(1)


class Normalized(nn.Module):
    """Grey conversion (``grayscale``), resize to ``work_size``, mean/std, then the backbone.

    The buffers are not persistent: they come from the registry, so state_dicts stay
    interchangeable between a wrapped model and its bare backbone weights. A grayscale
    model also takes one-channel batches (the trainer warps grey batches: a third of the
    work); its backbone still sees three equal channels, so weights stay interchangeable.
    """

    def __init__(self, backbone: nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                 *, work_size: int = INPUT_SIZE, grayscale: bool = False):
        super().__init__()
        self.backbone = backbone
        self.work_size = work_size
        self.grayscale = grayscale
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grayscale:
            x = to_grey(x)
        if x.shape[-1] != self.work_size or x.shape[-2] != self.work_size:
            x = F.interpolate(x, size=(self.work_size, self.work_size), mode="bilinear",
                              antialias=True, align_corners=False)
        x = (x - self.mean) / self.std
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.backbone(x)


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


def _vgg_faces(num_classes: int) -> nn.Module:
    # VGG with BatchNorm at FER2013's scale (the family of the best from-scratch FER2013
    # results): 40 px, four stages of two 3x3 convs, 32 -> 256 channels, global pooling.
    # ~120 MFLOPs per face, 1.2M parameters: ~600 training images/s on 2 Zen 4 cores in
    # bf16 with channels_last, i.e. 25 epochs of FER2013 in 30 minutes.
    layers: list[nn.Module] = []
    cin = 3
    for k, width in enumerate((32, 64, 128, 256)):
        layers += [*_conv_bn(cin, width), *_conv_bn(width, width)]
        layers.append(nn.MaxPool2d(2) if k < 3 else nn.AdaptiveAvgPool2d(1))
        cin = width
    layers += [nn.Flatten(), nn.Dropout(0.4), nn.Linear(cin, num_classes)]
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
        ModelSpec(name="vgg_faces", build=_vgg_faces, work_size=40,
                  summary="VGG-style CNN at 40x40, 1.2M parameters; 67% on FER2013 in 30 "
                          "CPU minutes"),
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
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None


def create_model(name: str, *, num_classes: int, grayscale: bool = False) -> nn.Module:
    """Build registry model ``name`` with ``num_classes`` outputs.

    Its weights are initialised; ``fer_core.models.checkpoint.load_weights`` loads a local
    state_dict into it. ``grayscale``: the model turns every input grey first (it was
    trained on grey faces).
    """
    spec = model_spec(name)
    if num_classes < 2:
        raise UsageError(f"num_classes must be at least 2, got {num_classes}")
    model = Normalized(spec.build(num_classes), spec.mean, spec.std, work_size=spec.work_size,
                       grayscale=grayscale)
    return model
