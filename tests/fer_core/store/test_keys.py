"""Keys that cannot drift: the libraries in a key are the closure's imports mapped to their
distributions; ingest's content key is the files' SHA-1s and relative paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from importlib import metadata

import pytest

from fer_core.store import keys


@pytest.fixture(autouse=True)
def fresh_versions():
    keys.forget_versions()
    yield
    keys.forget_versions()


def test_libraries_are_the_closures_imports_of_installed_distributions():
    near = keys.libraries(["prepare.near_duplicates", "audit.near_search"])
    # scipy (its DCT makes the perceptual hashes) and Pillow: once missed by a hand-kept list
    assert {"scipy", "PIL", "numpy"} <= set(near)
    assert near["scipy"] == f"scipy=={metadata.version('scipy')}"
    assert "imagehash" not in near  # no longer imported: no longer in the key
    assert "cleanlab" in keys.libraries(["audit.labels"])
    assert "cv2" in keys.libraries(["prepare.ingest"])
    everything = keys.libraries(["audit.labels", "train.loop", "serve.app", "prepare.config"])
    assert not set(everything) & (set(keys.NEUTRAL_LIBRARIES) | set(sys.stdlib_module_names))
    assert all(len(why) > 10 for why in keys.NEUTRAL_LIBRARIES.values())


def test_a_changed_library_version_changes_only_the_keys_of_stages_that_import_it(monkeypatch):
    def key(stage, modules):
        return keys.stage_key(stage, inputs=["x"], modules=modules)

    near, dedup = key("near", ["prepare.near_duplicates"]), key("dup", ["prepare.duplicates"])
    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda dist: "99.0" if dist == "scipy" else real(dist))
    keys.forget_versions()
    assert key("near", ["prepare.near_duplicates"]) != near
    assert key("dup", ["prepare.duplicates"]) == dedup


def sha1_key(root) -> str:
    """The oracle: each file's relative path and hashlib SHA-1, then each folder."""
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                h.update(f"{os.path.relpath(p, root)}\t{hashlib.sha1(fh.read()).hexdigest()}\n"
                         .encode())
    for dirpath, dirnames, _ in sorted(os.walk(root)):
        for d in sorted(dirnames):
            h.update(f"{os.path.relpath(os.path.join(dirpath, d), root)}/\n".encode())
    return h.hexdigest()


def test_the_ingest_key_is_content_and_relative_paths(tmp_path):
    data = tmp_path / "data"
    for rel, body in {"happy/a.jpg": b"a" * 100, "sad/b.jpg": b"b" * 50}.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(body)
    (data / "empty").mkdir()
    memo = tmp_path / "store" / "file-sha1s.json"
    first = keys.content_fingerprint(data, memo, algorithm="sha1")
    assert first == sha1_key(data)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(data, moved)
    assert keys.content_fingerprint(moved, memo, algorithm="sha1") == first
    # the same size and mtime, other bytes: stat cannot hide it (ctime changed)
    target, st = data / "happy" / "a.jpg", (data / "happy" / "a.jpg").stat()
    target.write_bytes(b"c" * 100)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert keys.content_fingerprint(data, memo, algorithm="sha1") == sha1_key(data) != first


def test_the_ingest_key_lists_links_and_folders_as_written_out_by_hand(tmp_path):
    """A link to a file counts by its own name, a link to a folder as a folder (not entered),
    a broken link not at all; files then folders, each in path order (by parts)."""
    data = tmp_path / "data"
    (data / "happy" / "deep").mkdir(parents=True)
    (data / "empty").mkdir()
    (data / "happy" / "a.jpg").write_bytes(b"a" * 10)
    (data / "happy" / "deep" / "b.jpg").write_bytes(b"b" * 20)
    (data / "link_file.jpg").symlink_to(data / "happy" / "a.jpg")
    (data / "linked_dir").symlink_to(data / "happy", target_is_directory=True)
    (data / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    a, b = hashlib.sha1(b"a" * 10).hexdigest(), hashlib.sha1(b"b" * 20).hexdigest()
    lines = [f"happy/a.jpg\t{a}", f"happy/deep/b.jpg\t{b}", f"link_file.jpg\t{a}",
             "empty/", "happy/", "happy/deep/", "linked_dir/"]
    expected = hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()
    memo = tmp_path / "store" / "file-sha1s.json"
    assert keys.content_fingerprint(data, memo, algorithm="sha1") == expected
    assert keys.content_fingerprint(data, memo, algorithm="sha1") == expected  # from the memo
    assert keys.file_hashes(data, algorithm="sha1") == {
        "happy/a.jpg": a, "happy/deep/b.jpg": b, "link_file.jpg": a}
    assert keys.file_hashes(data / "happy" / "a.jpg") == {
        "a.jpg": hashlib.sha256(b"a" * 10).hexdigest()}
