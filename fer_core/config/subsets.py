"""A named test subset's spec: a list file naming some held-out images (fer_core.prepare
.subsets)."""

from __future__ import annotations

from fer_core.config.base import Config

PARENT = "test"


class SubsetSpec(Config):
    """``name``: how reports call it (``test_private``); ``list_path``: a text file with one
    image path per line, relative to the data folder (blank lines and ``#`` comments are
    skipped); the subset holds the listed images of the ``parent`` split."""

    name: str
    list_path: str
    parent: str = PARENT
