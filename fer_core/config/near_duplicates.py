"""(ours) The near-duplicate config (fer_core.prepare.near_duplicates)."""

from __future__ import annotations

from typing import Literal

from fer_core.config.base import Config


class NearDupConfig(Config):
    # report: list the pairs, drop nothing. drop_train: the training image of a train/test
    # pair is marked a duplicate of the test image (a test image is never dropped).
    policy: Literal["report", "drop_train"] = "report"
    max_distance: int = 10         # bits of the 64-bit phash (pairs are bucketed on it)
    max_fine_distance: int = 72    # bits of the 256-bit phash of the same pair
    shift: float = 2.0             # probes: the held-out image moved by -s, 0, +s pixels...
    scales: tuple[float, ...] = (0.93, 1.08)  # ...and scaled about its centre
    # Which images are also hashed at the probes: the held-out test ones (compared with the
    # other subsets), every image (compared with all: 11x the hashing), or none.
    probe: Literal["held_out", "all", "none"] = "held_out"
    chunk: int = 1024              # images read and hashed at a time (bounded memory)
    block_radius: int = 1          # search: see fer_core.prepare.near_duplicates._matches
