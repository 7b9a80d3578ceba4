"""The machine: device choice, on-device batch augmentation, batches read from disk."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from fer_core import UsageError, store
from fer_core.runtime.device import augment, file_batches, mix, prefetched, resolve_device, shrink
from tests.fer_core._trainfix import fer_run  # noqa: F401  (fixtures)

# ---------------------------------------------------------------- device choice


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")


def test_an_explicit_device_must_exist(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    # a missing device is the user's to fix: a UsageError (one line, exit 2), not a bug
    with pytest.raises(UsageError, match="no CUDA"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="no MPS"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="auto, cpu, cuda, mps"):
        resolve_device("tpu")


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
    time.sleep(0.3)
    assert len(consumed) <= 3 + 2 + 2  # the thread stopped a few items past the break
