"""A labels file as a dataset (fer_core.prepare.labels through ingest), on real FER2013
faces: FER+'s votes against FER+'s own rule computed here, RAF-DB- and AffectNet-style
files, and the accounting of every row and image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core import store
from fer_core.config.ingest import IngestConfig
from fer_core.prepare.config import build_config
from fer_core.prepare.ingest import ingest, summarize_rejections
from fer_core.prepare.labels import labelled_rows
from tests.conftest import extract_fer2013_paths, extract_fer2013_subset, require_fer2013

VOTES = Path(__file__).resolve().parents[3].parent / "shared/data/ferplus_votes.csv"
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def fer_plus_process(raw: list[float], mode: str) -> list[float]:
    """FERPlus src/ferplus.py ``_process_data`` and its loader's check, transcribed: the
    oracle. Returns the 8-class distribution, or [] for a face FER+ leaves out."""
    size = len(raw)
    unknown = [0.0] * size
    unknown[-2] = 1.0
    raw = [0.0 if v < 1.0 + np.finfo(float).eps else v for v in raw]
    total = sum(raw)
    emotion = [0.0] * size
    if mode == "majority":
        top = max(raw)
        if top > 0.5 * total:
            emotion[int(np.argmax(raw))] = top
        else:
            emotion = unknown
    else:
        part, count, valid = 0, 0, True
        while part < 0.75 * total and count < 3 and valid:
            top = max(raw)
            for i in range(size):
                if raw[i] == top:
                    emotion[i] = top
                    raw[i] = 0
                    part += emotion[i]
                    count += 1
                    if i >= 8:
                        valid = False
                        if sum(emotion) > top:
                            emotion[i] = 0
                            count -= 1
                        break
        if sum(emotion) <= 0.5 * total or count > 3:
            emotion = unknown
    emotion = [e / sum(emotion) for e in emotion]
    if int(np.argmax(emotion)) >= 8:
        return []
    return [e / sum(emotion[:8]) for e in emotion[:8]]


@pytest.fixture(scope="module")
def ferplus_subset(tmp_path_factory) -> tuple[Path, Path]:
    """Real FER2013 JPEGs (train and test, all three usages) and their rows of the FER+
    votes file."""
    require_fer2013()
    if not VOTES.exists():
        pytest.skip(f"{VOTES} not found")
    votes = pd.read_csv(VOTES)
    # 150 faces of each usage, plus faces with unknown and NF on top (rare: 1 in 200).
    sample = votes.groupby("usage").sample(150, random_state=0)
    rare = votes[(votes["NF"] >= 6) | (votes["unknown"] >= 6)].groupby("usage").head(3)
    paths = set(sample["path"]) | set(rare["path"])
    root = tmp_path_factory.mktemp("ferplus") / "fer2013"
    extract_fer2013_paths(root, paths)
    labels = root.parent / "votes.csv"
    votes[votes["path"].isin(paths)].to_csv(labels, index=False)
    return root, labels


@pytest.mark.parametrize("mode", ["majority", "probability", "crossentropy"])
def test_ferplus_votes_give_fer_plus_labels(ferplus_subset, mode):
    root, labels = ferplus_subset
    cfg = build_config(str(root), labels={"file": str(labels), "preset": "ferplus",
                                          "mode": mode})
    m = ingest(cfg.ingest).set_index("path")
    jpegs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert sorted(m.index) == jpegs  # every JPEG, and nothing else

    votes = pd.read_csv(labels).set_index("path")
    usage = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    names = ["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear",
             "Contempt"]
    assert set(votes["usage"]) == set(usage)
    expected = {}
    for path, r in votes.iterrows():
        # FER+ reports on majority labels: val and test always by majority.
        rule = mode if r["usage"] == "Training" else "majority"
        dist = fer_plus_process([float(v) for v in r.iloc[1:]], rule)
        expected[path] = (usage[r["usage"]], names[int(np.argmax(dist))] if dist else None, dist)
    kept = m[m["status"] == "kept"]
    want = pd.Series({p: e[1] for p, e in expected.items() if e[1]}).sort_index()
    assert kept["class"].sort_index().equals(want)
    assert (kept["subset"] == [expected[p][0] for p in kept.index]).all()
    for path in kept.index:
        got = pd.Series(json.loads(kept.at[path, "distribution"]))
        assert np.allclose(got[names].to_numpy(), expected[path][2], atol=1e-6)
    # Rejected rows name FER+'s reason; their count is FER+'s.
    rejected = m[m["status"] == "rejected"]
    assert sorted(rejected.index) == sorted(p for p, e in expected.items() if e[1] is None)
    if mode == "majority":
        assert set(rejected["reason"]) <= {"no majority", "unknown", "not a face"}
        assert "no majority" in set(rejected["reason"])
    else:
        train = rejected[rejected["subset"] == "train"]
        assert train["reason"].str.match(r"too spread|unknown|not a face").all()
    # More training faces under the distribution modes: they keep ties majority rejects.
    if mode != "majority":
        majority = build_config(str(root), labels={"file": str(labels), "preset": "ferplus"})
        base = ingest(majority.ingest)
        n = (base["status"] == "kept") & (base["subset"] == "train")
        assert ((kept["subset"] == "train").sum()) > n.sum()


def _fer_faces(tmp_path: Path, n: int) -> list[Path]:
    src = extract_fer2013_subset(tmp_path / "src", per_class={f"train/{c}": n for c in CLASSES})
    return sorted(src.rglob("*.jpg"))


def test_raf_db_style_headerless_list_with_integer_codes(tmp_path):
    faces = _fer_faces(tmp_path, 2)
    data = tmp_path / "aligned"
    data.mkdir()
    raf = {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger",
           7: "Neutral"}
    lines, want = [], {}
    for i, face in enumerate(faces):
        name = f"{'train' if i % 3 else 'test'}_{i:05d}.jpg"
        shutil.copy(face, data / name)
        code = i % 7 + 1
        lines.append(f"{name} {code}")
        want[name] = (raf[code], "train" if i % 3 else "test")
    listing = tmp_path / "list_patition_label.txt"
    listing.write_text("\n".join(lines) + "\n")
    cfg = build_config(str(data), labels={
        "file": str(listing), "columns": "path,label", "split_column": "path",
        "split_map": "train_*=train,test_*=test",
        "label_names": ",".join(f"{k}={v}" for k, v in raf.items())})
    m = ingest(cfg.ingest).set_index("path")
    assert (m["status"] == "kept").all() and len(m) == len(faces)
    assert {p: (m.at[p, "class"], m.at[p, "subset"]) for p in m.index} == want


def test_affectnet_style_csv_with_boxes_crops_the_face(tmp_path):
    faces = _fer_faces(tmp_path, 1)
    data = tmp_path / "Manually_Annotated_Images"
    (data / "1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, crops = [], {}
    for i, face in enumerate(faces):
        grey = cv2.imread(str(face), cv2.IMREAD_GRAYSCALE)
        canvas = rng.integers(0, 256, (140, 160), dtype=np.uint8)
        x, y = 10 + 13 * i, 5 + 11 * i
        canvas[y:y + 48, x:x + 48] = grey
        name = f"1/img{i}.png"
        cv2.imwrite(str(data / name), canvas)
        rows.append({"path": name, "face_x": x, "face_y": y, "face_width": 48,
                     "face_height": 48, "label": i % 8, "valence": 0.1, "arousal": -0.2,
                     "group": f"subject{i // 2}"})
        crops[name] = grey
    labels = tmp_path / "training.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    names = "0=Neutral,1=Happiness,2=Sadness,3=Surprise,4=Fear,5=Disgust,6=Anger,7=Contempt"
    cfg = build_config(str(data), labels={
        "file": str(labels), "label_names": names,
        "box_columns": "face_x,face_y,face_width,face_height"})
    m = ingest(cfg.ingest)
    assert (m["status"] == "kept").all() and len(m) == len(faces)
    assert (m[["width", "height"]] == 48).all().all()
    classes = names.split(",")
    for r in m.itertuples():
        file, box = store.split_box(r.path)
        i = int(Path(file).stem[3:])
        assert r.group == f"subject{i // 2}"
        assert r._3 == classes[i % 8].split("=")[1]  # the "class" column
        assert np.array_equal(store.read_image(data, r.path)[:, :, 0], crops[file])


def test_every_row_and_image_is_accounted_for(tmp_path):
    faces = _fer_faces(tmp_path, 1)
    data = tmp_path / "data"
    data.mkdir()
    for face, name in zip(faces, ["a", "b", "c", "d", "e", "f", "g"], strict=True):
        shutil.copy(face, data / f"{name}.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n"
                      "a.jpg,1\n"            # kept, by code
                      "b.jpg,Sadness\n"      # kept, by name
                      "c.jpg,9\n"            # unknown code
                      "d.jpg,Joy\n"          # unknown class
                      "missing.jpg,1\n"      # no such file
                      "e.jpg,1,extra\n"      # malformed (line 7)
                      "g.jpg,2\n")           # kept; f.jpg is not listed
    cfg = build_config(str(data), labels={"file": str(labels),
                                          "label_names": "1=Happiness,2=Sadness"})
    m = ingest(cfg.ingest).set_index("path")
    reasons = m["reason"].to_dict()
    assert m.loc[["a.jpg", "b.jpg", "g.jpg"], "status"].eq("kept").all()
    assert m.loc[["a.jpg", "b.jpg", "g.jpg"], "class"].tolist() == ["Happiness", "Sadness",
                                                                     "Sadness"]
    assert reasons["c.jpg"].startswith("unknown code '9'")
    assert reasons["d.jpg"].startswith("unknown class 'Joy'")
    assert reasons["missing.jpg"] == "no such file: listed at line 6"
    assert reasons["labels.csv#line=7"].startswith("malformed row: 3 fields")
    assert reasons["e.jpg"] == reasons["f.jpg"] == "not in the labels file"
    # Nothing else: the 7 images, the missing file's row and the malformed row.
    assert len(m) == 9 and (m["status"] == "rejected").sum() == 6
    # One summary line per kind of reason, whatever the line numbers.
    assert len(summarize_rejections(m.reset_index())) == 5
    # The same from a config file's ingest.labels (its file found from the data folder).
    shutil.copy(labels, data / "labels.csv")
    config = tmp_path / "prep.yaml"
    config.write_text("ingest:\n  labels:\n    file: labels.csv\n"
                      "    label_names: 1=Happiness,2=Sadness\n")
    again = ingest(build_config(str(data), file=config).ingest).set_index("path")
    # The labels file now lies in the data folder: not an image, so not "unlisted".
    assert again.drop(columns="reason").equals(m.drop(columns="reason"))


def test_a_file_that_cannot_be_read_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    bad = tmp_path / "labels.csv"
    bad.write_text("file,emotion\nx.jpg,1\n")
    with pytest.raises(ValueError, match=r"labels.csv: no 'path' column \(columns: file, "):
        build_config(str(tmp_path / "data"), labels={"file": str(bad)})
    bad.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        build_config(str(tmp_path / "data"), labels={"file": str(bad)})
    with pytest.raises(ValueError, match=r"unknown labels preset 'fer'; known: \['ferplus'\]"):
        build_config(str(tmp_path / "data"), labels={"file": str(bad), "preset": "fer"})


def test_a_file_of_probabilities_is_used_as_given():
    # No row sums past 1: probabilities, so no outlier rule (0.1 stays). Majority on val.
    text = ("path,split,a,b,c\n"
            "x.jpg,train,0.6,0.3,0.1\n"    # probability: 0.6 then 0.3 -> 0.9 >= 0.75
            "y.jpg,val,0.6,0.3,0.1\n"      # majority: a
            "z.jpg,train,0.4,0.35,0.25\n")  # 0.4, 0.35 -> 0.75 kept: 0.4/0.75, 0.35/0.75
    cfg = IngestConfig(root=".", labels={"file": "p.csv", "split_column": "split",
                                         "mode": "probability"})
    settled, todo = labelled_rows(text, cfg, ["x.jpg", "y.jpg", "z.jpg"], [])
    assert settled == []
    got = {r["path"]: (r["subset"], json.loads(r["distribution"])) for r in todo}
    assert got["x.jpg"][1] == pytest.approx({"a": 0.6 / 0.9, "b": 0.3 / 0.9, "c": 0})
    assert got["y.jpg"] == ("val", {"a": 1, "b": 0, "c": 0})
    assert got["z.jpg"][1] == pytest.approx({"a": 0.4 / 0.75, "b": 0.35 / 0.75, "c": 0})
