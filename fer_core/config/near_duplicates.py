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
    # Which images are also hashed at the probes: half: the held-out test ones at all of
    # them (compared with the other subsets) and the others at half of them, one of each
    # opposite pair of moves, compared with every image (a copy moved one way is found
    # from whichever of the two images is probed: near-copies inside the training folder,
    # which the split keeps on one side, at ~6x the hashing of those images); held_out:
    # the held-out ones only; all: every image at all (11x the hashing); none.
    probe: Literal["half", "held_out", "all", "none"] = "half"
    chunk: int = 1024              # images read and hashed at a time (bounded memory)
    block_radius: int = 1          # search: see fer_core.prepare.hamming.within
