"""(ours) The near-duplicate stage over the whole data, reading its images in chunks.

``near_duplicates`` holds the hashes and the search; here they run over a manifest's kept
images without holding them all in memory: a first pass hashes every image (64-bit pHash,
the held-out ones also at the probes), the coarse search finds candidate pairs, and a
second pass computes the 256-bit hash of the candidates' images alone to confirm them.
An image's hashes are a function of its content: ``search_known`` takes those computed
before (kept in the store by the task) and hashes only the images it has none for.
Pure but for the reader the caller passes: ``read_batches(paths, size)`` yields
``(start, images)`` for consecutive chunks of ``paths`` (``store.iter_image_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from fer_core.prepare import near_duplicates as nd

Reader = Callable[[list[str], int], Iterable[tuple[int, list[np.ndarray]]]]


def search(m: pd.DataFrame, cfg: nd.NearDupConfig, read_batches: Reader, *,
           progress: Callable | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(the confirmed pairs by path, the manifest with ``cfg.policy`` applied, counts of
    the images hashed, the candidates and the pairs). ``progress(iterable, total=, desc=)``
    wraps each pass's chunks (a progress bar)."""
    pairs, marked, meta, _ = search_known(m, cfg, read_batches, progress=progress)
    return pairs, marked, meta


def hash_keys(sha1s, probed: np.ndarray) -> list[str]:
    """Each image's 64-bit hashes' key: its content (``sha1``) and the probes it is hashed
    at; the fine hash of probe p is ``f"{sha1}/f{p}"``."""
    marks = probed.astype(np.uint64) << np.arange(probed.shape[1], dtype=np.uint64)
    return [f"{s}/c{int(b)}" for s, b in zip(sha1s, marks.sum(axis=1), strict=True)]


def search_known(m: pd.DataFrame, cfg: nd.NearDupConfig, read_batches: Reader, *,
                 progress: Callable | None = None,
                 known: Mapping[str, np.ndarray] | None = None,
                 last: tuple[pd.DataFrame, pd.DataFrame] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict[str, np.ndarray]]:
    """``search``, reusing the hashes ``known`` holds (``{key: hashes}``, keys by
    ``hash_keys``: an image's content, not its path): only the other images are read and
    hashed. ``last``: a search before with the same config, as (its ``searched_rows``, its
    pairs); the pairs of two images it saw unchanged are kept, and only the pairs with a
    changed image are searched. Returns also the hashes computed now, by their keys."""
    known = known or {}
    rows = nd.hashed_rows(m)
    kept = _unchanged(rows, last[0]) if last is not None else None
    paths, subsets = rows["path"].tolist(), rows["subset"].to_numpy()
    probed = nd.probed(subsets, cfg)
    keys = hash_keys(rows["sha1"], probed)
    coarse = np.zeros((len(rows), len(nd.probes(cfg))), np.uint64)
    todo = []
    for i, key in enumerate(keys):
        if key in known:
            coarse[i] = known[key]
        else:
            todo.append(i)
    for s, images in _chunks(read_batches, [paths[i] for i in todo], cfg.chunk, "phash",
                             progress):
        part = todo[s:s + len(images)]
        coarse[part] = nd.coarse_hashes(images, cfg, probed=probed[part])
    new = {keys[i]: coarse[i] for i in todo}
    cands = nd.candidates(coarse, subsets, cfg, None if kept is None else ~kept)
    # Second pass: the 256-bit hash of the candidates' images alone.
    sha1s = rows["sha1"].tolist()
    wanted = nd.wanted_fine(cands, len(rows))
    fine: list[dict] = [{p: known[f"{sha1s[i]}/f{p}"] for p in w if f"{sha1s[i]}/f{p}" in known}
                        for i, w in enumerate(wanted)]
    need = [i for i, w in enumerate(wanted) if len(fine[i]) < len(w)]
    for s, images in _chunks(read_batches, [paths[i] for i in need], cfg.chunk, "phash-256",
                             progress):
        part = need[s:s + len(images)]
        asked = [[p for p in wanted[i] if p not in fine[i]] for i in part]
        for i, hashes in zip(part, nd.fine_hashes(images, asked, cfg), strict=True):
            fine[i] = {**fine[i], **hashes}
            new |= {f"{sha1s[i]}/f{p}": h for p, h in hashes.items()}
    found = nd.confirm(cands, fine, cfg)
    if kept is not None:
        found = _with_kept(found, last[1], rows, kept)
    pairs = nd.with_paths(found, rows)
    meta = {"images": len(rows), "hashed": len(todo), "hashed_fine": len(need),
            "searched": len(rows) if kept is None else int((~kept).sum()),
            "candidates": len(cands), "pairs": len(pairs)}
    return pairs, nd.mark_near_duplicates(m, pairs, cfg), meta, new


def searched_rows(m: pd.DataFrame) -> pd.DataFrame:
    """What a search's pairs depend on besides the config, per hashed image: its path,
    content and subset (which decides its probes and whom it is compared with)."""
    return nd.hashed_rows(m)[["path", "sha1", "subset"]].reset_index(drop=True)


def _unchanged(rows: pd.DataFrame, last_rows: pd.DataFrame) -> np.ndarray:
    """Per hashed row: the last search saw this path with this content and subset."""
    def keys(df):
        return df["path"] + "\0" + df["sha1"] + "\0" + df["subset"]
    return keys(rows).isin(set(keys(last_rows))).to_numpy()


def _with_kept(found: pd.DataFrame, last_pairs: pd.DataFrame, rows: pd.DataFrame,
               kept: np.ndarray) -> pd.DataFrame:
    """``found`` (the pairs with a changed image) and the last search's pairs of two
    unchanged images, by positions into ``rows``, ordered as ``confirm`` orders them."""
    pos = pd.Series(np.arange(len(rows)), index=rows["path"].to_numpy())[kept]
    old = last_pairs[last_pairs["path_a"].isin(pos.index) & last_pairs["path_b"].isin(pos.index)]
    pa, pb = pos.loc[old["path_a"]].to_numpy(), pos.loc[old["path_b"]].to_numpy()
    old = pd.DataFrame({"a": np.minimum(pa, pb), "b": np.maximum(pa, pb),
                        "probe": old["probe"].to_numpy(), "distance": old["distance"].to_numpy(),
                        "fine_distance": old["fine_distance"].to_numpy()})
    both = pd.concat([found, old.astype(found.dtypes.to_dict())], ignore_index=True)
    return both.sort_values(["a", "b"], ignore_index=True)[nd.PAIR_COLUMNS]


def _chunks(read_batches: Reader, paths: list[str], size: int, desc: str,
            progress: Callable | None):
    chunks = read_batches(paths, size)
    if progress is None:
        return chunks
    return progress(chunks, total=-(-len(paths) // size), desc=desc)
