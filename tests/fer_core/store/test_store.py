"""The result store: atomic writes, and sealed results that are never trusted when damaged."""

import numpy as np
import pytest

from fer_core import store
from fer_core.prepare.resize import normalize


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), store.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_array_writer_streams_and_refuses_a_short_write(tmp_path):
    w = store.ArrayWriter(tmp_path / "a.npy", (5, 2, 2, 3))
    for start in range(0, 5, 2):
        w.append(np.full((min(2, 5 - start), 2, 2, 3), start, np.uint8))
    ref = w.close()
    arr = store.read_array(ref.path)
    assert arr.shape == (5, 2, 2, 3) and arr[4, 0, 0, 0] == 4
    short = store.ArrayWriter(tmp_path / "b.npy", (5, 2))
    short.append(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="wrote 2 of 5"):
        short.close()
    assert not (tmp_path / "b.npy").exists()


@pytest.mark.parametrize(("shape", "dtype", "step"), [
    ((7, 4, 4, 3), np.uint8, 3), ((0, 96, 96, 3), np.uint8, 1), ((50, 7), np.float32, 16),
    ((9,), np.int64, 9)])
def test_array_writer_writes_the_bytes_np_save_writes(tmp_path, shape, dtype, step):
    rng = np.random.default_rng(0)
    arr = (rng.random(shape) * 250).astype(dtype)
    np.save(tmp_path / "oracle.npy", arr, allow_pickle=False)  # the oracle: numpy's own
    w = store.ArrayWriter(tmp_path / "out" / "a.npy", shape, dtype)
    for start in range(0, shape[0], step):
        w.append(arr[start:start + step])
    w.close()
    assert (tmp_path / "out" / "a.npy").read_bytes() == (tmp_path / "oracle.npy").read_bytes()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.npy"], "no temporary left"


def test_array_writer_refuses_wrong_rows_and_an_abort_leaves_nothing(tmp_path):
    w = store.ArrayWriter(tmp_path / "a.npy", (3, 2))
    with pytest.raises(ValueError, match=r"rows of shape \(3,\)"):
        w.append(np.zeros((1, 3), np.uint8))
    w.append(np.ones((2, 2), np.uint8))
    with pytest.raises(ValueError, match="more than the 3 rows"):
        w.append(np.ones((2, 2), np.uint8))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def _produce(calls):
    def make(out):
        calls.append(out)
        store.write_array(out / "x.npy", np.arange(1000, dtype=np.uint8))
        return {"n": 1000}
    return make


@pytest.mark.parametrize("damage", ["delete", "truncate", "alter", "unsealed"])
def test_damaged_results_are_recomputed(tmp_path, damage):
    calls = []
    first, reused = store.run_stage(tmp_path / "r", _produce(calls))
    assert not reused and store.result_meta(first) == {"n": 1000}
    again, reused = store.run_stage(tmp_path / "r", _produce(calls))
    assert reused and again == first and len(calls) == 1
    target = tmp_path / "r" / "x.npy"
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "alter":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        (tmp_path / "r" / store.DONE).unlink()
    redone, reused = store.run_stage(tmp_path / "r", _produce(calls))
    assert not reused and len(calls) == 2 and redone == first


def test_saved_set_divides_by_255_at_load(tmp_path):
    base = tmp_path / "sets"
    store.write_array(base / "val" / "images.npy", np.full((2, 4, 4, 3), 255, np.uint8))
    store.write_array(base / "val" / "labels.npy", np.eye(2, dtype=np.uint8))
    store.write_json(base / store.SETS_META, {"classes": ["a", "b"], "splits": {"val": 2}})
    s = store.load_set(tmp_path, "val")
    assert isinstance(s.images, np.memmap) and s.images.dtype == np.uint8
    assert normalize(s.images).max() == 1.0 and s.targets.tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match="no 'test' set"):
        store.load_set(tmp_path, "test")


def test_read_rows_gathers_the_same_rows_as_indexing(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (50, 4, 4, 3), dtype=np.uint8)
    ref = store.write_array(tmp_path / "a.npy", arr)
    idx = [49, 0, 7, 7, 3]
    assert np.array_equal(store.read_rows(ref.path, idx), arr[idx])
    assert store.read_rows(ref.path, []).shape == (0, 4, 4, 3)
    with pytest.raises(IndexError, match="not in 0..49"):
        store.read_rows(ref.path, [50])


def test_a_named_subset_is_read_as_rows_of_its_parent(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (9, 4, 4, 3), dtype=np.uint8)
    labels = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, 9)]
    base = tmp_path / "sets"
    for split, n in (("val", 4), ("test", 9)):
        store.write_array(base / split / "images.npy", images[:n])
        store.write_array(base / split / "labels.npy", labels[:n])
    rows = np.array([1, 4, 8], dtype=np.int64)
    store.write_array(base / "priv" / "index.npy", rows)
    store.write_json(base / store.SETS_META, {
        "classes": ["a", "b", "c"], "splits": {"train": 0, "val": 4, "test": 9},
        "subsets": {"priv": {"parent": "test", "index": "priv/index.npy", "n": 3},
                    "none_kept": {"parent": "test", "index": "x/index.npy", "n": 0}}})
    sub = store.load_set(tmp_path, "priv")
    assert np.array_equal(sub.images, images[[1, 4, 8]])
    assert np.array_equal(sub.labels, labels[[1, 4, 8]])
    assert sub.classes == ("a", "b", "c") and sub.parent == "test"
    assert sub.rows.tolist() == [1, 4, 8]
    # no second copy of the pixels on disk: the subset folder holds only its row indices
    assert sorted(p.name for p in (base / "priv").iterdir()) == ["index.npy"]
    assert store.evaluation_splits(tmp_path) == ("val", "test", "priv")
    with pytest.raises(FileNotFoundError, match="subsets: \\['none_kept', 'priv'\\]"):
        store.load_set(tmp_path, "public")


def test_publishing_a_result_again_leaves_no_temporary_file(tmp_path):
    src = store.write_array(tmp_path / "store" / "x.npy", np.arange(10, dtype=np.uint8)).path
    for _ in range(2):  # the second time, the run folder already holds a copy of it
        store.publish(src, tmp_path / "run" / "x.npy")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "x.npy" in names and not [n for n in names if n.endswith(".tmp")], names
    assert np.array_equal(store.read_array(tmp_path / "run" / "x.npy"), np.arange(10))


def test_copy_rows_in_chunks_equals_fancy_indexing(tmp_path):
    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (37, 5, 4, 3), dtype=np.uint8)
    store.write_array(tmp_path / "src.npy", src)
    index = rng.permutation(37)[:23]
    store.copy_rows(tmp_path / "src.npy", index, tmp_path / "dst.npy", chunk=4)
    np.testing.assert_array_equal(np.load(tmp_path / "dst.npy"), src[index])
