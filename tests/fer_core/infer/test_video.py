"""Files and videos through prediction (``fer_core.infer.video``): every input gets rows
(faces, ``no_face`` or an ``error`` with its reason), videos are sampled every Nth frame
with their times, and the results, timelines and annotated copies are written."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_core import store
from fer_core.infer import video
from fer_core.infer.predict import LANDMARK_COLUMNS, PredictConfig
from tests.fer_core.infer.conftest import CLASSES, tilt


def write_clip(path, head: np.ndarray, n: int = 20, fps: float = 10.0) -> None:
    """The astronaut's head moving right and tilting, n frames of 240x320, MJPG in AVI."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened()
    small = cv2.resize(head, (150, 170), interpolation=cv2.INTER_AREA)
    for i in range(n):
        frame = np.full((240, 320, 3), 90, np.uint8)
        face = tilt(small, 10 * math.sin(i / 3))
        x = 30 + 6 * i
        frame[35:205, x:x + 150] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_files_video_timeline_errors_and_annotations(predictor, astronaut, head, tmp_path):
    data = tmp_path / "in"
    store.write_image(data / "astronaut.jpg", astronaut)
    store.write_image(data / "blank.png", np.full((100, 100, 3), 30, np.uint8))
    store.write_bytes(data / "broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    store.write_bytes(data / "sub" / "garbage.png", b"PNG? no")
    write_clip(data / "sub" / "clip.avi", head)
    store.write_bytes(data / "bad.avi", b"RIFF....AVI not a video")
    files = store.list_inputs([data])
    assert len(files) == 6
    cfg = PredictConfig(device="cpu", every=5, detect_batch_size=3)  # 4 frames: 2 batches
    rows = video.score_files(files, predictor, cfg, annotate_dir=tmp_path / "ann")
    by_file = {Path(f).relative_to(data).as_posix(): part for f, part in rows.groupby("file")}
    assert set(by_file) == {"astronaut.jpg", "blank.png", "broken.jpg", "sub/garbage.png",
                            "sub/clip.avi", "bad.avi"}
    assert by_file["astronaut.jpg"]["status"].tolist() == ["ok"]
    assert by_file["blank.png"]["status"].tolist() == ["no_face"]
    for name, reason in (("broken.jpg", "truncated JPEG"), ("sub/garbage.png", "cannot be"),
                         ("bad.avi", "video")):
        (err,) = by_file[name].itertuples()
        assert err.status == "error" and reason in err.reason, (name, err.reason)
    clip = by_file["sub/clip.avi"]
    assert clip["frame"].tolist() == [0, 5, 10, 15]
    assert (clip["status"] == "ok").all()
    np.testing.assert_allclose(clip["time_s"], clip["frame"].astype(float) / 10.0)
    assert clip["x1"].is_monotonic_increasing, "the face moves right"
    # Annotated copies: same size, boxes drawn.
    ann = store.read_input_image(str(tmp_path / "ann" / "astronaut.jpg"))
    assert ann.shape == astronaut.shape and np.abs(ann.astype(int) - astronaut).max() > 100
    assert (tmp_path / "ann" / "sub" / "clip.avi" / "frame_000015.jpg").is_file()
    # Results and the video's timeline.
    written = video.write_results(tmp_path / "out" / "res.csv", rows, CLASSES)
    table = pd.read_csv(written["results"], keep_default_na=False)
    assert "image" not in table.columns and len(table) == len(rows)
    assert table["file"].iloc[0] == str(data / "astronaut.jpg"), "files as given, in order"
    assert table.loc[0, "frame"] == ""
    line = pd.read_csv(written["timeline:sub/clip.avi"])
    assert line["frame"].tolist() == [0, 5, 10, 15]
    assert list(line.columns[:5]) == ["frame", "time_s", "face", "status", "class"]
    assert (tmp_path / "out" / "res_timelines" / "sub" / "clip.avi.png").stat().st_size > 5000
    as_json = video.write_results(tmp_path / "out" / "res.json", rows, CLASSES)
    records = store.read_json(as_json["results"])
    assert len(records) == len(rows) and records[0]["frame"] is None
    assert set(LANDMARK_COLUMNS) <= set(records[0])
