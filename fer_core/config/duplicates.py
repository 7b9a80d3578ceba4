"""Section 4's exact-duplicate config (fer_core.prepare.duplicates)."""

from __future__ import annotations

from typing import Literal

from fer_core.config.base import Config


class DedupConfig(Config):
    # The same bytes under two labels within one subset cannot both be right: drop every
    # copy ("drop"), or keep the first copy in path order and its label ("keep_first").
    # A group with test copies keeps all of them (see find_duplicates).
    on_conflict: Literal["drop", "keep_first"] = "drop"
