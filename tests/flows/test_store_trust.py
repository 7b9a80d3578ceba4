"""A store you can trust, through whole `fer prepare` runs on real FER2013 JPEGs: an edited
run is restored, content keys ingest, a copied data folder hits, an upgraded library reruns
what it computed (scipy, whose DCT makes the near-duplicates' hashes), gc keeps what
existing runs use; bugs are told from usage errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from fer_cli.main import main
from fer_core import store
from fer_core.store import keys
from tests.conftest import REPO, extract_fer2013_subset
from tests.flows.test_stage_keys import stage_table

# Stages that are never skipped as cached: they publish into the run, or only warn or plan.
UNKEYED = {"save-sets", "reports", "quality", "plan-align-batches"}


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    classes = ("angry", "happy", "neutral", "sad")
    counts = {f"train/{c}": 10 for c in classes} | {f"test/{c}": 3 for c in classes}
    return extract_fer2013_subset(tmp_path_factory.mktemp("faces") / "fer2013", per_class=counts)


def prepare(data: Path, out: Path, store_root: Path, **kw) -> dict[str, str]:
    from flows.prepare import prepare as flow

    return stage_table(flow(data=str(data), out=str(out), store_root=str(store_root),
                            align=False, return_state=True, **kw))


def keyed(table: dict[str, str]) -> dict[str, str]:
    return {stage: status for stage, status in table.items() if stage not in UNKEYED}


def not_cached(table: dict[str, str]) -> dict[str, str]:
    return {stage: status for stage, status in keyed(table).items() if status != "cached"}


def test_an_edited_run_is_restored_and_the_store_is_never_changed(prefect_backend, faces,
                                                                   tmp_path):
    shared = tmp_path / "store"
    prepare(faces, tmp_path / "run", shared)
    saved = tmp_path / "run" / "sets" / "train" / "images.npy"
    original = saved.read_bytes()
    stored = {p: p.read_bytes() for p in shared.rglob("images.npy")}
    with open(saved, "r+b") as f:  # flip the last 4 KB in place
        f.seek(-4096, os.SEEK_END)
        tail = f.read()
        f.seek(-4096, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in tail))
    assert {p: p.read_bytes() for p in stored} == stored, "the store shares no inode"
    again = prepare(faces, tmp_path / "run", shared)
    assert not not_cached(again), again
    assert saved.read_bytes() == original, "the run is restored"
    assert {p: p.read_bytes() for p in stored} == stored
    prepare(faces, tmp_path / "second", shared)
    assert (tmp_path / "second" / "sets" / "train" / "images.npy").read_bytes() == original


def test_ingest_is_keyed_on_content_not_on_stat_or_place(prepare_runs):
    first, edited, copied = prepare_runs
    assert set(keyed(first).values()) == {"ran"}, first
    # one JPEG's bytes changed, its size and mtime kept: ingest and all after it rerun
    assert set(keyed(edited).values()) == {"ran"}, edited
    # the same data elsewhere (new inodes, times and folder): every stage hits
    assert not not_cached(copied), copied


@pytest.fixture
def prepare_runs(prefect_backend, faces, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(faces, data)
    shared = tmp_path / "store"
    first = prepare(data, tmp_path / "run", shared)
    jpeg = sorted((data / "train" / "happy").glob("*.jpg"))[0]
    st, raw = jpeg.stat(), bytearray(jpeg.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    jpeg.write_bytes(bytes(raw))
    os.utime(jpeg, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (jpeg.stat().st_size, jpeg.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    edited = prepare(data, tmp_path / "run", shared)
    manifest = store.read_frame(tmp_path / "run" / "manifest.parquet")
    row = manifest[manifest["path"] == jpeg.relative_to(data).as_posix()].iloc[0]
    assert row["sha1"] == hashlib.sha1(bytes(raw)).hexdigest(), "the new bytes' SHA-1"
    elsewhere = tmp_path / "moved" / "copy"
    shutil.copytree(data, elsewhere)
    copied = prepare(elsewhere, tmp_path / "run-of-copy", shared)
    return first, edited, copied


def test_an_upgraded_scipy_reruns_near_duplicates(prefect_backend, faces, tmp_path,
                                                      monkeypatch):
    shared = tmp_path / "store"
    prepare(faces, tmp_path / "run", shared)
    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda dist: "99.0" if dist == "scipy" else real(dist))
    keys.forget_versions()
    try:
        again = prepare(faces, tmp_path / "run", shared)
    finally:
        monkeypatch.undo()
        keys.forget_versions()
    assert again["near-duplicates"] == "ran", again
    assert again["ingest"] == again["duplicates"] == "cached", again


def test_gc_removes_only_the_deleted_runs_results(prefect_backend, faces, tmp_path, capsys):
    shared = tmp_path / "store"
    prepare(faces, tmp_path / "kept", shared)
    prepare(faces, tmp_path / "deleted", shared, augment="none")  # its own later stages
    own = {p.parent for p in shared.rglob(store.DONE)}
    shutil.rmtree(tmp_path / "deleted")
    assert main(["store", "gc", str(shared), "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].startswith("would remove") and "bytes" in listed[-1]
    assert {p.parent for p in shared.rglob(store.DONE)} == own, "a dry run removes nothing"
    assert main(["store", "gc", str(shared)]) == 0
    removed = capsys.readouterr().out.splitlines()
    assert [line.replace("would remove", "removed") for line in listed] == removed
    gone = {p for p in own if not p.exists()}
    # Its own stages' results (augment's per-class parts among them), not the shared ones.
    assert gone and {p.relative_to(shared).parts[0] for p in gone} <= {
        "augment", "reports", "save"}, gone
    again = prepare(faces, tmp_path / "kept", shared)
    assert not not_cached(again), again


PLANTED = textwrap.dedent("""
    import sys
    from fer_core.prepare import split

    def planted(*args, **kwargs):
        raise ZeroDivisionError("a planted bug")

    split.encode_and_split = planted
    from fer_cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def fer(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PLANTED, *args], cwd=REPO, text=True,
                          capture_output=True, timeout=600, env={**os.environ, **(env or {})})


def test_a_bug_exits_1_with_its_traceback_and_a_bad_argument_exits_2(faces, tmp_path):
    bad = fer("prepare", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "no such data folder" in bad.stderr
    bug = fer("prepare", str(faces), "--out", str(tmp_path / "run"), "--no-align")
    assert bug.returncode == 1, bug.stderr
    assert "internal error: ZeroDivisionError: a planted bug" in bug.stderr
    log = Path(bug.stderr.split("the traceback is in ")[1].split(" (--debug")[0])
    assert "Traceback" in log.read_text() and "planted" in log.read_text()
    debug = fer("--debug", "prepare", str(faces), "--out", str(tmp_path / "run"), "--no-align")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
