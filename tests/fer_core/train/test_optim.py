"""What training optimises: class weights, the optimiser's groups, the learning-rate curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from fer_core import store
from fer_core.train.loop import TrainConfig
from fer_core.train.optim import class_weights, make_optimizer, make_scheduler
from tests.fer_core._trainfix import TRAIN_COUNTS, fer_run  # noqa: F401  (fixtures)

# ---------------------------------------------------------------- learning-rate schedules


def learning_rates(cfg: TrainConfig, steps_per_epoch: int = 10) -> list[float]:
    """The rate of every training step, and the one left after the last step."""
    opt = make_optimizer(nn.Linear(2, 2), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=steps_per_epoch)
    lrs = []
    for _ in range(cfg.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return [*lrs, opt.param_groups[0]["lr"]]


# Worked by hand: warm-up step k of w is lr * (k + 1) / w, so the last one is at lr; then
# lr * (1 + cos(pi * k / n)) / 2 over the n = total - w remaining steps, 0 after the last.
# cos(pi/6) = sqrt(3)/2 -> (2 + sqrt(3)) / 4 = 0.9330127, (2 - sqrt(3)) / 4 = 0.0669873;
# cos(pi/4) = sqrt(2)/2 -> (2 + sqrt(2)) / 4 = 0.8535534, (2 - sqrt(2)) / 4 = 0.1464466.
CURVES = [
    # 8 steps, warm-up 2 (1 epoch of 2 steps), then cosine over 6
    (dict(epochs=4, warmup_epochs=1, lr=0.1), 2,
     [0.05, 0.1, 0.1, 0.09330127, 0.075, 0.05, 0.025, 0.00669873, 0.0]),
    # no warm-up: cosine over all 6 steps from the first
    (dict(epochs=3, warmup_epochs=0, lr=0.01), 2,
     [0.01, 0.009330127, 0.0075, 0.005, 0.0025, 0.000669873, 0.0]),
    # warm-up 4 in quarters, then cosine over 4
    (dict(epochs=2, warmup_epochs=1, lr=1.0), 4,
     [0.25, 0.5, 0.75, 1.0, 1.0, 0.8535534, 0.5, 0.1464466, 0.0]),
    # warm-up asked longer than training: cut to total - 1 steps, one cosine step is left
    (dict(epochs=1, warmup_epochs=5, lr=1.0), 3, [0.5, 1.0, 1.0, 0.0]),
]


@pytest.mark.parametrize(("kw", "steps", "expected"), CURVES)
def test_warmup_then_cosine_follows_the_hand_worked_curve(kw, steps, expected):
    assert learning_rates(TrainConfig(**kw), steps) == pytest.approx(expected, abs=1e-7)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    lrs = learning_rates(TrainConfig(epochs=4, warmup_epochs=1, lr=0.1))
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1) == max(lrs)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False)) and lrs[-2] < 1e-3
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_onecycle_schedule_peaks_after_warmup():
    lrs = learning_rates(TrainConfig(epochs=4, warmup_epochs=1, lr=0.1, schedule="onecycle",
                                     optimizer="sgd"))[:-1]
    assert 8 <= int(np.argmax(lrs)) <= 10 and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert lrs[0] < 0.01 and lrs[-1] < 1e-4


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 0), (2, 0), (2, 10), (3, 0), (3, 1)])
def test_onecycle_on_one_step_per_epoch_peaks_and_ends_low(epochs, warmup):
    # A few images and batch 128: one step per epoch (this raised ZeroDivisionError).
    steps = learning_rates(TrainConfig(epochs=epochs, warmup_epochs=warmup, lr=0.1,
                                       schedule="onecycle", optimizer="sgd"), 1)[:-1]
    assert max(steps) == pytest.approx(0.1), steps
    assert len(steps) < 3 or (steps[0] < 0.01 and steps[-1] < 1e-3), steps


def test_no_weight_decay_on_norm_scales_and_biases():
    cfg = TrainConfig(weight_decay=0.05)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    decay, plain = make_optimizer(model, cfg).param_groups
    assert decay["weight_decay"] == 0.05 and [p.ndim for p in decay["params"]] == [4]
    assert plain["weight_decay"] == 0 and len(plain["params"]) == 3  # conv bias, BN w and b


# ---------------------------------------------------------------- class weights


def test_class_weights_follow_the_counts():
    codes = np.repeat([0, 1, 2], [10, 30, 60])
    onehot = np.eye(3, dtype=np.uint8)[codes]
    # 100 images, 3 classes: 100 / (3 * 10), 100 / (3 * 30), 100 / (3 * 60)
    expected = [10 / 3, 10 / 9, 5 / 9]
    assert class_weights(onehot) == pytest.approx(expected)
    assert class_weights(codes, num_classes=3) == pytest.approx(expected)
    # Weighted counts are equal: every class pulls on the loss as hard as the others.
    assert class_weights(onehot) * [10, 30, 60] == pytest.approx([100 / 3] * 3)


def test_an_absent_class_weighs_nothing_and_leaves_the_others_as_they_were():
    # 4 images of 4 classes, 1 and 3 absent: 4 / (4 * 3) and 4 / (4 * 1), as if all were
    # counted; scikit-learn itself refuses a class that the labels lack.
    codes = np.array([0, 0, 0, 2])
    assert class_weights(codes, num_classes=4) == pytest.approx([1 / 3, 0, 1, 0])
    assert class_weights(np.eye(4, dtype=np.uint8)[codes]) == pytest.approx([1 / 3, 0, 1, 0])
    with pytest.raises(ValueError, match="valid labels"):
        compute_class_weight("balanced", classes=np.arange(4), y=codes)
    with pytest.raises(ValueError, match="expected 3"):
        class_weights(np.array([0, 3]), num_classes=3)


def test_class_weights_on_the_real_training_labels(fer_run):  # noqa: F811
    saved = store.load_set(fer_run, "train")
    # _trainfix saves angry 70, happy 110, neutral 80, surprise 60 training faces (320):
    # 320 / (4 * 70) = 8/7, 320 / (4 * 110) = 8/11, 320 / (4 * 80) = 1, 320 / (4 * 60) = 4/3.
    assert [TRAIN_COUNTS[c] for c in saved.classes] == [70, 110, 80, 60]
    assert class_weights(saved.labels) == pytest.approx([8 / 7, 8 / 11, 1, 4 / 3], rel=1e-12)
    assert class_weights(saved.labels) == pytest.approx(compute_class_weight(
        "balanced", classes=np.arange(4), y=saved.targets), rel=1e-12)
