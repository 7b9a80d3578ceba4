"""(ours) Near-duplicates: the same face re-encoded, resized, brightened, cropped or shifted.

SHA-1 (fer_core.prepare.duplicates) only sees identical bytes. Here every kept image gets a 64-bit
perceptual hash (imagehash's DCT ``phash``, computed for many images at once:
fer_core.prepare.phash); pairs within ``max_distance`` bits are found by
multi-index hashing (the hash cut into blocks so that two hashes within that many bits agree
on one block up to ``block_radius`` bits: only images whose blocks match that closely are
compared, never all pairs), then confirmed by a 256-bit phash of the same pair
(``max_fine_distance``), computed for the candidates' images alone.

A DCT hash of a 48-pixel face moves far under a shift of 2-3 pixels, so the held-out side
is also hashed at a few small shifts and scales (``shift``, ``scales``): a shifted or
cropped copy is close to one of them. The training side is hashed at half of them (one of
each opposite pair), which finds shifted copies among training images too (``probe``).
The defaults are measured on made copies of real FER2013 faces (bench/near_duplicates.py):
96% of made pairs found, under 1% of distinct faces falsely paired; without the probes or
the 256-bit check one of the two fails.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from fer_core.config.near_duplicates import NearDupConfig
from fer_core.prepare.hamming import within
from fer_core.prepare.manifest import DUPLICATE, HELD_OUT, KEPT
from fer_core.prepare.phash import phash

NEAR = "near-duplicate"
WORK = 48  # every image is hashed as a 48x48 grey face: FER2013's size, and probes in pixels
# Only the centre is hashed: a probe that moves or shrinks an image fills its border with
# copied edge pixels, which its original does not have (measured: 89% recall, 96% without).
MARGIN = 4
PAIR_COLUMNS = ["a", "b", "probe", "distance", "fine_distance"]


def probes(cfg: NearDupConfig) -> list[tuple[float, float, float]]:
    """(dx, dy, scale) of each probe; the first is the image itself."""
    s = cfg.shift
    moves = [(dx, dy, 1.0) for dx in (-s, 0.0, s) for dy in (-s, 0.0, s) if (dx, dy) != (0, 0)]
    return [(0.0, 0.0, 1.0), *(moves if s else []), *((0.0, 0.0, k) for k in cfg.scales)]


def grey48(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return cv2.resize(grey, (WORK, WORK), interpolation=cv2.INTER_AREA)


def _moved(grey: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    if (dx, dy, scale) == (0.0, 0.0, 1.0):
        return grey
    c = (WORK - 1) / 2
    m = np.float32([[scale, 0, (1 - scale) * c + dx], [0, scale, (1 - scale) * c + dy]])
    return cv2.warpAffine(grey, m, (WORK, WORK), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def coarse_hashes(images: list[np.ndarray], cfg: NearDupConfig, *,
                  probed: np.ndarray) -> np.ndarray:
    """(n, P) 64-bit phashes of one batch, at the probes ``probed`` (n, P) marks for each
    image (probe 0 always; the others stay 0 where not marked, never looked up)."""
    ps = probes(cfg)
    out = np.zeros((len(images), len(ps)), np.uint64)
    img, probe = np.nonzero(probed)
    greys = [grey48(i) for i in images]
    centres = np.stack([_centre(greys[i], ps[p]) for i, p in zip(img, probe, strict=True)]) \
        if len(img) else np.zeros((0, WORK - 2 * MARGIN, WORK - 2 * MARGIN), np.uint8)
    out[img, probe] = phash(centres, 8)[:, 0]
    return out


def fine_hashes(images: list[np.ndarray], wanted: list[list[int]],
                cfg: NearDupConfig) -> list[dict[int, np.ndarray]]:
    """256-bit phashes of one batch at the probes ``wanted`` for each image (only the
    pairs' images need them: this is the costlier hash)."""
    ps = probes(cfg)
    asked = [(i, p) for i, want in enumerate(wanted) for p in want]
    greys = {i: grey48(images[i]) for i, _ in asked}
    centres = [_centre(greys[i], ps[p]) for i, p in asked]
    hashes = phash(np.stack(centres), 16) if centres else []
    out: list[dict[int, np.ndarray]] = [{} for _ in images]
    for (i, p), h in zip(asked, hashes, strict=True):
        out[i][p] = h
    return out


def _centre(grey: np.ndarray, move: tuple[float, float, float]) -> np.ndarray:
    return _moved(grey, *move)[MARGIN:WORK - MARGIN, MARGIN:WORK - MARGIN]


def candidates(coarse: np.ndarray, subsets: np.ndarray, cfg: NearDupConfig,
               changed: np.ndarray | None = None) -> pd.DataFrame:
    """Pairs within ``max_distance`` on the 64-bit hash: ``moved`` at ``probe`` against
    ``other`` as it is. Every image is compared with every other as it is; a probed image
    is also compared at its probes, with the images of the other subsets. With ``changed``
    (a mask of the images), only the pairs with a changed image: the search is exhaustive
    (``fer_core.prepare.hamming``), so a pair's verdict depends on its two images alone,
    and those of two unchanged images can be kept from a search before."""
    img, probe = np.nonzero(probed(subsets, cfg))
    k, r = cfg.max_distance, cfg.block_radius
    if changed is None:
        hits = within(coarse[:, 0], coarse[img, probe], k, r)
        a, b, d, p = img[hits[:, 0]], hits[:, 1], hits[:, 2], probe[hits[:, 0]]
    else:
        # A changed image moved against every image; an unchanged one moved against the
        # changed ones (its moved hashes indexed, the few changed hashes the queries).
        mine = changed[img]
        ch = np.flatnonzero(changed)
        h1 = within(coarse[:, 0], coarse[img[mine], probe[mine]], k, r)
        h2 = within(coarse[img[~mine], probe[~mine]], coarse[ch, 0], k, r)
        a = np.concatenate([img[mine][h1[:, 0]], img[~mine][h2[:, 1]]])
        b = np.concatenate([h1[:, 1], ch[h2[:, 0]]])
        d = np.concatenate([h1[:, 2], h2[:, 2]])
        p = np.concatenate([probe[mine][h1[:, 0]], probe[~mine][h2[:, 1]]])
    # An image is never its own pair; a held-out image's probe is only for the other subsets.
    with_all = (cfg.probe == "all") | ((cfg.probe == "half") & ~np.isin(subsets[a], HELD_OUT))
    keep = (a != b) & ((p == 0) | (subsets[a] != subsets[b]) | with_all)
    out = pd.DataFrame({"moved": a[keep], "other": b[keep], "probe": p[keep],
                        "distance": d[keep]})
    # Each unordered pair once at probe 0 (found from both sides), the probes' hits as found.
    first = (out["probe"] > 0) | (out["moved"] < out["other"])
    return out[first].reset_index(drop=True)


def wanted_fine(cands: pd.DataFrame, n: int) -> list[list[int]]:
    """For each of the n images, the probes whose 256-bit hash the candidates need."""
    want: list[set[int]] = [set() for _ in range(n)]
    for m, o, p in zip(cands["moved"], cands["other"], cands["probe"], strict=True):
        want[m].add(int(p))
        want[o].add(0)
    return [sorted(w) for w in want]


def confirm(cands: pd.DataFrame, fine: list[dict[int, np.ndarray]],
            cfg: NearDupConfig) -> pd.DataFrame:
    """The candidates within ``max_fine_distance`` on the 256-bit hash, each unordered pair
    once (a < b) at its closest probe."""
    fd = np.array([int(np.bitwise_count(fine[m][p] ^ fine[o][0]).sum())
                   for m, o, p in zip(cands["moved"], cands["other"], cands["probe"],
                                      strict=True)], np.int64)
    a, b = cands["moved"].to_numpy(), cands["other"].to_numpy()
    pairs = pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), "probe": cands["probe"],
                          "distance": cands["distance"], "fine_distance": fd})
    pairs = pairs[pairs["fine_distance"] <= cfg.max_fine_distance]
    pairs = pairs.sort_values(["a", "b", "distance", "fine_distance", "probe"])
    return pairs.drop_duplicates(["a", "b"]).reset_index(drop=True)[PAIR_COLUMNS]


def find_pairs(images: list[np.ndarray], subsets: np.ndarray,
               cfg: NearDupConfig) -> pd.DataFrame:
    """Near-duplicate pairs among images in memory (the stage reads them in chunks:
    fer_core.prepare.near_search); positions a < b into ``images``."""
    coarse = coarse_hashes(images, cfg, probed=probed(subsets, cfg))
    cands = candidates(coarse, subsets, cfg)
    return confirm(cands, fine_hashes(images, wanted_fine(cands, len(images)), cfg), cfg)


def half_probes(cfg: NearDupConfig) -> np.ndarray:
    """Which probes are the first of each opposite pair of moves (and the shrinking
    scales): a copy moved by -m is found from the other image's probe at +m."""
    return np.array([(dx, dy) > (0.0, 0.0) if scale == 1.0 else scale < 1.0
                     for dx, dy, scale in probes(cfg)]) | (np.arange(len(probes(cfg))) == 0)


def probed(subsets: np.ndarray, cfg: NearDupConfig) -> np.ndarray:
    """(n, P): the probes each image is hashed at (``cfg.probe``); subsets: of the hashed
    rows."""
    n_probes = len(probes(cfg))
    out = np.zeros((len(subsets), n_probes), bool)
    out[:, 0] = True
    test = np.isin(subsets, HELD_OUT)
    if cfg.probe == "all":
        out[:] = True
    elif cfg.probe in ("held_out", "half") and (~test).any():
        out[test] = True
    if cfg.probe == "half":
        out[~test] |= half_probes(cfg)
    return out


def hashed_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows that are hashed: kept images, in manifest order."""
    return manifest[manifest["status"] == KEPT]


def with_paths(pairs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Pairs by path (``rows``: the hashed rows the positions refer to)."""
    path = rows["path"].to_numpy()
    out = pairs.assign(path_a=path[pairs["a"]], path_b=path[pairs["b"]])
    return out[["path_a", "path_b", "probe", "distance", "fine_distance"]]


def mark_near_duplicates(manifest: pd.DataFrame, pairs: pd.DataFrame,
                         cfg: NearDupConfig) -> pd.DataFrame:
    """``drop_train``: each training image paired with a held-out test image becomes a
    duplicate of its closest one (``duplicate_of``), with a reason saying so. ``report``
    returns the manifest unchanged."""
    out = manifest.copy()
    if cfg.policy == "report" or pairs.empty:
        return out
    by_path = out.reset_index().set_index("path")
    sub_a = by_path.loc[pairs["path_a"], "subset"].to_numpy()
    sub_b = by_path.loc[pairs["path_b"], "subset"].to_numpy()
    # Held out: test, and a labels file's val; a pair of two held-out images drops neither.
    held_a, held_b = np.isin(sub_a, HELD_OUT), np.isin(sub_b, HELD_OUT)
    cross = pairs[held_a != held_b]
    a_test = held_a[held_a != held_b]
    links = pd.DataFrame({"train": np.where(a_test, cross["path_b"], cross["path_a"]),
                          "test": np.where(a_test, cross["path_a"], cross["path_b"]),
                          "distance": cross["distance"], "fine": cross["fine_distance"]})
    closest = links.sort_values(["train", "distance", "fine", "test"]).drop_duplicates("train")
    for r in closest.itertuples(index=False):
        i, t = by_path.at[r.train, "index"], by_path.at[r.test, "index"]
        label = ""
        if out.at[i, "class"] != out.at[t, "class"]:
            label = f"; labelled '{out.at[i, 'class']}' here, '{out.at[t, 'class']}' there"
        out.at[i, "status"] = DUPLICATE
        out.at[i, "duplicate_of"] = r.test
        out.at[i, "reason"] = (f"{NEAR}: perceptual hash distance {r.distance} "
                               f"of held-out {r.test}{label}")
    return out


def pair_table(manifest: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """reports/near_duplicates.csv: each pair with the split and class of both images (the
    split the run gave them; the subset for an image dropped before the split)."""
    m = manifest.set_index("path")
    split = m["split"].where(m["split"] != "", m["subset"] + " (" + m["status"] + ")")
    out = pd.DataFrame({"path_a": pairs["path_a"], "path_b": pairs["path_b"],
                        "split_a": split.loc[pairs["path_a"]].to_numpy(),
                        "split_b": split.loc[pairs["path_b"]].to_numpy(),
                        "class_a": m.loc[pairs["path_a"], "class"].to_numpy(),
                        "class_b": m.loc[pairs["path_b"], "class"].to_numpy(),
                        "distance": pairs["distance"].to_numpy(),
                        "fine_distance": pairs["fine_distance"].to_numpy()})
    return out.sort_values(["distance", "fine_distance", "path_a", "path_b"], ignore_index=True)


def split_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Pairs per (unordered) split pair, and how many of them carry different labels."""
    ends = np.sort(table[["split_a", "split_b"]].to_numpy(str), axis=1)
    t = table.assign(splits=[f"{a}-{b}" for a, b in ends],
                     different_labels=table["class_a"] != table["class_b"])
    out = t.groupby("splits").agg(pairs=("path_a", "size"),
                                  different_labels=("different_labels", "sum"))
    return out.astype(int).reset_index()


def class_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per class: pairs with an image of that class, those across splits, and those whose
    other image is labelled differently."""
    rows = []
    cross = table["split_a"] != table["split_b"]
    differ = table["class_a"] != table["class_b"]
    for cls in sorted(set(table["class_a"]) | set(table["class_b"])):
        has = (table["class_a"] == cls) | (table["class_b"] == cls)
        rows.append({"class": cls, "pairs": int(has.sum()),
                     "cross_split": int((has & cross).sum()),
                     "different_labels": int((has & differ).sum())})
    return pd.DataFrame(rows, columns=["class", "pairs", "cross_split", "different_labels"])
