"""The model a training starts with: from scratch, or from a checkpoint (fine-tuning) with
its head mapped by class name and its face spec reconciled with the new faces
(fer_core.models.transfer). What was done is printed and goes into every checkpoint's
lineage (``lineage.start``)."""

from __future__ import annotations

from torch import nn

from fer_core.config.train import TrainConfig
from fer_core.models import transfer
from fer_core.models.registry import create_model


def starting_model(cfg: TrainConfig, classes: tuple[str, ...],
                   data_grey: bool) -> tuple[nn.Module, bool, dict]:
    """(model, grey, start record). ``data_grey``: whether the training faces are grey."""
    meta = transfer.start_meta(cfg.weights) if cfg.weights is not None else None
    if cfg.weights is None:
        grey = data_grey if cfg.grayscale is None else cfg.grayscale
        return create_model(cfg.model, num_classes=len(classes), grayscale=grey), grey, {}
    choice = transfer.face_choice(meta, data_grey, cfg.grayscale)
    model = create_model(cfg.model, num_classes=len(classes), grayscale=choice.grayscale)
    head = transfer.start_from(model, cfg.weights, classes, widen=choice.widen)
    for line in (choice.message, transfer.head_line(head)):
        if line:
            print(line, flush=True)
    return model, choice.grayscale, {**head, "grayscale": choice.grayscale,
                                     "face": choice.message}


def backbone_frozen(cfg: TrainConfig, epoch: int) -> bool:
    """Whether epoch ``epoch`` (1-based) trains the head only."""
    return cfg.weights is not None and epoch <= cfg.freeze_epochs
