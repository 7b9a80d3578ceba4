"""(ours) The near-duplicate stage over the whole data, reading its images in chunks.

``near_duplicates`` holds the hashes and the search; here they run over a manifest's kept
images without holding them all in memory: a first pass hashes every image (64-bit pHash,
the held-out ones also at the probes), the coarse search finds candidate pairs, and a
second pass computes the 256-bit hash of the candidates' images alone to confirm them.
Pure but for the reader the caller passes: ``read_batches(paths, size)`` yields
``(start, images)`` for consecutive chunks of ``paths`` (``store.iter_image_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from fer_core.prepare import near_duplicates as nd

Reader = Callable[[list[str], int], Iterable[tuple[int, list[np.ndarray]]]]


def search(m: pd.DataFrame, cfg: nd.NearDupConfig, read_batches: Reader, *,
           progress: Callable | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(the confirmed pairs by path, the manifest with ``cfg.policy`` applied, counts of
    the images hashed, the candidates and the pairs). ``progress(iterable, total=, desc=)``
    wraps each pass's chunks (a progress bar)."""
    rows = nd.hashed_rows(m)
    paths, subsets = rows["path"].tolist(), rows["subset"].to_numpy()
    probed = nd.probed(subsets, cfg)
    coarse = np.concatenate([np.zeros((0, len(nd.probes(cfg))), np.uint64), *(
        nd.coarse_hashes(images, cfg, probed=probed[s:s + len(images)])
        for s, images in _chunks(read_batches, paths, cfg.chunk, "phash", progress))])
    cands = nd.candidates(coarse, subsets, cfg)
    # Second pass: the 256-bit hash of the candidates' images alone.
    wanted = nd.wanted_fine(cands, len(rows))
    need = [i for i, w in enumerate(wanted) if w]
    fine: list[dict] = [{} for _ in wanted]
    for s, images in _chunks(read_batches, [paths[i] for i in need], cfg.chunk, "phash-256",
                             progress):
        part = need[s:s + len(images)]
        for i, hashes in zip(part, nd.fine_hashes(images, [wanted[i] for i in part], cfg),
                             strict=True):
            fine[i] = hashes
    pairs = nd.with_paths(nd.confirm(cands, fine, cfg), rows)
    return (pairs, nd.mark_near_duplicates(m, pairs, cfg),
            {"images": len(rows), "candidates": len(cands), "pairs": len(pairs)})


def _chunks(read_batches: Reader, paths: list[str], size: int, desc: str,
            progress: Callable | None):
    chunks = read_batches(paths, size)
    if progress is None:
        return chunks
    return progress(chunks, total=-(-len(paths) // size), desc=desc)
