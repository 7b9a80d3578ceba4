"""The training loop: fit on real faces, seeded and resumable runs, early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_core import store
from fer_core.models.checkpoint import CheckpointError, load_model, safe_load
from fer_core.train import loop as train_mod
from fer_core.train.loop import TrainConfig, fit
from tests.fer_core._trainfix import fer_run, fer_tiny_run, trained  # noqa: F401  (fixtures)


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
    other = fit(fer_tiny_run, TINY.model_copy(update={"epochs": 1, "random_state": 8}),
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
        fit(fer_tiny_run, TINY.model_copy(update={"lr": 1e-2}), out_dir=tmp_path)


def test_early_stopping_after_patience_epochs_without_improvement(
        fer_tiny_run, tmp_path, monkeypatch):  # noqa: F811
    scores = iter([0.3, 0.5, 0.4, 0.5, 0.45, 0.9])  # best at epoch 2; 3 and 4 do not beat it

    def fake_evaluate(*args, **kwargs):
        return {"loss": 1.0, "acc": 0.5, "macro_f1": next(scores)}

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
    cfg = TINY.model_copy(update={"epochs": 6, "patience": 2, "mixup_alpha": 0.0,
                                  "cutmix_alpha": 0.0})
    result = fit(fer_tiny_run, cfg, out_dir=tmp_path, resume=False)
    assert result.stopped_early and result.last_epoch == 4 and result.best_epoch == 2
    assert safe_load(tmp_path / "checkpoints" / "last.pt")["epoch"] == 4
    assert store.read_json(tmp_path / "checkpoints" / "best.json")["epoch"] == 2


def test_fit_uses_out_dir_and_leaves_the_run_folder_alone(fer_run, trained):  # noqa: F811
    assert not (fer_run / "checkpoints").exists() and not (fer_run / "reports").exists()
    assert trained.best_checkpoint == trained.out_dir / "checkpoints" / "best.pt"
    assert Path(trained.best_checkpoint).exists() and trained.device == "cpu"
