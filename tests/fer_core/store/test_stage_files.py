"""The files inside stage results: written by suffix, resized images read across batches,
and the ingest's files table found again by its reuse key."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from fer_core import store
from fer_core.store import stage_files
from fer_core.store.files import Ref


def test_write_files_saves_each_file_by_its_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    fig = plt.figure()
    written = stage_files.write_files(tmp_path, {
        "t/table.csv": frame, "t/frame.parquet": frame, "a.npy": arr,
        "meta.json": {"z": 1, "a": [1, 2]}, "fig.png": fig})
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "t/table.csv", "t/frame.parquet", "a.npy", "meta.json", "fig.png"]
    assert (tmp_path / "t/table.csv").read_text() == "a,b\n1,x\n2,y\n"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t/frame.parquet"), frame)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), arr)
    assert json.loads((tmp_path / "meta.json").read_text()) == {"z": 1, "a": [1, 2]}
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number), "a saved figure is closed"


def test_write_files_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="no writer"):
        stage_files.write_files(tmp_path, {"notes.txt": "hello"})


def _resized(tmp_path, rows_per_batch=(3, 2), size=2) -> tuple[Ref, pd.DataFrame, np.ndarray]:
    """A resize result by hand: image k is filled with the value k; batch folders hold
    them in another order than the index, so the index alone says where each is."""
    out = tmp_path / "resize" / "r"
    out.mkdir(parents=True)
    index_rows, k = [], 0
    for b, n in enumerate(rows_per_batch):
        values = list(range(k, k + n))[::-1]  # stored reversed within the batch
        batch = np.stack([np.full((size, size, 3), v, np.uint8) for v in values])
        store.write_array(tmp_path / "resize" / "batch" / f"b{b}" / stage_files.IMAGES, batch)
        for row, v in enumerate(values):
            index_rows.append({"path": f"img{v}", "batch": f"../batch/b{b}", "row": row, "v": v})
        k += n
    index = pd.DataFrame(index_rows).sort_values("v").reset_index(drop=True)
    store.mark_done(out, {"shape": [size, size, 3]})
    done = store.cached(out)
    return Ref(path=str(out), sha256=done["sha256"]), index, index["v"].to_numpy()


def test_read_resized_gathers_rows_from_their_batches(tmp_path):
    resized, index, values = _resized(tmp_path)
    got = stage_files.read_resized(resized, index, [4, 0, 2, 3])
    assert got.shape == (4, 2, 2, 3) and got.dtype == np.uint8
    assert [int(img[0, 0, 0]) for img in got] == [4, 0, 2, 3]
    assert stage_files.read_resized(resized, index, []).shape == (0, 2, 2, 3)


def test_copy_resized_in_chunks_writes_the_rows_in_order(tmp_path):
    resized, index, _ = _resized(tmp_path)
    stage_files.copy_resized(resized, index, [3, 1, 4, 0], tmp_path / "out.npy", chunk=3)
    got = np.load(tmp_path / "out.npy")
    assert [int(img[0, 0, 0]) for img in got] == [3, 1, 4, 0]


def test_write_rows_streams_blocks_and_leaves_nothing_when_it_fails(tmp_path):
    blocks = [np.full((2, 1, 1, 3), i, np.uint8) for i in range(3)]
    stage_files.write_rows(tmp_path / "ok.npy", (6, 1, 1, 3), iter(blocks))
    assert np.load(tmp_path / "ok.npy")[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2]

    def failing():
        yield blocks[0]
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        stage_files.write_rows(tmp_path / "bad.npy", (6, 1, 1, 3), failing())
    assert not (tmp_path / "bad.npy").exists()
    assert not list(tmp_path.glob(".bad.npy*")), "no temporary file is left"


def test_manifest_stage_makes_the_manifest_once(tmp_path):
    calls = []
    frame = pd.DataFrame({"path": ["a", "b"], "status": ["kept", "kept"]})

    def make():
        calls.append(1)
        return frame

    first = stage_files.manifest_stage(tmp_path / "s", make)
    again = stage_files.manifest_stage(tmp_path / "s", make)
    assert first == again and len(calls) == 1
    pd.testing.assert_frame_equal(stage_files.read_manifest(first), frame)
    assert store.result_meta(first) == {"rows": 2}


def _sealed_ingest(store_root, name: str, reuse: str, table: pd.DataFrame | None,
                   mtime_ns: int) -> None:
    out = store_root / "ingest" / name
    out.mkdir(parents=True)
    store.write_frame(out / stage_files.MANIFEST, pd.DataFrame({"path": [name]}))
    store.mark_done(out, {"reuse": reuse})
    os.utime(out / store.DONE, ns=(mtime_ns, mtime_ns))
    if table is not None:
        store.write_frame(stage_files.ingest_files_path(store_root, out), table)


def test_previous_ingest_files_is_the_newest_sealed_one_of_the_same_key(tmp_path):
    tables = {n: pd.DataFrame({"path": [n], "size": [i]}) for i, n in enumerate("abcd")}
    _sealed_ingest(tmp_path, "a", "key", tables["a"], 1_000)
    _sealed_ingest(tmp_path, "b", "key", tables["b"], 3_000)  # newest of "key"
    _sealed_ingest(tmp_path, "c", "other", tables["c"], 9_000)  # another folder or code
    _sealed_ingest(tmp_path, "d", "key", tables["d"], 8_000)
    (tmp_path / "ingest" / "d" / stage_files.MANIFEST).write_bytes(b"damaged")  # not whole
    assert stage_files.ingest_files_path(tmp_path, tmp_path / "ingest" / "b") == \
        tmp_path / "ingest-files" / "b.parquet"
    pd.testing.assert_frame_equal(stage_files.previous_ingest_files(tmp_path, "key"),
                                  tables["b"])
    assert stage_files.previous_ingest_files(tmp_path, "nothing") is None
    assert stage_files.previous_ingest_files(tmp_path / "empty", "key") is None


def test_a_damaged_or_missing_files_table_is_no_hint(tmp_path):
    _sealed_ingest(tmp_path, "a", "key", None, 1_000)
    assert stage_files.previous_ingest_files(tmp_path, "key") is None
    (tmp_path / "ingest-files").mkdir()
    (tmp_path / "ingest-files" / "a.parquet").write_bytes(b"not parquet")
    assert stage_files.previous_ingest_files(tmp_path, "key") is None


def test_publish_result_puts_every_file_but_the_seal_at_its_place(tmp_path):
    out = tmp_path / "store" / "r"
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_text("A")
    (out / "sub" / "b.txt").write_text("B")
    store.mark_done(out, {})
    done = store.cached(out)
    targets = stage_files.publish_result(Ref(path=str(out), sha256=done["sha256"]),
                                         tmp_path / "run")
    assert sorted(p.relative_to(tmp_path / "run").as_posix() for p in targets) == [
        "a.txt", "sub/b.txt"]
    assert (tmp_path / "run" / "sub" / "b.txt").read_text() == "B"
    assert not (tmp_path / "run" / store.DONE).exists()
