"""Section 4's ingestion: every input file is accounted for, bad ones with a reason."""

import hashlib

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.prepare.ingest import IngestConfig, ingest, resolve_class_map, summarize_rejections
from fer_core.prepare.manifest import KEPT, REJECTED


def png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def face_like(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def messy(tmp_path):
    """A class-folder dataset with one of every kind of bad input beside good images."""
    root = tmp_path / "data"
    files = {
        "happy/ok.png": png(face_like(1)),
        "happy/gray.png": png(face_like(2)[:, :, 0]),
        "happy/rgba.png": png(np.dstack([face_like(3), np.full((32, 32), 255, np.uint8)])),
        "happy/deep.png": png(face_like(4).astype(np.uint16) * 257),
        "happy/ok.jpg": cv2.imencode(".jpg", face_like(5))[1].tobytes(),
        "sad/empty.jpg": b"",
        "sad/truncated.jpg": cv2.imencode(".jpg", face_like(6))[1].tobytes()[:300],
        "sad/notes.txt": b"not an image",
        "sad/garbage.png": b"\x89PNG\r\n\x1a\n garbage",
        "sad/tiny.png": png(face_like(7, size=8)),
        "sad/ok.bmp": cv2.imencode(".bmp", face_like(8))[1].tobytes(),
        "stray.png": png(face_like(9)),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "surprise").mkdir()
    return root


def test_every_file_is_in_the_manifest_with_a_reason(messy):
    m = ingest(IngestConfig(root=str(messy))).set_index("path")
    on_disk = {p.relative_to(messy).as_posix() for p in messy.rglob("*") if p.is_file()}
    assert on_disk <= set(m.index)
    expect = {
        "sad/empty.jpg": "empty file", "sad/truncated.jpg": "truncated JPEG",
        "sad/notes.txt": "unsupported file type", "sad/garbage.png": "cannot be decoded",
        "sad/tiny.png": "too small: 8x8", "stray.png": "not inside a class folder",
        "surprise/": "empty class folder",
    }
    for path, reason in expect.items():
        assert m.loc[path, "status"] == REJECTED
        assert m.loc[path, "reason"].startswith(reason), (path, m.loc[path, "reason"])
    good = ["happy/ok.png", "happy/gray.png", "happy/rgba.png", "happy/deep.png",
            "happy/ok.jpg", "sad/ok.bmp"]
    assert (m.loc[good, "status"] == KEPT).all()
    assert (m.loc[good, ["width", "height"]] == 32).all().all()
    raw = (messy / "happy/ok.png").read_bytes()
    assert m.loc["happy/ok.png", "sha1"] == hashlib.sha1(raw).hexdigest()


def test_rejection_summary_has_one_line_per_reason(messy):
    lines = summarize_rejections(ingest(IngestConfig(root=str(messy))))
    assert len(lines) == 7
    assert any("sad/truncated.jpg" in line for line in lines)


def test_odd_pixel_formats_become_8bit_rgb(messy):
    from fer_core import store

    for name in ("gray.png", "rgba.png", "deep.png"):
        img = store.read_image(messy, f"happy/{name}")
        assert img.dtype == np.uint8 and img.shape == (32, 32, 3)
    gray = store.read_image(messy, "happy/gray.png")
    assert (gray[:, :, 0] == gray[:, :, 1]).all()


def test_a_file_past_the_pixel_limit_is_rejected_with_its_size_before_decoding(messy):
    from fer_core.config.ingest import MAX_PIXELS
    from fer_core.datasets.bomb import bomb_png, bomb_tiff
    from fer_core.infer.predict import PredictConfig

    assert IngestConfig(root="x").max_pixels == PredictConfig().max_pixels == MAX_PIXELS
    (messy / "happy" / "bomb.png").write_bytes(bomb_png(12000, 9000))  # 108 megapixels
    (messy / "sad" / "bomb.tif").write_bytes(bomb_tiff(9000, 12000))
    m = ingest(IngestConfig(root=str(messy))).set_index("path")
    assert m.loc["happy/bomb.png", "status"] == m.loc["sad/bomb.tif", "status"] == REJECTED
    assert m.loc["happy/bomb.png", "reason"].startswith("too large: 12000x9000 = 108.0 mega")
    assert m.loc["sad/bomb.tif", "reason"].startswith("too large: 9000x12000 = 108.0 mega")
    assert m.loc["happy/ok.png", "status"] == KEPT
    lower = ingest(IngestConfig(root=str(messy), max_pixels=32 * 32 - 1)).set_index("path")
    assert lower.loc["happy/ok.png", "reason"].startswith("too large: 32x32")


def test_class_map_and_subset(messy):
    cfg = IngestConfig(root=str(messy), class_map=resolve_class_map("fer2013"),
                       classes=("Happiness",))
    m = ingest(cfg)
    kept = m[m["status"] == KEPT]
    assert set(kept["class"]) == {"Happiness"}
    sad = m[m["path"] == "sad/ok.bmp"].iloc[0]
    assert sad["status"] == REJECTED and "not selected" in sad["reason"]


def test_train_test_layout(fer2013_small):
    m = ingest(IngestConfig(root=str(fer2013_small)))
    assert set(m["subset"]) == {"train", "test"}
    assert m.groupby("subset").size().to_dict() == {"test": 70, "train": 280}
    assert (m["status"] == KEPT).all() and set(m["width"]) == {48}


def test_fer2013_csv_release(tmp_path):
    rng = np.random.default_rng(0)
    pixels = [" ".join(map(str, rng.integers(0, 256, 48 * 48))) for _ in range(4)]
    pd.DataFrame({"emotion": [3, 0, 9, 6], "pixels": [pixels[0], pixels[1], pixels[2], "1 2 3"],
                  "Usage": ["Training", "PublicTest", "Training", "PrivateTest"]}
                 ).to_csv(tmp_path / "fer2013.csv", index=False)
    m = ingest(IngestConfig(root=str(tmp_path))).set_index("path")
    assert m.loc["fer2013.csv#row=0", "class"] == "happy"
    assert m.loc["fer2013.csv#row=1", "subset"] == "test"
    assert m.loc["fer2013.csv#row=2", "reason"].startswith("unknown emotion code")
    assert m.loc["fer2013.csv#row=3", "status"] == REJECTED
    from fer_core import store

    assert store.read_image(tmp_path, "fer2013.csv#row=0").shape == (48, 48, 3)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest(IngestConfig(root=str(tmp_path / "nope")))


def test_rerun_reads_only_changed_files_and_gives_the_same_manifest(fer2013_small, tmp_path,
                                                                     monkeypatch):
    import shutil

    from fer_core.prepare import ingest as ingest_mod

    data = tmp_path / "data"
    shutil.copytree(fer2013_small, data)
    cfg = IngestConfig(root=str(data), class_map=resolve_class_map("fer2013"))
    first, files = ingest_mod.ingest_files(cfg)
    assert set(files["path"]) == set(first["path"]), "every image file's inspection is kept"
    victim = sorted((data / "train" / "happy").iterdir())[3]
    cv2.imwrite(str(victim), cv2.flip(cv2.imread(str(victim)), 1))  # new pixels, same name
    (data / "train" / "sad" / sorted(p.name for p in (data / "train" / "sad").iterdir())[0]
     ).unlink()
    read = []
    real = ingest_mod._inspect
    monkeypatch.setattr(ingest_mod, "_inspect",
                        lambda full, rel, c: read.append(rel) or real(full, rel, c))
    again, _ = ingest_mod.ingest_files(cfg, previous=files)
    assert read == [victim.relative_to(data).as_posix()], "only the edited file is read"
    monkeypatch.setattr(ingest_mod, "_inspect", real)
    fresh = ingest(cfg)
    pd.testing.assert_frame_equal(again, fresh)
    assert again.set_index("path").loc[victim.relative_to(data).as_posix(), "sha1"] == \
        hashlib.sha1(victim.read_bytes()).hexdigest()


def test_reuse_key_follows_the_folder_and_min_size_not_the_class_selection(tmp_path):
    from fer_core.prepare.ingest import reuse_key

    base = IngestConfig(root=str(tmp_path / "data"))
    key = reuse_key(base)
    assert len(key) == 64 and key == reuse_key(IngestConfig(root=str(tmp_path / "data")))
    # The same folder by another spelling is the same folder.
    assert reuse_key(IngestConfig(root=str(tmp_path / "x" / ".." / "data"))) == key
    assert reuse_key(IngestConfig(root=str(tmp_path / "other"))) != key
    assert reuse_key(IngestConfig(root=base.root, min_size=32)) != key
    # What is selected or how many threads read is not part of a file's inspection.
    assert reuse_key(IngestConfig(root=base.root, classes=("a",), workers=1)) == key
