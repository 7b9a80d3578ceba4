"""(ours) The split by group: near-copies of real FER2013 faces, one subject's or clip's
images, a labels file's group never straddle train/val; with every group one image the
split is scikit-learn's train_test_split, row for row."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from fer_core import store
from fer_core.datasets.near_copies import near_copy
from fer_core.prepare import groups
from fer_core.prepare.manifest import new_rows
from fer_core.prepare.near_duplicates import NearDupConfig
from fer_core.prepare.near_search import search
from fer_core.prepare.split import SplitConfig, encode_and_split, encode_labels, split

EDITS = ("shift", "jpeg", "resize")


@pytest.fixture(scope="module")
def copied(fer2013_small, tmp_path_factory):
    """Real FER2013 training faces (7 classes x 40) and, in the happy folder, three made
    copies of each of 12 happy faces (shifted 2-3 px, re-encoded, rescaled)."""
    root = tmp_path_factory.mktemp("copies")
    rng = np.random.default_rng(3)
    rows, made = [], {}
    for src in sorted((fer2013_small / "train").rglob("*.jpg")):
        rel = src.relative_to(fer2013_small).as_posix()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(src.read_bytes())
        rows.append({"path": rel, "subset": "train", "class": src.parent.name, "sha1": rel})
    happy = sorted((root / "train" / "happy").glob("*.jpg"))[:12]
    for i, src in enumerate(happy):
        grey = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        for edit in EDITS:
            rel = f"train/happy/copy_{edit}_{i}.png"
            cv2.imwrite(str(root / rel), near_copy(grey, edit, rng))
            rows.append({"path": rel, "subset": "train", "class": "happy", "sha1": rel})
            made[rel] = src.relative_to(root).as_posix()
    return root, new_rows(rows), made


def test_made_near_copies_of_real_faces_never_straddle_train_and_val(copied):
    root, manifest, made = copied
    pairs, _, _ = search(manifest, NearDupConfig(),  # the default settings
                         lambda paths, size: store.iter_image_batches(root, paths, size))
    found = {frozenset(p) for p in zip(pairs["path_a"], pairs["path_b"], strict=True)}
    # The shifted copies too: training images are probed on the default settings.
    assert all(frozenset((c, s)) in found for c, s in made.items())
    out = encode_and_split(manifest, SplitConfig(), pairs).set_index("path")
    for c, s in made.items():
        assert out.at[c, "split"] == out.at[s, "split"]
        assert out.at[c, "split_group"] == out.at[s, "split_group"]
    # Each class still keeps 80/20 (within one group of the target).
    val = out[out["split"] == "val"].groupby("class").size()
    total = out.groupby("class").size()
    assert ((val - 0.2 * total).abs() <= 4).all()
    assert (out["split"].isin(["train", "val"])).all()


def test_with_no_near_copies_the_split_is_train_test_split_row_for_row(fer2013_small):
    rows = [{"path": p.relative_to(fer2013_small).as_posix(), "subset": "train",
             "class": p.parent.name, "sha1": p.name}
            for p in sorted((fer2013_small / "train").rglob("*.jpg"))]
    m, _ = encode_labels(new_rows(rows))
    # Pairs with an image outside the pool join nothing.
    outside = pd.DataFrame({"path_a": ["test/x.jpg"], "path_b": [rows[0]["path"]]})
    out = split(m, SplitConfig(group_pattern=r"^(nomatch)_"), outside)
    train_idx, val_idx = train_test_split(m.index.to_numpy(), test_size=0.2, shuffle=True,
                                          stratify=m["label"].to_numpy(), random_state=0)
    assert sorted(out.index[out["split"] == "val"]) == sorted(val_idx)
    assert sorted(out.index[out["split"] == "train"]) == sorted(train_idx)


def movie_frames() -> pd.DataFrame:
    """20 clips of 5 frames each (Movie_frame.png), two classes; clip 0 has mixed labels."""
    rows = []
    for clip in range(20):
        cls = "a" if clip % 2 else "b"
        for f in range(5):
            c = "a" if clip == 0 and f < 2 else cls
            rows.append({"path": f"train/{c}/m{clip:02d}_{f}.png", "subset": "train",
                         "class": c, "sha1": f"{clip}-{f}"})
    return new_rows(rows)


def test_a_path_pattern_keeps_each_clip_on_one_side_and_counts_mixed_labels():
    out = encode_and_split(movie_frames(), SplitConfig(group_pattern=r"^([^_]+)_"))
    clip = out["path"].str.extract(r"/(m\d+)_")[0]
    assert (out.groupby(clip)["split"].nunique() == 1).all()
    assert out["split_group"].nunique() == 20
    # Clip 0 (3 b, 2 a) counts as b; each class has 50 images: 10 in val.
    assert out[out["split"] == "val"].shape[0] == 20
    assert groups.summary(out)["mixed_label_groups"] == 1
    table = groups.group_table(out)
    assert len(table) == 20 and table["mixed_labels"].sum() == 1
    again = encode_and_split(movie_frames(), SplitConfig(group_pattern=r"^([^_]+)_"))
    assert again["split"].tolist() == out["split"].tolist()  # seeded


def test_a_group_column_joins_images_and_composes_with_the_others():
    m = movie_frames()
    # A labels file's subject id on each clip's first frame joins clips 2k and 2k+1.
    m["group"] = ["" if i % 5 else f"subject{i // 10}" for i in range(len(m))]
    out = encode_and_split(m, SplitConfig(group_pattern=r"^([^_]+)_"))
    assert out["split_group"].nunique() == 10
    subject = out["path"].str.extract(r"/m(\d+)_")[0].astype(int) // 2
    assert (out.groupby(subject)["split"].nunique() == 1).all()
    assert set(out["split"]) == {"train", "val"}


def test_groups_too_big_for_the_val_share_still_leave_one_in_val():
    m = movie_frames()
    m["group"] = [f"subject{i // 25}" for i in range(len(m))]  # 4 groups of 25
    out = encode_and_split(m, SplitConfig())
    assert out["split_group"].nunique() == 4
    # Two groups count as b (clips 0-4, 10-14), two as a: one of each is in val.
    val = out.loc[out["split"] == "val", "group"]
    assert len(val) == 50 and val.nunique() == 2
    assert {"subject0", "subject2"} & set(val) and {"subject1", "subject3"} & set(val)


def test_a_pattern_without_a_group_is_refused():
    with pytest.raises(ValueError, match="group"):
        SplitConfig(group_pattern="^movie")
