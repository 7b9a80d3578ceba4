"""label_mode's targets: probability's draws follow each face's distribution (a chi-square
test, fixed seeds) and repeat per epoch; the mode follows, or must match, the preparation's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch import nn

from fer_core import store
from fer_core.prepare.config import build_config
from fer_core.train.targets import (
    TargetLoss,
    draw_labels,
    epoch_targets,
    prepared_label_mode,
    resolve_label_mode,
)

# FER+-like distributions over 8 classes: one face split 5/3/2, one 7/3, one unanimous.
DIST = np.array([[0.5, 0.3, 0.2, 0, 0, 0, 0, 0],
                 [0, 0, 0, 0, 0.7, 0, 0.3, 0],
                 [0, 0, 0, 0, 0, 0, 0, 1.0]], dtype=np.float32)


def _saved(dist: np.ndarray) -> store.SavedSet:
    n, c = dist.shape
    return store.SavedSet(images=np.zeros((n, 2, 2, 3), np.uint8),
                          labels=np.eye(c, dtype=np.uint8)[dist.argmax(1)],
                          classes=tuple(f"c{i}" for i in range(c)), distribution=dist)


def test_probability_draws_match_each_faces_distribution_over_epochs():
    saved, epochs = _saved(DIST), 3000
    drawn = np.stack([epoch_targets(saved, "probability", random_state=7, epoch=e).argmax(1)
                      for e in range(1, epochs + 1)])  # (epochs, faces)
    for face, p in enumerate(DIST):
        support = np.flatnonzero(p)
        counts = np.bincount(drawn[:, face], minlength=len(p))
        assert counts[p == 0].sum() == 0  # never a class without votes
        observed = counts[support]
        if len(support) > 1:
            expected = p[support].astype(np.float64) / p[support].sum() * epochs
            assert chisquare(observed, expected).pvalue > 0.01
            # The test can tell: the same counts are far from an even split of the support.
            wrong = np.full(len(support), epochs / len(support))
            assert chisquare(observed, wrong).pvalue < 1e-6
        else:
            assert observed[0] == epochs


def test_draws_of_many_faces_at_once_match_the_distribution():
    p = np.array([0.1, 0.4, 0.0, 0.25, 0.25], np.float32)
    drawn = draw_labels(np.tile(p, (20_000, 1)), np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=len(p))
    assert counts[2] == 0
    keep = p > 0
    assert chisquare(counts[keep], 20_000 * p[keep].astype(np.float64)).pvalue > 0.01


def test_an_epochs_draw_repeats_and_epochs_differ():
    saved = _saved(np.tile(DIST[:1], (200, 1)))
    one = epoch_targets(saved, "probability", random_state=3, epoch=5)
    assert np.array_equal(one, epoch_targets(saved, "probability", random_state=3, epoch=5))
    assert not np.array_equal(one, epoch_targets(saved, "probability", random_state=3, epoch=6))
    assert one.dtype == np.float32 and (one.sum(axis=1) == 1).all()  # one-hot draws


def test_majority_and_crossentropy_targets():
    saved = _saved(DIST)
    assert epoch_targets(saved, "majority", random_state=0, epoch=1).tolist() == [0, 4, 7]
    soft = epoch_targets(saved, "crossentropy", random_state=0, epoch=1)
    assert soft.dtype == np.float32 and np.array_equal(soft, DIST)
    # Class weights follow the one-hot labels: a face's row sums to its label's weight.
    weight = np.arange(1, 9, dtype=np.float32)
    weighted = epoch_targets(saved, "crossentropy", random_state=0, epoch=1,
                             class_weight=weight)
    assert np.allclose(weighted, DIST * weight[[0, 4, 7]][:, None])
    drawn = epoch_targets(saved, "probability", random_state=0, epoch=1, class_weight=weight)
    assert np.allclose(drawn.sum(axis=1), [1, 5, 8])  # the label's weight, not the draw's


def test_target_loss_weights_faces_by_their_label_and_matches_torch():
    torch.manual_seed(0)
    logits, p = torch.randn(6, 4), torch.softmax(torch.randn(6, 4), dim=1)
    weight, labels = torch.tensor([1.0, 2.0, 3.0, 0.5]), p.argmax(dim=1)
    for eps in (0.0, 0.1):
        plain = nn.CrossEntropyLoss(label_smoothing=eps)
        # unweighted soft targets: torch's own soft cross-entropy
        assert torch.allclose(TargetLoss(None, eps)(logits, p), plain(logits, p))
        # weighted: each face's cross-entropy times its label's weight, over their sum
        per = nn.CrossEntropyLoss(label_smoothing=eps, reduction="none")(logits, p)
        want = (per * weight[labels]).sum() / weight[labels].sum()
        got = TargetLoss(weight, eps)(logits, p * weight[labels][:, None])
        assert torch.allclose(got, want)
        # class targets: nn.CrossEntropyLoss with the class weights, unchanged
        hard = nn.CrossEntropyLoss(weight=weight, label_smoothing=eps)(logits, labels)
        assert torch.allclose(TargetLoss(weight, eps)(logits, labels), hard)


def test_the_mode_follows_the_preparation_or_must_match_it(tmp_path):
    (tmp_path / "votes.csv").write_text("path,a,b\nx.jpg,3,7\n")
    prepared = {mode: build_config(str(tmp_path), labels={"file": "votes.csv", "mode": mode}
                                   if mode else None).to_dict()
                for mode in ("crossentropy", "majority", None)}
    assert prepared_label_mode(prepared["crossentropy"]) == "crossentropy"
    assert prepared_label_mode(prepared["majority"]) == "majority"
    assert prepared_label_mode(prepared[None]) is None
    assert prepared_label_mode(None) is None
    assert resolve_label_mode(None, "crossentropy", has_distribution=True) == "crossentropy"
    assert resolve_label_mode(None, None, has_distribution=False) == "majority"
    # probability and crossentropy keep the same faces and distributions: interchangeable
    assert resolve_label_mode("probability", "crossentropy", has_distribution=True) \
        == "probability"
    with pytest.raises(ValueError, match="prepared with labels mode 'crossentropy'"):
        resolve_label_mode("majority", "crossentropy", has_distribution=True, run_dir="RUN")
    with pytest.raises(ValueError, match="--labels-mode crossentropy"):
        resolve_label_mode("crossentropy", "majority", has_distribution=True)
    with pytest.raises(ValueError, match="needs label distributions"):
        resolve_label_mode("probability", None, has_distribution=False)
