"""Training on label distributions (FER+'s crossentropy mode) against majority labels, on
real FER+ faces: the same model, the same steps and seeds, and the crossentropy model's
predicted distributions are closer to the crowd's votes on held-out faces (mean KL
divergence, scipy's oracle)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import rel_entr

from fer_core import store
from fer_core.models import checkpoint
from fer_core.train.loop import TrainConfig, fit
from tests.conftest import require_fer2013
from tests.fer_core._trainfix import REPO, TARBALL

VOTES = REPO.parent / "shared" / "data" / "ferplus_votes.csv"
EMOTIONS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
            "contempt"]
N_TRAIN, N_HELD = 360, 120
# ~70 steps of compact_cnn on one thread, as tests/fer_core/_trainfix.LEARN_CONFIG.
STEPS = dict(model="compact_cnn", epochs=6, batch_size=32, lr=3e-3, weight_decay=0.0,
             warmup_epochs=1, augment=False, patience=0, device="cpu", num_threads=1,
             random_state=0)


def _vote_distributions() -> pd.DataFrame:
    """Training faces whose votes are mostly for an emotion, each with the emotions' share
    of its votes (straight from the CSV: no outlier rule, no code under test)."""
    votes = pd.read_csv(VOTES)
    votes = votes[votes["usage"] == "Training"]
    emo = votes[EMOTIONS].to_numpy(float)
    mostly = emo.sum(axis=1) > 0.5 * votes[[*EMOTIONS, "unknown", "NF"]].sum(axis=1)
    votes = votes[mostly].sample(N_TRAIN + N_HELD, random_state=0)
    dist = votes[EMOTIONS].to_numpy(float)
    return pd.DataFrame(dist / dist.sum(axis=1, keepdims=True), index=votes["path"],
                        columns=EMOTIONS)


def _faces(paths: list[str]) -> np.ndarray:
    want, got = set(paths), {}
    with tarfile.open(TARBALL) as tar:
        for member in tar:
            rel = member.name.removeprefix("fer2013/")
            if rel in want:
                grey = cv2.imdecode(np.frombuffer(tar.extractfile(member).read(), np.uint8),
                                    cv2.IMREAD_GRAYSCALE)
                got[rel] = cv2.cvtColor(cv2.resize(grey, (96, 96)), cv2.COLOR_GRAY2RGB)
                if len(got) == len(want):
                    break
    return np.stack([got[p] for p in paths])


@pytest.fixture(scope="module")
def ferplus_run(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A run folder in the FORMATS.md layout: train with its distributions, the held-out
    faces as val (the model after the last step is compared, so selection plays no part)."""
    require_fer2013(TARBALL)
    if not VOTES.exists():
        pytest.skip(f"{VOTES} not found")
    dist = _vote_distributions()
    images = _faces(list(dist.index))
    p = dist.to_numpy(np.float32)
    run = tmp_path_factory.mktemp("ferplus_modes")
    for split, rows in (("train", slice(0, N_TRAIN)), ("val", slice(N_TRAIN, None))):
        store.write_array(run / "sets" / split / "images.npy", images[rows])
        store.write_array(run / "sets" / split / "labels.npy",
                          np.eye(len(EMOTIONS), dtype=np.uint8)[p[rows].argmax(1)])
        store.write_array(run / "sets" / split / "distribution.npy", p[rows])
    store.write_json(run / "sets" / store.SETS_META, {
        "classes": EMOTIONS, "image_size": [96, 96], "channels": "RGB", "scale": 255,
        "splits": {"train": N_TRAIN, "val": N_HELD}, "distribution": "distribution.npy"})
    return run, images[N_TRAIN:], p[N_TRAIN:]


def _last_model_kl(out: Path, images: np.ndarray, p: np.ndarray) -> float:
    model, _meta = checkpoint.load_model(out / "checkpoints" / "last.pt")
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        q = torch.softmax(model(x), dim=1).double().numpy()
    return float(rel_entr(p, q).sum(axis=1).mean())


def test_crossentropy_predicts_the_vote_distributions_better_than_majority(
        ferplus_run, tmp_path):
    run, held_images, held_p = ferplus_run
    kl = {}
    for mode in ("majority", "crossentropy"):
        out = tmp_path / mode
        result = fit(run, TrainConfig(**STEPS, label_mode=mode), out_dir=out, resume=False)
        assert result.last_epoch == STEPS["epochs"]
        assert store.read_json(out / "reports" / "metrics.json")["label_mode"] == mode
        kl[mode] = _last_model_kl(out, held_images, held_p)
    assert kl["crossentropy"] < kl["majority"], kl


def test_probability_mode_resumes_with_the_same_draws(ferplus_run, tmp_path):
    """Each epoch's draws come from (random_state, epoch): a run interrupted after its first
    epoch and resumed ends with the uninterrupted run's weights, and a run with another
    seed draws (and so ends) otherwise."""
    run, _images, _p = ferplus_run
    cfg = TrainConfig(**{**STEPS, "epochs": 2}, label_mode="probability")

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    whole = fit(run, cfg, out_dir=tmp_path / "whole", resume=False)
    with pytest.raises(KeyboardInterrupt):
        fit(run, cfg, out_dir=tmp_path / "cut", resume=False, progress=stop_after_first)
    resumed = fit(run, cfg, out_dir=tmp_path / "cut")
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    a = checkpoint.load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")[0]["model"]
    b = checkpoint.load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")[0]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = fit(run, cfg.model_copy(update={"random_state": 1, "epochs": 1}),
                out_dir=tmp_path / "other", resume=False)
    assert other.history[0]["train_loss"] != whole.history[0]["train_loss"]
