"""(ours) The near-duplicate stage over a manifest, its images read in chunks: planted copies
of training images held out as test images are found, whatever the chunk size, and the
second pass reads only the candidates' images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.datasets.near_copies import near_copy
from fer_core.prepare.manifest import DUPLICATE, KEPT, REJECTED, new_rows
from fer_core.prepare.near_duplicates import NearDupConfig
from fer_core.prepare.near_search import search, search_known, searched_rows


def smooth_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """n distinct smooth 48x48 grey patterns (random 6x6 fields, upscaled)."""
    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 255, (6, 6)).astype(np.uint8), (48, 48),
                       interpolation=cv2.INTER_CUBIC) for _ in range(n)]


@pytest.fixture(scope="module")
def data():
    """8 training images whose near-copies (JPEG, brightness) are held out as tests,
    12 unrelated images in each subset, and a rejected row that is never read."""
    faces = smooth_faces(32)
    rng = np.random.default_rng(1)
    images, rows = {}, []
    for i, f in enumerate(faces[:8]):
        images[f"train/a/src{i}.png"] = f
        images[f"test/a/copy{i}.png"] = near_copy(f, ("jpeg", "brightness")[i % 2], rng)
    for i, f in enumerate(faces[8:]):
        images[f"{('train', 'test')[i % 2]}/a/other{i}.png"] = f
    for path in sorted(images):
        rows.append({"path": path, "subset": path.split("/")[0], "class": "a", "sha1": path})
    rows.append({"path": "train/a/broken.png", "subset": "train", "status": REJECTED})
    return new_rows(rows), {p: cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for p, g in images.items()}


def reader(images: dict, log: list):
    def read_batches(paths, size):
        log.append(list(paths))
        for start in range(0, len(paths), size):
            yield start, [images[p] for p in paths[start:start + size]]

    return read_batches


def test_planted_copies_are_found_and_the_policy_is_applied(data):
    m, images = data
    before = m.copy()
    log = []
    pairs, marked, meta = search(m, NearDupConfig(policy="drop_train"), reader(images, log))
    assert m.equals(before), "the input manifest is not changed"
    found = set(zip(pairs["path_a"], pairs["path_b"], strict=True))
    made = {tuple(sorted((f"train/a/src{i}.png", f"test/a/copy{i}.png"))) for i in range(8)}
    assert made <= found, made - found
    assert meta == {"images": 40, "hashed": 40, "hashed_fine": len(log[1]), "searched": 40,
                    "candidates": meta["candidates"], "pairs": len(pairs)}
    assert meta["candidates"] >= len(pairs)
    first, second = log
    assert "train/a/broken.png" not in first and len(first) == 40, "kept images only"
    assert set(second) < set(first) and {p for pair in made for p in pair} <= set(second)
    out = marked.set_index("path")
    assert (out.loc[[f"train/a/src{i}.png" for i in range(8)], "status"] == DUPLICATE).all()
    assert (out.loc[[f"test/a/copy{i}.png" for i in range(8)], "status"] == KEPT).all()


def test_the_chunk_size_changes_nothing(data):
    m, images = data
    small, _, _ = search(m, NearDupConfig(chunk=3), reader(images, []))
    whole, _, _ = search(m, NearDupConfig(chunk=1000), reader(images, []))
    assert small.equals(whole) and len(whole) >= 8


def test_progress_wraps_each_pass(data):
    m, images = data
    seen = []

    def progress(chunks, *, total, desc):
        seen.append((desc, total))
        return chunks

    search(m, NearDupConfig(chunk=16), reader(images, []), progress=progress)
    assert seen[0] == ("phash", 3) and seen[1][0] == "phash-256"


def test_known_hashes_are_reused_and_only_a_changed_image_is_read_again(data):
    m, images = data
    cfg = NearDupConfig(policy="drop_train")
    _, _, _, kept = search_known(m, cfg, reader(images, []))
    # One training image edited (new content, so a new sha1): it alone is hashed again.
    edited = dict(images)
    edited["train/a/src3.png"] = cv2.flip(images["train/a/src3.png"], 1)
    m2 = m.copy()
    m2.loc[m2["path"] == "train/a/src3.png", "sha1"] = "edited"
    log = []
    pairs, marked, meta, new = search_known(m2, cfg, reader(edited, log), known=kept)
    assert log[0] == ["train/a/src3.png"] and meta["hashed"] == 1
    assert {k.split("/")[0] for k in new} == {"edited"}
    fresh_pairs, fresh_marked, _ = search(m2, cfg, reader(edited, []))  # the oracle: no reuse
    assert pairs.equals(fresh_pairs) and marked.equals(fresh_marked)
    assert ("train/a/src3.png", "test/a/copy3.png") not in set(
        zip(pairs["path_a"], pairs["path_b"], strict=True)), "a mirrored face is no copy"


def test_a_search_after_changes_keeps_the_unchanged_pairs_and_equals_a_fresh_one(data):
    m, images = data
    cfg = NearDupConfig(policy="drop_train")
    pairs, _, _, hashes = search_known(m, cfg, reader(images, []))
    last = (searched_rows(m), pairs)
    # Edited (src3 mirrored), added (a copy of src0), removed (copy1), moved to the other
    # subset (other0): every change a rerun sees.
    changed = dict(images)
    changed["train/a/src3.png"] = cv2.flip(images["train/a/src3.png"], 1)
    changed["test/a/copy8.png"] = near_copy(cv2.cvtColor(images["train/a/src0.png"],
                                                         cv2.COLOR_RGB2GRAY), "jpeg",
                                            np.random.default_rng(5))
    changed["test/a/copy8.png"] = cv2.cvtColor(changed["test/a/copy8.png"], cv2.COLOR_GRAY2RGB)
    m2 = m[m["path"] != "test/a/copy1.png"].copy()
    m2.loc[m2["path"] == "train/a/src3.png", "sha1"] = "edited"
    m2.loc[m2["path"] == "train/a/other0.png", "subset"] = "test"
    m2 = new_rows([*m2.drop(columns=[c for c in m2 if c not in ("path", "subset", "class",
                                                                 "sha1", "status")])
                   .to_dict("records"),
                   {"path": "test/a/copy8.png", "subset": "test", "class": "a",
                    "sha1": "copy8"}]).sort_values("path", ignore_index=True)
    again, marked, meta, _ = search_known(m2, cfg, reader(changed, []), known=hashes, last=last)
    fresh, fresh_marked, fresh_meta = search(m2, cfg, reader(changed, []))  # the oracle
    assert again.equals(fresh) and marked.equals(fresh_marked)
    assert meta["searched"] == 3 and fresh_meta["searched"] == len(searched_rows(m2))
    found = set(zip(fresh["path_a"], fresh["path_b"], strict=True))
    assert ("train/a/src0.png", "test/a/copy8.png") in found or \
        ("test/a/copy8.png", "train/a/src0.png") in found, "the added copy is paired"
    assert not any("copy1" in a + b for a, b in found), "the removed image's pair is gone"
    kept = set(zip(pairs["path_a"], pairs["path_b"], strict=True))
    assert len(found & kept) >= 5, "most pairs are the last search's, kept"
