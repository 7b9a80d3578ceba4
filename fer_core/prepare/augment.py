"""Section 5, Tables 4-5: class-balancing noise augmentation of the training split.

For each class, a fraction of the pre-augmented images gets each of Poisson, speckle and
Gaussian noise (scikit-image ``random_noise``), either added as new images or replacing
the originals; then the whole training set is reshuffled. The plan is data.

Table 4's text says 20% for Anger, but Table 5's counts (6582 -> 9543) imply 15%:
floor(0.15 * 6582) = 987 images per noise, 6582 + 3 * 987 = 9543. The preset follows
Table 5, whose every count it reproduces exactly (fractions are floored).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from skimage.util import random_noise

from fer_core import UsageError
from fer_core.config.augment import NOISES, AugmentConfig  # noqa: F401  (re-exported)
from fer_core.prepare.distribution import with_total

PLAN_NAMES = ("auto", "paper", "balance", "none")


@dataclass(frozen=True, kw_only=True)
class ClassPlan:
    fraction: float  # of the class's pre-augmented images, per noise
    mode: Literal["add", "replace"] = "add"


PAPER_PLAN: dict[str, ClassPlan] = {
    "Anger": ClassPlan(fraction=0.15, mode="add"),
    "Disgust": ClassPlan(fraction=1.0, mode="add"),
    "Fear": ClassPlan(fraction=1.0, mode="add"),
    "Happiness": ClassPlan(fraction=0.10, mode="add"),
    "Sadness": ClassPlan(fraction=0.10, mode="replace"),
    "Surprise": ClassPlan(fraction=0.20, mode="add"),
}


def resolve_plan(cfg: AugmentConfig, counts: Mapping[str, int]) -> dict[str, ClassPlan]:
    """The per-class plan for these training counts."""
    name = cfg.plan
    if isinstance(name, Mapping):
        plan = {c: p if isinstance(p, ClassPlan) else ClassPlan(**p) for c, p in name.items()}
    elif name == "none":
        return {c: ClassPlan(fraction=0.0) for c in counts}
    elif name == "paper" or (name == "auto" and set(counts) == set(PAPER_PLAN)):
        plan = dict(PAPER_PLAN)
    elif name in ("balance", "auto"):
        plan = balance_plan(counts, cfg)
    else:
        raise UsageError(f"unknown augmentation plan {name!r}; known: {', '.join(PLAN_NAMES)}")
    missing = sorted(set(counts) - set(plan))
    if missing:
        raise UsageError(f"augmentation plan has no entry for classes {missing} "
                         f"(it covers {sorted(plan)}); use --augment balance for other classes")
    return {c: plan[c] for c in counts}


def balance_plan(counts: Mapping[str, int], cfg: AugmentConfig) -> dict[str, ClassPlan]:
    """Add noisy copies so each class comes near the largest one."""
    target = max(counts.values())
    k = len(cfg.noises)
    return {c: ClassPlan(fraction=cfg.largest_replace_fraction, mode="replace") if n == target
            # A class with no training image (a given split can leave one) has none to copy.
            else ClassPlan(fraction=(target - n) / (k * n) if n else 0.0, mode="add")
            for c, n in counts.items()}


def plan_augmentation(labels: np.ndarray, classes: tuple[str, ...], cfg: AugmentConfig,
                      sources: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of the augmented training set: source index, noise, label, noise seed.

    ``labels`` are the codes of the pre-augmented training images, in stored order.
    The rows come reshuffled (seed ``random_state``); each carries its own noise seed,
    so rendering them in any order or any batch size gives the same pixels.
    ``sources``: which images each class has (``class_contents`` of their files' sha1); a
    class's draws are seeded from it and ``random_state`` alone, so a changed image changes
    only its class's draws, and nothing else does (not the resizing, its code or the
    machine's alignment numerics: the draws are the same wherever the set is prepared).
    """
    return shuffled(class_plans(labels, classes, cfg, sources), classes, cfg)[0]


def class_seed(random_state: int, cls: str, sources: str) -> np.random.SeedSequence:
    """The seed of one class's draws: the configured seed, the class and its images."""
    digest = hashlib.sha256(f"{cls}\n{sources}".encode()).digest()
    return np.random.SeedSequence([random_state, *np.frombuffer(digest[:16], np.uint32)])


def class_contents(keys: Sequence[str], labels: np.ndarray, n_classes: int) -> list[str]:
    """Per class code, a hash of its training images' ``keys``, in stored order."""
    keys = np.asarray(keys, dtype=object)
    return [hashlib.sha256("\n".join(keys[labels == c]).encode()).hexdigest()
            for c in range(n_classes)]


def class_plans(labels: np.ndarray, classes: tuple[str, ...], cfg: AugmentConfig,
                sources: Sequence[str] | None = None) -> list[pd.DataFrame]:
    """Each class's rows (source index, noise, class, noise seed), in class order, drawn
    from its own ``class_seed``."""
    counts = {classes[c]: int((labels == c).sum()) for c in range(len(classes))}
    plan = resolve_plan(cfg, counts)
    parts = []
    for code, cls in enumerate(classes):
        rng = np.random.default_rng(class_seed(cfg.random_state, cls,
                                               sources[code] if sources else ""))
        rows = _class_rows(np.flatnonzero(labels == code), plan[cls], cfg.noises, rng, cls)
        rows["seed"] = rng.integers(0, 2**63 - 1, size=len(rows), dtype=np.int64)
        parts.append(rows)
    return parts


def shuffled(parts: Sequence[pd.DataFrame], classes: tuple[str, ...],
             cfg: AugmentConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The classes' rows as one reshuffled training set (seed ``random_state``), and where
    each of its rows is in the classes' rows put end to end."""
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["source", "noise", "class", "seed"])
    rows["label"] = rows["class"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    order = np.random.default_rng(cfg.random_state).permutation(len(rows))
    rows = rows.iloc[order].reset_index(drop=True)
    return rows[["source", "noise", "label", "class", "seed"]], order


def _class_rows(idx: np.ndarray, plan: ClassPlan, noises, rng, cls: str) -> pd.DataFrame:
    n = len(idx)
    per_noise = math.floor(plan.fraction * n + 1e-9)
    noise = np.array(["none"] * n, dtype=object)
    sources, kinds = [idx], [noise]
    if plan.mode == "replace":
        if per_noise * len(noises) > n:
            raise UsageError(f"{cls}: replacing {plan.fraction:.0%} per noise for "
                             f"{len(noises)} noises needs more than its {n} images")
        chosen = rng.permutation(n)[: per_noise * len(noises)]
        for j, kind in enumerate(noises):
            noise[chosen[j * per_noise:(j + 1) * per_noise]] = kind
    elif plan.mode == "add":
        for kind in noises:
            sources.append(idx[_draw(rng, n, per_noise)])
            kinds.append(np.array([kind] * per_noise, dtype=object))
    else:
        raise UsageError(f"{cls}: unknown augmentation mode {plan.mode!r} (add or replace)")
    return pd.DataFrame({"source": np.concatenate(sources).astype(np.int64),
                         "noise": np.concatenate(kinds).astype(str), "class": cls})


def _draw(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k distinct images when k <= n; whole reshuffled passes, then the rest, when k > n."""
    full, rest = divmod(k, n) if n else (0, 0)
    picks = [rng.permutation(n) for _ in range(full)]
    picks.append(rng.choice(n, size=rest, replace=False))
    return np.concatenate(picks).astype(np.int64)


def add_noise(image: np.ndarray, noise: str, seed: int) -> np.ndarray:
    """One uint8 image with scikit-image's ``random_noise`` of the given kind.

    A grey face stored as RGB (three equal channels) gets grey noise, one noise image on
    every channel: noise drawn per channel would make it a colour image unlike any real
    one of the dataset. Colour faces get noise per channel, as the paper's did."""
    if noise == "none":
        return image
    grey = image.ndim == 3 and image.shape[2] > 1 and bool((image == image[..., :1]).all())
    src = image[..., 0] if grey else image
    noisy = random_noise(src, mode=noise, rng=np.random.default_rng(seed), clip=True)
    out = np.round(noisy * 255.0).astype(np.uint8)
    return np.repeat(out[..., None], image.shape[2], axis=2) if grey else out


def render_batch(images: np.ndarray, rows: pd.DataFrame) -> np.ndarray:
    """The augmented images of ``rows``, reading sources from the pre-augmented array."""
    out = np.empty((len(rows), *images.shape[1:]), np.uint8)
    for i, (src, noise, seed) in enumerate(zip(rows["source"], rows["noise"], rows["seed"],
                                               strict=True)):
        out[i] = add_noise(images[src], noise, int(seed))
    return out


RENDER_CHUNK = 1024  # augmented images rendered at a time


def render_chunks(rows: pd.DataFrame, positions: np.ndarray,
                  read: Callable[[np.ndarray], np.ndarray],
                  chunk: int = RENDER_CHUNK) -> Iterator[np.ndarray]:
    """The augmented images of ``rows``, ``chunk`` at a time. ``read(p)`` gives the stored
    images at positions ``p`` (``positions[source]``): only one chunk's sources are ever
    in memory, never the whole pre-augmented set."""
    for start in range(0, len(rows), chunk):
        part = rows.iloc[start:start + chunk]
        images = read(positions[part["source"].to_numpy()])
        yield render_batch(images, part.assign(source=np.arange(len(part))))


def plan_table(labels: np.ndarray, rows: pd.DataFrame, classes: tuple[str, ...],
               noises: tuple[str, ...] = NOISES) -> pd.DataFrame:
    """Table 4: the augmentation plan per class as carried out: images before, images per
    noise (their fraction of the class), and whether the noisy copies were added or
    replaced originals."""
    before = np.bincount(labels, minlength=len(classes))
    out = []
    for code, cls in enumerate(classes):
        mine = rows[rows["label"] == code]
        per_noise = {k: int((mine["noise"] == k).sum()) for k in noises}
        noisy = sum(per_noise.values())
        n = int(before[code])
        mode = "none" if noisy == 0 else "replace" if len(mine) == n else "add"
        out.append({"class": cls, "before": n, "mode": mode,
                    "per_noise": f"{max(per_noise.values()) / n:.0%}" if n else "0%",
                    **per_noise, "after": int(len(mine))})
    return pd.DataFrame(out)


def augmentation_table(labels: np.ndarray, rows: pd.DataFrame,
                       classes: tuple[str, ...]) -> pd.DataFrame:
    """Table 5: images per class before and after augmentation."""
    before = np.bincount(labels, minlength=len(classes))
    after = np.bincount(rows["label"].to_numpy(), minlength=len(classes))
    table = pd.DataFrame({"class": list(classes), "before": before.astype(int),
                          "after": after.astype(int)})
    return with_total(table)
