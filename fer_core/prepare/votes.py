"""Crowd votes to labels as FER+ does (Barsoum et al. 2016; FERPlus ``src/ferplus.py``,
``_process_data`` and the loader after it), one function per mode.

A row is the votes of one face over the classes, then the ignored columns (FER+'s
``unknown`` and ``NF``, last, as in its CSV: where FER+ says ``i >= 8`` we say "an ignored
column"). Each function returns ``(distribution over the classes, reason)``: a distribution
summing to 1 and ``""`` for a labelled face, or ``None`` and why it has no label
(``no majority``, ``unknown``, ``not a face``, or too few votes kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_core import UsageError

# FER+'s ignored columns and the reasons a face with one of them on top is rejected.
NOT_A_FACE = "NF"
IGNORED_REASONS = {NOT_A_FACE: "not a face", "unknown": "unknown"}
NO_MAJORITY = "no majority"
MODES = ("majority", "probability", "crossentropy")

Result = tuple[np.ndarray | None, str]


def drop_outliers(votes: np.ndarray) -> np.ndarray:
    """FER+'s outlier rule: a class with a single vote (or none) gets none. Counts only."""
    out = np.asarray(votes, dtype=np.float64).copy()
    out[out < 1.0 + np.finfo(np.float64).eps] = 0.0
    return out


def majority(votes: np.ndarray, ignored: Sequence[str], *, counts: bool = True) -> Result:
    """The top column is the label if it holds more than half of the votes (after the
    outlier rule), the ignored columns' votes included in that total; a top ignored column
    gives no label."""
    raw, n = _prepared(votes, ignored, counts)
    top = int(np.argmax(raw))
    if not raw[top] > 0.5 * raw.sum():
        return None, NO_MAJORITY
    if top >= n:
        return None, _ignored_reason(ignored, top - n)
    return np.eye(n)[top], ""


def probability(votes: np.ndarray, ignored: Sequence[str], *, counts: bool = True) -> Result:
    """FER+'s ``probability`` mode: the top classes (ties taken together), up to three,
    while they hold under 75% of the votes; an ignored column reached ends the taking (and
    is not taken when classes came before it); the face is dropped when what is taken is
    half the votes or less, or more than three classes. The kept votes, renormalised over
    the classes, are the distribution."""
    raw, n = _prepared(votes, ignored, counts)
    total = raw.sum()
    kept = np.zeros_like(raw)
    taken, count, valid = 0.0, 0, True
    while taken < 0.75 * total and count < 3 and valid:
        top = raw.max()
        for i in range(len(raw)):
            if raw[i] != top:
                continue
            kept[i], raw[i] = top, 0.0
            taken += top
            count += 1
            if i >= n:  # an ignored column shares the top: no more classes after it
                valid = False
                if kept.sum() > top:  # classes came before it: it is not taken
                    kept[i] = 0.0
                    count -= 1
                break
    if kept.sum() <= 0.5 * total or count > 3:
        return None, f"too spread: {kept.sum():g} of {total:g} votes in the top classes"
    top = int(np.argmax(kept))
    if top >= n:
        return None, _ignored_reason(ignored, top - n)
    return kept[:n] / kept[:n].sum(), ""


def crossentropy(votes: np.ndarray, ignored: Sequence[str], *, counts: bool = True) -> Result:
    """FER+'s ``crossentropy`` mode: the same distribution as ``probability`` (the modes
    differ in the training loss, not in which faces or targets they keep)."""
    return probability(votes, ignored, counts=counts)


FUNCTIONS = {"majority": majority, "probability": probability, "crossentropy": crossentropy}


def label_votes(votes: np.ndarray, ignored: Sequence[str], mode: str, *,
                counts: bool = True) -> Result:
    """One face's votes (classes, then ``ignored`` columns) under ``mode``."""
    if mode not in FUNCTIONS:
        raise UsageError(f"unknown labels mode {mode!r}; known: {', '.join(MODES)}")
    return FUNCTIONS[mode](votes, ignored, counts=counts)


def are_counts(table: np.ndarray) -> bool:
    """Whether a file's vote columns hold counts (some row sums past 1) rather than
    probabilities (every row sums to 1 or less); the outlier rule applies to counts only."""
    table = np.asarray(table, dtype=np.float64)
    return bool(table.size) and bool((table.sum(axis=1) > 1.0 + 1e-6).any())


def _prepared(votes, ignored: Sequence[str], counts: bool) -> tuple[np.ndarray, int]:
    raw = np.asarray(votes, dtype=np.float64)
    if raw.ndim != 1 or len(raw) <= len(ignored):
        raise ValueError(f"votes {raw.tolist()}: expected the classes then {list(ignored)}")
    return (drop_outliers(raw) if counts else raw.copy()), len(raw) - len(ignored)


def _ignored_reason(ignored: Sequence[str], i: int) -> str:
    return IGNORED_REASONS.get(ignored[i], ignored[i])
