"""Section 5's augmentation per class: each class's noisy images made apart, then the set.

A class's draws come from its own seed (``augment.class_seed``: the configured seed, the
class and its images' files), so its noisy images depend on that class alone: a rerun
after one edited image renders that image's class again and reuses the others. The
training set is then put together in its reshuffled order (``assembly``: kept with the
plan, and used when the set is published into a run folder, so the store never holds a
second copy of it): a row without noise is its source image, a noisy one its class's
rendered image. The same pixels as rendering every row (``augment.render_chunks``),
whichever classes were reused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fer_core.config.augment import AugmentConfig
from fer_core.prepare import augment


@dataclass(frozen=True)
class ClassPlan:
    """The augmented training set, by class."""
    rows: pd.DataFrame  # augment.plan_augmentation's rows, with each source's path
    train: np.ndarray  # positions in the index that ``source`` counts
    labels: np.ndarray  # the class code of each of them
    parts: list[pd.DataFrame]  # each class's rows (source, noise, class, seed), in order
    contents: list[str]  # what each class's pixels are made of (augment.class_contents)
    part: np.ndarray  # per row of ``rows``: its class code
    noisy: np.ndarray  # per row: its place among its class's noisy rows, or -1


def class_plan(index: pd.DataFrame, classes: tuple[str, ...], cfg: AugmentConfig) -> ClassPlan:
    """The plan of the images that ``index`` (path, split, label, sha1, content; one row per
    stored image) puts in ``train``. The draws are seeded from the files (sha1), the keys
    of the rendered parts from what the pixels are made of (content)."""
    train = np.flatnonzero(index["split"].to_numpy() == "train")
    labels = index["label"].to_numpy()[train]
    sources = augment.class_contents(index["sha1"].to_numpy()[train], labels, len(classes))
    contents = augment.class_contents(index["content"].to_numpy()[train], labels, len(classes))
    parts = augment.class_plans(labels, classes, cfg, sources)
    rows, order = augment.shuffled(parts, classes, cfg)
    rows.insert(1, "path", index["path"].to_numpy()[train][rows["source"].to_numpy()])
    part = np.concatenate([np.full(len(p), c, np.int64) for c, p in enumerate(parts)] or
                          [np.zeros(0, np.int64)])
    noisy = np.concatenate([np.where(p["noise"] != "none", np.cumsum(p["noise"] != "none") - 1,
                                     -1) for p in parts] or [np.zeros(0, np.int64)])
    return ClassPlan(rows=rows, train=train, labels=labels, parts=list(parts), contents=contents,
                     part=part[order], noisy=noisy[order].astype(np.int64))


def part_key(plan: ClassPlan, code: int) -> str:
    """What a class's noisy images are made of: its images' content and its draws (sources
    counted within the class, so the other classes' images do not move them)."""
    p = plan.parts[code]
    local = np.searchsorted(np.flatnonzero(plan.labels == code), p["source"].to_numpy())
    lines = "\n".join(f"{s}\t{n}\t{d}" for s, n, d in zip(local, p["noise"], p["seed"],
                                                          strict=True))
    return hashlib.sha256(f"{plan.contents[code]}\n{lines}".encode()).hexdigest()


def render_class(plan: ClassPlan, code: int, read: Callable[[np.ndarray], np.ndarray],
                 chunk: int = augment.RENDER_CHUNK) -> Iterator[np.ndarray]:
    """The noisy images of one class, in its rows' order, ``chunk`` at a time (``read(p)``:
    the stored images at index positions ``p``)."""
    p = plan.parts[code]
    return augment.render_chunks(p[p["noise"] != "none"], plan.train, read, chunk)


def noisy_count(plan: ClassPlan, code: int) -> int:
    return int((plan.parts[code]["noise"] != "none").sum())


def assembly(plan: ClassPlan) -> pd.DataFrame:
    """Where each row of the training set (in its order) takes its pixels from: ``position``,
    its source in the stored images, and for a noisy row ``part``, its class, and ``noisy``,
    its place among that class's rendered images (-1: a row without noise). Kept with the
    plan, so the set can be put together later without the configuration."""
    return pd.DataFrame({"position": plan.train[plan.rows["source"].to_numpy()],
                         "part": plan.part, "noisy": plan.noisy})


def assemble(rows: pd.DataFrame, read: Callable[[np.ndarray], np.ndarray],
             read_noisy: Callable[[int, np.ndarray], np.ndarray],
             chunk: int = augment.RENDER_CHUNK) -> Iterator[np.ndarray]:
    """The training set's images in its order, ``chunk`` at a time, from its ``assembly``
    rows: a row without noise read from the stored images (``read(positions)``), a noisy
    one from its class's rendered images (``read_noisy(code, places)``)."""
    position, part, noisy = (rows[c].to_numpy() for c in ("position", "part", "noisy"))
    for start in range(0, len(position), chunk):
        stop = min(start + chunk, len(position))
        rendered, code_of = noisy[start:stop], part[start:stop]
        plain = np.flatnonzero(rendered < 0)
        first = read(position[start:stop][plain])
        out = np.empty((stop - start, *first.shape[1:]), np.uint8)
        out[plain] = first
        for code in np.unique(code_of[rendered >= 0]):
            where = np.flatnonzero((rendered >= 0) & (code_of == code))
            out[where] = read_noisy(int(code), rendered[where])
        yield out
