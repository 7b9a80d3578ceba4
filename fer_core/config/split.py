"""Section 4's split config: the stratified 80/20 split after a shuffle, seed 0, of whole
groups (fer_core.prepare.groups)."""

from __future__ import annotations

import re

from pydantic import field_validator

from fer_core.config.base import Config


class SplitConfig(Config):
    val_fraction: float = 0.2
    random_state: int = 0
    # (ours) near-duplicates of one another (the near-duplicate stage's pairs) are one group
    group_near_duplicates: bool = True
    # (ours) a regular expression on the file name whose first group is the subject or clip
    # id, e.g. '^([^_]+)_' for Movie_frame.png: the images of one id are one group
    group_pattern: str | None = None

    @field_validator("group_pattern")
    @classmethod
    def _one_group(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            compiled = re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None
        if compiled.groups < 1:
            raise ValueError("needs a group, e.g. '^([^_]+)_': its first group is the id")
        return v
