"""The shipped FER+ model (``--model ferplus``): small, loads as data, and reproduces its
card on the real PrivateTest faces, their labels taken here from ``ferplus_votes.csv`` by the
FER+ paper's majority rule (written again below, not fer_core's), the faces prepared with
fer_core's own steps and scored with scikit-learn. Skipped while no FER+ model is shipped."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score

from fer_core.models import checkpoint
from fer_core.models.weights import FERPLUS_CHECKPOINT
from fer_core.prepare import align
from tests.conftest import REPO
from tests.fer_core.models import _card

CARD = REPO / "docs" / "MODEL_CARD_FERPLUS.md"
VOTES = REPO.parent / "shared" / "data" / "ferplus_votes.csv"
EMOTIONS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
            "contempt"]


@pytest.fixture(scope="module")
def shipped():
    if not FERPLUS_CHECKPOINT.is_file():
        pytest.skip(f"no FER+ model shipped yet at {FERPLUS_CHECKPOINT.name}")
    return FERPLUS_CHECKPOINT


def majority_labels(votes: pd.DataFrame) -> pd.Series:
    """FER+'s majority vote (Barsoum et al. 2016, section 3): a single vote is an outlier and
    dropped; the top column labels the face when it holds more than half of all the votes
    left (unknown and not-a-face included); a face topped by those two has no label."""
    counts = votes[[*EMOTIONS, "unknown", "NF"]].where(lambda v: v > 1, 0)
    top = counts.idxmax(axis=1)
    labelled = (counts.max(axis=1) * 2 > counts.sum(axis=1)) & top.isin(EMOTIONS)
    return top[labelled]


def _card_row() -> tuple[int, float]:
    """(faces scored, accuracy) of the card's PrivateTest row."""
    row = re.search(r"^\| `test` \(PrivateTest\) \| `\w+` \| ([\d,]+) \| [\d,]+ \| ([\d.]+)% \|",
                    CARD.read_text(), re.M)
    assert row, f"{CARD} has no PrivateTest row"
    return int(row.group(1).replace(",", "")), float(row.group(2)) / 100


def test_shipped_ferplus_is_small_and_loads_as_plain_tensors(shipped):
    assert shipped.stat().st_size <= 10 * 2**20
    payload = torch.load(shipped, map_location="cpu", weights_only=True)
    assert set(payload) == {"model"}
    _, meta = checkpoint.load_model(shipped)
    assert [c.lower() for c in sorted(meta["classes"])] == sorted(EMOTIONS)


@pytest.mark.fer2013
def test_shipped_ferplus_reproduces_its_cards_private_test_accuracy(shipped, fer2013_full):
    votes = pd.read_csv(VOTES)
    private = votes[votes["usage"] == "PrivateTest"].set_index("path")
    labels = majority_labels(private)
    paths = list(labels.index)
    # today's preparation, which the model was trained on; its face spec: aligned, 96 px, TTA
    proba, meta = _card.probabilities(shipped, fer2013_full, paths, align.AlignConfig())
    codes = {c.lower(): i for i, c in enumerate(meta["classes"])}
    y_true = labels.map(codes).to_numpy()
    accuracy = accuracy_score(y_true, proba.argmax(axis=1))
    n_card, card_accuracy = _card_row()
    # Preparation never drops a test face for being a duplicate: the same faces on both sides.
    assert len(paths) == n_card, (n_card, len(paths))
    assert abs(accuracy - card_accuracy) <= 0.005, (accuracy, card_accuracy)
    assert accuracy > 0.6  # far above the ~35% of always answering Neutral
