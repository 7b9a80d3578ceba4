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
                 known: Mapping[str, np.ndarray] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict[str, np.ndarray]]:
    """``search``, reusing the hashes ``known`` holds (``{key: hashes}``, keys by
    ``hash_keys``: an image's content, not its path): only the other images are read and
    hashed. Returns also the hashes computed now, by their keys."""
    known = known or {}
    rows = nd.hashed_rows(m)
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
    cands = nd.candidates(coarse, subsets, cfg)
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
    pairs = nd.with_paths(nd.confirm(cands, fine, cfg), rows)
    meta = {"images": len(rows), "hashed": len(todo), "hashed_fine": len(need),
            "candidates": len(cands), "pairs": len(pairs)}
    return pairs, nd.mark_near_duplicates(m, pairs, cfg), meta, new


def _chunks(read_batches: Reader, paths: list[str], size: int, desc: str,
            progress: Callable | None):
    chunks = read_batches(paths, size)
    if progress is None:
        return chunks
    return progress(chunks, total=-(-len(paths) // size), desc=desc)
