"""Tables 4-5: the paper's augmentation plan, and the balance plan for other class sets."""

import numpy as np
import pytest

from fer_core.prepare.augment import (
    PAPER_PLAN,
    AugmentConfig,
    add_noise,
    augmentation_table,
    plan_augmentation,
    plan_table,
    render_batch,
    resolve_plan,
)
from fer_core.prepare.ingest import PAPER_CLASSES

TABLE2_TRAIN = {"Anger": 6582, "Disgust": 1967, "Fear": 2386, "Happiness": 7290,
                "Sadness": 10432, "Surprise": 5934}
TABLE5_AFTER = {"Anger": 9543, "Disgust": 7868, "Fear": 9544, "Happiness": 9477,
                "Sadness": 10432, "Surprise": 9492}


def labels_of(counts: dict[str, int]) -> np.ndarray:
    return np.concatenate([np.full(n, i) for i, n in enumerate(counts.values())])


def test_table5_reproduced_from_table2_counts():
    labels = labels_of(TABLE2_TRAIN)
    rows = plan_augmentation(labels, PAPER_CLASSES, AugmentConfig(plan="paper"))
    table = augmentation_table(labels, rows, PAPER_CLASSES).set_index("class")
    assert table["after"].drop("Total").to_dict() == TABLE5_AFTER
    assert (table.loc["Total", "before"], table.loc["Total", "after"]) == (34591, 56356)


def test_auto_picks_paper_plan_for_the_paper_classes_and_balance_otherwise():
    assert resolve_plan(AugmentConfig(), TABLE2_TRAIN) == PAPER_PLAN
    plan = resolve_plan(AugmentConfig(), {"happy": 100, "neutral": 40})
    assert plan["happy"].mode == "replace" and plan["neutral"].mode == "add"


def test_paper_plan_refuses_other_classes():
    with pytest.raises(ValueError, match="Neutral"):
        resolve_plan(AugmentConfig(plan="paper"), {**TABLE2_TRAIN, "Neutral": 10})


def test_sadness_replacement_uses_disjoint_images_per_noise():
    labels = labels_of(TABLE2_TRAIN)
    rows = plan_augmentation(labels, PAPER_CLASSES, AugmentConfig(plan="paper"))
    sad = rows[rows["class"] == "Sadness"]
    assert len(sad) == 10432 and sad["source"].is_unique
    assert sad["noise"].value_counts().drop("none").tolist() == [1043] * 3


def test_balance_brings_every_class_near_the_largest():
    counts = {"a": 1000, "b": 300, "c": 37, "d": 999}
    labels = labels_of(counts)
    rows = plan_augmentation(labels, tuple(counts), AugmentConfig(plan="balance"))
    after = np.bincount(rows["label"], minlength=4)
    assert after[0] == 1000 and (np.abs(after - 1000) <= 3).all(), after


def test_plan_is_seeded_and_reshuffled():
    labels = labels_of({"a": 30, "b": 10})
    one = plan_augmentation(labels, ("a", "b"), AugmentConfig(plan="balance"))
    two = plan_augmentation(labels, ("a", "b"), AugmentConfig(plan="balance"))
    assert one.equals(two)
    assert not one["label"].is_monotonic_increasing
    other = plan_augmentation(labels, ("a", "b"), AugmentConfig(plan="balance", random_state=1))
    assert not one.equals(other)


def test_noise_changes_pixels_keeps_uint8_and_does_not_depend_on_batching():
    rng = np.random.default_rng(0)
    images = rng.integers(30, 220, (4, 96, 96, 3), dtype=np.uint8)
    rows = plan_augmentation(np.array([0, 0, 1, 1]), ("a", "b"),
                             AugmentConfig(plan={"a": {"fraction": 1.0}, "b": {"fraction": 1.0}}))
    whole = render_batch(images, rows)
    parts = np.concatenate([render_batch(images, rows.iloc[i:i + 3])
                            for i in range(0, len(rows), 3)])
    assert whole.dtype == np.uint8 and np.array_equal(whole, parts)
    for kind in ("poisson", "speckle", "gaussian"):
        noisy = add_noise(images[0], kind, seed=1)
        assert noisy.dtype == np.uint8 and noisy.shape == images[0].shape
        assert 0.5 < np.abs(noisy.astype(int) - images[0]).mean() < 60
    assert np.array_equal(add_noise(images[0], "none", 5), images[0])


def test_render_chunks_read_only_each_chunks_sources_and_match_one_by_one():
    import pandas as pd

    from fer_core.prepare.augment import render_chunks

    rng = np.random.default_rng(0)
    stored = rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    positions = np.array([1, 3, 5, 7, 9, 11])  # of the training images, in the store
    rows = pd.DataFrame({"source": [5, 0, 0, 2, 4, 1, 3],
                         "noise": ["none", "gaussian", "none", "poisson", "speckle",
                                   "gaussian", "none"],
                         "seed": np.arange(7, dtype=np.int64) * 1000 + 1})
    reads = []

    def read(p):
        reads.append(np.asarray(p).tolist())
        return stored[p]

    out = np.concatenate(list(render_chunks(rows, positions, read, chunk=3)))
    assert reads == [[11, 1, 1], [5, 9, 3], [7]], "one read per chunk, its sources only"
    for i, r in rows.iterrows():
        np.testing.assert_array_equal(
            out[i], add_noise(stored[positions[r["source"]]], r["noise"], int(r["seed"])))
    assert (out[0] == stored[11]).all() and (out[2] == stored[1]).all()


def test_table4_plan_per_class_as_the_paper_gives_it():
    """Table 4 from Table 2's counts: per noise 15% of Anger (Table 5's counts; see the
    module's docstring), 100% of Disgust and Fear, 10% of Happiness, 10% of Sadness
    replacing originals, 20% of Surprise."""
    labels = labels_of(TABLE2_TRAIN)
    rows = plan_augmentation(labels, PAPER_CLASSES, AugmentConfig(plan="paper"))
    t = plan_table(labels, rows, PAPER_CLASSES).set_index("class")
    assert t["per_noise"].to_dict() == {"Anger": "15%", "Disgust": "100%", "Fear": "100%",
                                        "Happiness": "10%", "Sadness": "10%", "Surprise": "20%"}
    assert t["mode"].to_dict() == {c: "replace" if c == "Sadness" else "add"
                                   for c in PAPER_CLASSES}
    assert t.loc["Anger", ["poisson", "speckle", "gaussian"]].tolist() == [987] * 3
    assert t["after"].to_dict() == TABLE5_AFTER


@pytest.mark.parametrize("noise", ["poisson", "speckle", "gaussian"])
def test_a_grey_face_stays_grey_and_a_colour_face_gets_noise_per_channel(noise, astronaut):
    import cv2

    face = cv2.resize(astronaut[30:230, 150:330], (96, 96))
    grey = np.repeat(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    noisy = add_noise(grey, noise, seed=3)
    assert noisy.shape == grey.shape and not np.array_equal(noisy, grey)
    assert np.array_equal(noisy[..., 0], noisy[..., 1])
    assert np.array_equal(noisy[..., 0], noisy[..., 2])
    colour = add_noise(face, noise, seed=3)
    channel_noise = colour.astype(int) - face.astype(int)
    assert not np.array_equal(channel_noise[..., 0], channel_noise[..., 1])
