"""A store you can trust, on real files and real processes: published copies, seals that
verify content when a stat changed, locks between processes, gc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

from fer_core import store
from fer_core.store import gc
from tests.conftest import REPO


def flip_tail(path: Path, n: int = 4096) -> None:
    """Flip the last ``n`` bytes in place (same inode, same size)."""
    with open(path, "r+b") as f:
        f.seek(-n, os.SEEK_END)
        tail = f.read(n)
        f.seek(-n, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in tail))


def stored_array(tmp_path: Path) -> Path:
    out = tmp_path / "store" / "stage" / ("0" * 24)
    store.run_stage(out, lambda d: store.write_array(
        d / "images.npy", np.arange(3 * 8192, dtype=np.uint8).reshape(3, -1)) and {})
    return out / "images.npy"


def test_a_published_file_is_a_copy_and_an_edit_of_it_is_published_again(tmp_path):
    src = stored_array(tmp_path)
    original = src.read_bytes()
    run, dst = tmp_path / "run", tmp_path / "run" / "sets" / "images.npy"
    assert store.publish(src, dst, run)
    assert os.stat(src).st_ino != os.stat(dst).st_ino
    assert not store.publish(src, dst, run), "unchanged: left as it is"
    flip_tail(dst)
    assert src.read_bytes() == original, "the store never changes through a run folder"
    assert store.publish(src, dst, run), "edited: published again"
    assert dst.read_bytes() == original


def test_a_made_file_is_made_again_only_when_edited_or_made_of_something_else(tmp_path):
    run, dst = tmp_path / "run", tmp_path / "run" / "sets" / "train" / "images.npy"
    made = []

    def make(value):
        def write(path):
            made.append(value)
            store.write_array(path, np.full((2, 4096), value, np.uint8))
        return write

    assert store.publish_made(dst, "a", make(1), run)
    assert not store.publish_made(dst, "a", make(2), run), "same source, untouched: left"
    assert made == [1] and np.load(dst)[0, 0] == 1
    flip_tail(dst)
    assert store.publish_made(dst, "a", make(3), run), "edited in the run folder: made again"
    assert np.load(dst)[0, 0] == 3
    assert store.publish_made(dst, "b", make(4), run), "made of something else: made again"
    dst.unlink()
    assert store.publish_made(dst, "b", make(5), run), "deleted: made again"
    assert made == [1, 3, 4, 5] and np.load(dst)[0, 0] == 5


def test_a_hard_linked_run_from_before_is_migrated_to_a_copy(tmp_path):
    src = stored_array(tmp_path)
    dst = tmp_path / "run" / "images.npy"
    dst.parent.mkdir()
    os.link(src, dst)  # as runs were published before
    assert store.publish(src, dst, tmp_path / "run")
    assert os.stat(src).st_ino != os.stat(dst).st_ino and os.stat(src).st_nlink == 1
    assert store.cached(src.parent) is not None  # its ctime changed: verified, still whole


def test_a_damaged_store_file_is_recomputed_never_served(tmp_path):
    src = stored_array(tmp_path)
    original, st = src.read_bytes(), src.stat()
    flip_tail(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert store.cached(src.parent) is None
    calls = []
    ref, reused = store.run_stage(src.parent, lambda d: calls.append(1) or store.write_bytes(
        d / "images.npy", original) and {})
    assert not reused and calls == [1] and src.read_bytes() == original
    assert store.run_stage(src.parent, lambda d: calls.append(1))[1] and calls == [1]


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fer_core import store

    out, calls = Path(sys.argv[1]), Path(sys.argv[2])

    def produce(folder):
        with open(calls, "a") as f:
            f.write("computed\\n")
        time.sleep(1.0)  # long enough for the other process to arrive meanwhile
        store.write_bytes(folder / "result.bin", b"the one result")
        return {}

    ref, reused = store.run_stage(out, produce)
    print(ref.sha256, reused, (out / "result.bin").read_bytes().decode())
""")


def run_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_two_processes_racing_on_one_stage_compute_it_once(tmp_path):
    out, calls = tmp_path / "store" / "stage" / ("a" * 24), tmp_path / "calls.txt"
    racers = [run_python(RACER, str(out), str(calls)) for _ in range(2)]
    lines = []
    for p in racers:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        lines.append(stdout.split())
    assert calls.read_text() == "computed\n"
    assert lines[0][0] == lines[1][0] and lines[0][2:] == lines[1][2:]
    assert sorted(line[1] for line in lines) == ["False", "True"]


def test_a_lock_held_by_a_killed_process_does_not_block(tmp_path):
    target = tmp_path / "result"
    holder = run_python("import sys, time\nfrom fer_core.store.locks import locked\n"
                        "with locked(sys.argv[1]):\n    print('held', flush=True)\n"
                        "    time.sleep(600)\n", str(target))
    assert holder.stdout.readline().strip() == "held"
    assert store.is_locked(target)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    got = threading.Event()

    def take():
        with store.locked(target):
            got.set()

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    taker.join(10)
    assert got.is_set(), "the dead holder's lock still blocks"
    assert not store.is_locked(target)


COUNTER = textwrap.dedent("""
    import sys
    from fer_core.store.locks import update_json

    for _ in range(int(sys.argv[2])):
        update_json(sys.argv[1], lambda d: d.update(n=d.get("n", 0) + 1))
""")


def test_a_shared_json_index_loses_no_update_between_processes(tmp_path):
    index = tmp_path / "index.json"
    writers = [run_python(COUNTER, str(index), "40") for _ in range(3)]
    for p in writers:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert json.loads(index.read_text()) == {"n": 120}


def test_gc_removes_only_what_no_existing_run_refers_to(tmp_path):
    root = tmp_path / "store"
    runs = {name: tmp_path / name for name in ("kept", "deleted")}
    made = {}
    for name, run in runs.items():
        run.mkdir()
        with gc.run_record(root, run, "prepare"):
            shared, _ = store.run_stage(store.result_dir(root, "shared", "1" * 64),
                                        lambda d: store.write_bytes(d / "x", b"both") and {})
            key = store.bytes_sha256(name.encode())
            own, _ = store.run_stage(store.result_dir(root, "own", key), lambda d, n=name:
                                     store.write_bytes(d / "x", n.encode()) and {})
        made[name] = Path(own.path)
    os.rename(runs["deleted"], tmp_path / "elsewhere")  # the run folder is gone
    live = store.result_dir(root, "making", "2" * 64)
    live.mkdir(parents=True)  # a result a live run is making: its lock is held
    with store.locked(live):
        listed = gc.collect(root, dry_run=True)
        assert [p for p, _ in listed] == [made["deleted"].resolve()]
        assert made["deleted"].is_dir(), "a dry run removes nothing"
        assert listed[0][1] == len(b"deleted") + (made["deleted"] / store.DONE).stat().st_size
        assert gc.collect(root) == listed
    assert not made["deleted"].exists() and made["kept"].is_dir() and live.is_dir()
    assert store.cached(Path(shared.path)) is not None


def test_gc_removes_the_shared_tables_that_no_existing_run_used(tmp_path):
    """Per-image hashes and the last near-duplicate search are tables runs share and add to,
    one per way of making them: a table no existing run read or wrote (an older hashing
    code's) goes, the others stay, and one a live run holds is left."""
    import pandas as pd

    from fer_core.store import stage_files as sf

    root = tmp_path / "store"
    rows = pd.DataFrame({"path": ["a.png", "b.png"], "sha1": ["1", "2"], "subset": ["", ""]})
    pairs = pd.DataFrame({"path_a": ["a.png"], "path_b": ["b.png"], "probe": [0],
                          "distance": [3], "fine_distance": [9]})
    runs = {name: tmp_path / name for name in ("kept", "deleted")}
    for run in runs.values():
        run.mkdir()
    with gc.run_record(root, runs["kept"], "prepare"):
        sf.add_hashes(root, "new hashing", {"a": np.array([7], np.uint64)})
        sf.write_last_search(root, "new search", rows, pairs)
    with gc.run_record(root, runs["deleted"], "prepare"):
        assert set(sf.read_hashes(root, "new hashing")) == {"a"}  # used by both runs
        sf.add_hashes(root, "old hashing", {"b": np.array([8], np.uint64)})
        sf.write_last_search(root, "old search", rows, pairs)
    os.rename(runs["deleted"], tmp_path / "elsewhere")
    old_hashes, old_search = (sf.hashes_path(root, "old hashing").resolve(),
                              sf.last_search_path(root, "old search").resolve())
    listed = gc.collect(root, dry_run=True)
    assert sorted(p for p, _ in listed) == sorted([old_hashes, old_search])
    assert dict(listed)[old_hashes] == old_hashes.stat().st_size
    size = old_search.stat().st_size
    with store.locked(old_hashes):  # a live run adding to it now
        assert gc.collect(root) == [(old_search, size)]
    assert not old_search.exists() and old_hashes.exists()
    assert [p for p, _ in gc.collect(root)] == [old_hashes] and not old_hashes.exists()
    assert set(sf.read_hashes(root, "new hashing")) == {"a"}
    assert sf.read_last_search(root, "new search")[1]["path_b"].tolist() == ["b.png"]
