"""Training: configuration, class weights, on-device augmentation, fit, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from fer_core import store
from fer_core.models.checkpoint import CheckpointError, load_model, safe_load
from fer_core.runtime.device import augment, file_batches, mix, prefetched, resolve_device, shrink
from fer_core.train import loop as train_mod
from fer_core.train.loop import TrainConfig, class_weights, fit, make_optimizer, make_scheduler
from tests.fer_core._trainfix import REPO, fer_run, fer_tiny_run, trained  # noqa: F401  (fixtures)

# ---------------------------------------------------------------- configuration


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['epohcs'\]"):
        TrainConfig.from_dict({"epohcs": 3})


def test_config_is_frozen_and_keyword_only():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainConfig("compact_cnn")  # type: ignore[misc]


def test_config_file_types_are_checked_and_yaml_floats_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: compact_cnn\nlr: 1e-3\nepochs: 4\nnum_threads: null\n")
    cfg = TrainConfig.from_file(path)
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float) and cfg.epochs == 4
    path.write_text("epochs: four\n")
    with pytest.raises(ValueError, match=r"c\.yaml: TrainConfig\.epochs: expected int"):
        TrainConfig.from_file(path)


def test_config_values_are_validated_together():
    with pytest.raises(ValueError, match="optimizer='adam'.*schedule='step'"):
        TrainConfig.from_dict({"optimizer": "adam", "schedule": "step"})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "nope"})


@pytest.mark.parametrize("path", sorted((REPO / "bench" / "configs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_bench_configs_load_and_keep_the_default_class_weights(path):
    cfg = TrainConfig.from_file(path)
    # The benchmarks report what `fer train` gives users: the paper's class-weighted loss.
    assert cfg.class_weights is TrainConfig().class_weights is True
    assert cfg.model == {"gpu_resnet18": "resnet18"}.get(path.stem, "vgg_faces")


def test_config_round_trips_through_a_dict():
    cfg = TrainConfig(model="compact_cnn", lr=0.01, num_threads=2, weights="w.pt")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def learning_rates(cfg: TrainConfig, steps_per_epoch: int = 10) -> list[float]:
    opt = make_optimizer(nn.Linear(2, 2), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=steps_per_epoch)
    lrs = []
    for _ in range(cfg.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_cosine_schedule_warms_up_then_decays_to_zero():
    lrs = learning_rates(TrainConfig(epochs=4, warmup_epochs=1, lr=0.1))
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1) == max(lrs)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False)) and lrs[-1] < 1e-3


def test_onecycle_schedule_peaks_after_warmup():
    lrs = learning_rates(TrainConfig(epochs=4, warmup_epochs=1, lr=0.1, schedule="onecycle",
                                     optimizer="sgd"))
    assert 8 <= int(np.argmax(lrs)) <= 10 and max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert lrs[0] < 0.01 and lrs[-1] < 1e-4


def test_no_weight_decay_on_norm_scales_and_biases():
    cfg = TrainConfig(weight_decay=0.05)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    decay, plain = make_optimizer(model, cfg).param_groups
    assert decay["weight_decay"] == 0.05 and [p.ndim for p in decay["params"]] == [4]
    assert plain["weight_decay"] == 0 and len(plain["params"]) == 3  # conv bias, BN w and b


def test_device_choice():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda, mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")


# ---------------------------------------------------------------- class weights


def test_class_weights_follow_the_counts():
    codes = np.repeat([0, 1, 2], [10, 30, 60])
    onehot = np.eye(3, dtype=np.uint8)[codes]
    expected = 100 / (3 * np.array([10, 30, 60]))
    assert np.allclose(class_weights(onehot), expected)
    assert np.allclose(class_weights(codes, num_classes=3),
                       compute_class_weight("balanced", classes=np.arange(3), y=codes))
    # Weighted counts are equal: every class pulls on the loss as hard as the others.
    assert np.allclose(class_weights(onehot) * [10, 30, 60], 100 / 3)
    assert class_weights(np.array([0, 0, 2]), num_classes=3)[1] == 0  # absent class


def test_class_weights_on_the_real_training_labels(fer_run):  # noqa: F811
    saved = store.load_set(fer_run, "train")
    counts = saved.labels.sum(axis=0)
    assert np.allclose(class_weights(saved.labels), len(saved.labels) / (4 * counts))


# ---------------------------------------------------------------- batch augmentation


def test_augment_without_geometry_only_mirrors():
    x = torch.rand(64, 3, 96, 96)
    out = augment(x, np.random.default_rng(0), translate=0, scale=0, rotate_deg=0, hflip=True)
    same = (out - x).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (out - x.flip(3)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (same ^ mirrored).all() and 10 < mirrored.sum() < 54


def test_augment_is_seeded_and_changes_images():
    x = torch.rand(8, 3, 96, 96)
    kw = dict(translate=0.1, scale=0.1, rotate_deg=10, hflip=True)
    a = augment(x, np.random.default_rng(1), **kw)
    assert torch.equal(a, augment(x, np.random.default_rng(1), **kw))
    assert not torch.allclose(a, x, atol=1e-3) and a.shape == x.shape
    assert 0 <= a.min() and a.max() <= 1  # reflection padding brings in no new values


def test_mixup_blends_pairs_and_cutmix_pastes_a_box():
    x, y = torch.rand(16, 3, 96, 96), torch.arange(16)
    out, y2, lam = mix(x, y, np.random.default_rng(0), mixup_alpha=0.4, cutmix_alpha=0)
    assert 0 < lam < 1 and torch.allclose(out, lam * x + (1 - lam) * x[y2])
    out, y2, lam = mix(x, y, np.random.default_rng(3), mixup_alpha=0, cutmix_alpha=1.0)
    from_partner = (out == x[y2]) & (out != x)
    assert torch.equal(out[~from_partner], x[~from_partner])
    paired = y2 != y  # an image paired with itself shows no box
    assert paired.sum() > 8
    assert abs(from_partner[paired, 0].float().mean().item() - (1 - lam)) < 1e-6
    assert mix(x, y, np.random.default_rng(0), mixup_alpha=0, cutmix_alpha=0)[2] == 1.0


def test_augment_to_a_smaller_size_without_geometry_is_a_bilinear_resize():
    x = torch.rand(16, 1, 48, 48)
    out = augment(x, np.random.default_rng(0), translate=0, scale=0, rotate_deg=0,
                  hflip=False, size=40)
    expected = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear",
                                               align_corners=False)
    assert out.shape == (16, 1, 40, 40) and torch.allclose(out, expected, atol=1e-5)


def test_shrink_halves_by_2x2_means_while_twice_the_size():
    x = torch.rand(2, 1, 96, 96)
    out = shrink(x, 40)
    assert out.shape[-2:] == (48, 48)
    assert torch.allclose(out[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    assert shrink(x, 48).shape[-2:] == (48, 48) and shrink(x, 49) is x


# ---------------------------------------------------------------- batches from disk


def test_file_batches_read_every_row_once_in_the_order_given(fer_run):  # noqa: F811
    saved = store.load_set(fer_run, "train")
    images, targets = np.load(saved.images.filename), saved.targets  # the oracle: np.load
    order = np.random.default_rng(0).permutation(len(targets))[:101]
    got_rows, got_targets = [], []
    for xb, yb in file_batches(lambda r: store.read_rows(saved.images.filename, r), targets,
                               32, order=order):
        assert xb.dtype == torch.uint8 and len(xb) == len(yb) <= 32
        got_rows.append(xb.numpy())
        got_targets.append(yb.numpy())
    rows, tg = np.concatenate(got_rows), np.concatenate(got_targets)
    # Each batch holds the rows of its slice of the order (sorted within the batch).
    expect = np.concatenate([np.sort(order[s:s + 32]) for s in range(0, 101, 32)])
    assert np.array_equal(rows, images[expect]) and np.array_equal(tg, targets[expect])


def test_prefetched_reraises_a_reader_error_and_stops_early():
    def items():
        yield 1
        raise OSError("disk gone")

    it = prefetched(items(), 2)
    assert next(it) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(it)
    consumed = []

    def endless():
        n = 0
        while True:
            consumed.append(n)
            yield n
            n += 1

    for k in prefetched(endless(), 2):
        if k == 3:
            break
    import time

    time.sleep(0.3)
    assert len(consumed) <= 3 + 2 + 2  # the thread stopped a few items past the break


def test_grey_training_faces_make_a_grey_model(fer_run, trained):  # noqa: F811
    # FER2013 is grey: its three channels are equal, so the model and its checkpoint turn
    # colour faces grey too.
    assert train_mod._grey_faces(store.load_set(fer_run, "train"))
    meta = store.read_json(trained.best_checkpoint.with_suffix(".json"))
    assert meta["preprocessing"]["grayscale"]["value"] is True
    model, _ = load_model(trained.best_checkpoint)
    assert model.grayscale is True


def test_colour_training_faces_make_a_colour_model(tmp_path):
    rng = np.random.default_rng(0)
    store.write_array(tmp_path / "images.npy", rng.integers(0, 256, (20, 8, 8, 3), np.uint8))
    saved = store.SavedSet(images=store.read_array(tmp_path / "images.npy"),
                           labels=np.eye(2, dtype=np.uint8)[np.arange(20) % 2],
                           classes=("a", "b"))
    assert not train_mod._grey_faces(saved)


# ---------------------------------------------------------------- fit


def test_compact_cnn_learns_real_faces(fer_run, trained):  # noqa: F811
    hist = trained.history
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.05
    majority = np.bincount(store.load_set(fer_run, "train").targets).argmax()
    majority_rate = (store.load_set(fer_run, "val").targets == majority).mean()
    val = trained.metrics["val"]  # the epoch chosen on val macro-F1
    assert val["accuracy"] == pytest.approx(hist[trained.best_epoch - 1]["val_acc"])
    # 320 faces and ~60 steps: a real but modest signal (0.33-0.37 over seeds 0-2).
    assert val["accuracy"] > majority_rate, (val["accuracy"], majority_rate)
    # Always answering the majority class scores macro-F1 0.1 here (F1 0.4 on one of 4).
    assert val["macro_f1"] > 0.2


# Every random part on: augmentation, mixup and cutmix, dropout, class weights.
TINY = TrainConfig(model="compact_cnn", epochs=3, batch_size=16, lr=2e-3, warmup_epochs=1,
                   mixup_alpha=0.4, cutmix_alpha=1.0, mix_prob=0.8, label_smoothing=0.1,
                   patience=0, device="cpu", random_state=7, num_threads=1)


def _numbers(history) -> list[dict]:
    return [{k: v for k, v in h.items() if not k.startswith("train_seconds")
             and k != "train_images_per_s"} for h in history]


@pytest.fixture(scope="module")
def tiny_reference(fer_tiny_run, tmp_path_factory):  # noqa: F811
    return fit(fer_tiny_run, TINY, out_dir=tmp_path_factory.mktemp("ref"), resume=False)


def test_same_seed_gives_identical_metrics(fer_tiny_run, tiny_reference, tmp_path):  # noqa: F811
    again = fit(fer_tiny_run, TINY, out_dir=tmp_path, resume=False)
    assert _numbers(again.history) == _numbers(tiny_reference.history)
    assert again.metrics == tiny_reference.metrics
    other = fit(fer_tiny_run, dataclasses.replace(TINY, epochs=1, random_state=8),
                out_dir=tmp_path / "other", resume=False)
    assert other.history[0]["train_loss"] != tiny_reference.history[0]["train_loss"]


def test_resume_after_interruption_continues_from_the_saved_epoch(
        fer_tiny_run, tiny_reference, tmp_path):  # noqa: F811
    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(fer_tiny_run, TINY, out_dir=tmp_path, progress=stop_after_first)
    assert safe_load(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1
    seen = []
    resumed = fit(fer_tiny_run, TINY, out_dir=tmp_path, progress=lambda r: seen.append(r["epoch"]))
    assert seen == [2, 3]
    assert resumed.train_images == 2 * (len(store.load_set(fer_tiny_run, "train").images)
                                        // TINY.batch_size) * TINY.batch_size
    # Same numbers as the run that was never interrupted: state and RNG were restored.
    assert _numbers(resumed.history) == _numbers(tiny_reference.history)
    assert resumed.metrics == tiny_reference.metrics
    with pytest.raises(CheckpointError, match=r"cannot resume.*\['lr'\]"):
        fit(fer_tiny_run, dataclasses.replace(TINY, lr=1e-2), out_dir=tmp_path)


def test_early_stopping_after_patience_epochs_without_improvement(
        fer_tiny_run, tmp_path, monkeypatch):  # noqa: F811
    scores = iter([0.3, 0.5, 0.4, 0.5, 0.45, 0.9])  # best at epoch 2; 3 and 4 do not beat it

    def fake_evaluate(*args, **kwargs):
        return {"loss": 1.0, "acc": 0.5, "macro_f1": next(scores)}

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
    cfg = dataclasses.replace(TINY, epochs=6, patience=2, mixup_alpha=0, cutmix_alpha=0)
    result = fit(fer_tiny_run, cfg, out_dir=tmp_path, resume=False)
    assert result.stopped_early and result.last_epoch == 4 and result.best_epoch == 2
    assert safe_load(tmp_path / "checkpoints" / "last.pt")["epoch"] == 4
    assert store.read_json(tmp_path / "checkpoints" / "best.json")["epoch"] == 2


def test_fit_uses_out_dir_and_leaves_the_run_folder_alone(fer_run, trained):  # noqa: F811
    assert not (fer_run / "checkpoints").exists() and not (fer_run / "reports").exists()
    assert trained.best_checkpoint == trained.out_dir / "checkpoints" / "best.pt"
    assert Path(trained.best_checkpoint).exists() and trained.device == "cpu"
