"""The serve flow points fer serve's service at a training run's published model."""

from __future__ import annotations

import shutil

import pytest

from fer_core.models.weights import DEFAULT_CHECKPOINT
from flows.serve import checkpoint_of


def test_a_run_folder_serves_its_published_model(tmp_path):
    published = tmp_path / "run" / "model" / "best.pt"
    published.parent.mkdir(parents=True)
    shutil.copy(DEFAULT_CHECKPOINT, published)
    assert checkpoint_of(None, str(tmp_path / "run")) == str(published)
    assert checkpoint_of(str(DEFAULT_CHECKPOINT), None) == str(DEFAULT_CHECKPOINT)


def test_it_needs_exactly_one_model_that_exists(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        checkpoint_of(None, None)
    with pytest.raises(ValueError, match="exactly one"):
        checkpoint_of(str(DEFAULT_CHECKPOINT), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*model/best.pt"):
        checkpoint_of(None, str(tmp_path))
