"""(ours) The config of a person's review of the label audit (fer_core.prepare.review)."""

from __future__ import annotations

from fer_core.config.base import Config


class ReviewConfig(Config):
    # A CSV with columns path (as in the manifest), action (relabel | drop | keep) and
    # new_class (for relabel); a relative path is taken from the working folder.
    file: str | None = None
