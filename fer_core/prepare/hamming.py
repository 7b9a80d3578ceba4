"""(ours) Every pair of 64-bit hashes within k bits, without comparing all pairs: multi-index
hashing. The hash is cut into blocks so that two hashes within k bits agree on one block up
to ``radius`` bits (pigeonhole); only hashes whose block is that close are compared. The
search is exhaustive: it finds exactly the pairs within k bits, so a pair's verdict depends
on its two hashes alone (what lets fer_core.prepare.near_search keep pairs between runs)."""

from __future__ import annotations

import itertools

import numpy as np


def _blocks(k: int, radius: int) -> list[tuple[int, int]]:
    """(shift, mask) of the contiguous blocks covering 64 bits: k // (radius + 1) + 1 of
    them, so two hashes within k bits differ in at most ``radius`` bits of one block."""
    n = k // (radius + 1) + 1
    edges = np.linspace(0, 64, n + 1).round().astype(int)
    return [(int(lo), (1 << int(hi - lo)) - 1) for lo, hi in zip(edges[:-1], edges[1:],
                                                                   strict=True)]


def _flips(bits: int, radius: int) -> np.ndarray:
    """Every mask of at most ``radius`` set bits among ``bits``."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in c) for c in itertools.combinations(range(bits), r)]
    return np.array(masks, np.uint64)


def within(index: np.ndarray, queries: np.ndarray, k: int, radius: int = 1,
             budget: int = 1 << 22) -> np.ndarray:
    """(query, index position, distance) of every query within k bits of an index hash, by
    multi-index hashing: per block, only index hashes whose block is within ``radius`` bits
    of the query's are compared; at most ``budget`` comparisons are held at a time.

    ``radius`` 0 is the plain k + 1 exact blocks; 1 (the default) needs half as many blocks
    of twice the bits, each 1/2**bits as crowded: a few times fewer comparisons."""
    found = []
    for shift, mask in _blocks(k, radius):
        keys = (index >> np.uint64(shift)) & np.uint64(mask)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        base = (queries >> np.uint64(shift)) & np.uint64(mask)
        for flip in _flips(int(mask).bit_length(), radius):
            qkeys = base ^ flip
            lo = np.searchsorted(sorted_keys, qkeys, "left")
            counts = np.searchsorted(sorted_keys, qkeys, "right") - lo
            found += _compare(index, queries, order, lo, counts, k, budget)
    hits = np.concatenate(found) if found else np.zeros((0, 3), np.int64)
    return np.unique(hits, axis=0)  # a pair found through several blocks counts once


def _compare(index, queries, order, lo, counts, k, budget) -> list[np.ndarray]:
    """The candidates each query's bucket range holds, compared in chunks of ~``budget``."""
    out = []
    ends = np.cumsum(counts)
    start = 0
    while start < len(queries):
        before = ends[start] - counts[start]
        stop = max(start + 1, int(np.searchsorted(ends, before + budget, "right")))
        n = counts[start:stop]
        q = np.repeat(np.arange(start, stop), n)
        offset = np.arange(len(q)) - np.repeat(ends[start:stop] - n - before, n)
        pos = order[np.repeat(lo[start:stop], n) + offset]
        d = np.bitwise_count(queries[q] ^ index[pos])
        hit = d <= k
        out.append(np.stack([q[hit], pos[hit], d[hit].astype(np.int64)], 1))
        start = stop
    return out
