"""Section 5's augmentation per class: the set put together from per-class noisy images is
the set rendered row by row, and one changed image changes only its class's draws."""

import numpy as np
import pandas as pd

from fer_core.prepare.augment import AugmentConfig, render_chunks
from fer_core.prepare.augment_classes import (
    assemble,
    assembly,
    class_plan,
    part_key,
    render_class,
)

CLASSES = ("a", "b", "c")
CFG = AugmentConfig(plan="balance")


def data(edit: int | None = None, recipe: str = ""):
    """46 stored 8x8 images in train/val/test over three unbalanced classes; ``edit``: one
    image's file changed; ``recipe``: how every image is resized."""
    rng = np.random.default_rng(0)
    n = 46
    labels = np.array([0] * 20 + [1] * 10 + [2] * 16)
    split = np.array(["train", "train", "val", "test"] * 12)[:n]
    images = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
    sha1 = [f"file{i}" for i in range(n)]
    if edit is not None:
        images[edit] = 255 - images[edit]
        sha1[edit] = "edited"
    index = pd.DataFrame({"path": [f"p{i:02d}" for i in range(n)], "split": split,
                          "label": labels, "class": np.array(CLASSES)[labels], "sha1": sha1,
                          "content": [f"{recipe}{f}" for f in sha1]})
    return index, images


def test_assembled_from_classes_is_the_set_rendered_row_by_row():
    index, images = data()
    plan = class_plan(index, CLASSES, CFG)
    rows, train = plan.rows, plan.train
    assert train.tolist() == [i for i in range(46) if i % 4 < 2]  # data()'s train rows
    assert (rows["noise"] != "none").any()
    oracle = np.concatenate(list(render_chunks(rows, train, lambda p: images[p])))
    rendered = {c: np.concatenate(list(render_class(plan, c, lambda p: images[p], chunk=4))
                                  or [np.zeros((0, 8, 8, 3), np.uint8)])
                for c in range(len(CLASSES))}
    reads = []

    def noisy(c, places):
        reads.append(c)
        return rendered[c][places]

    out = np.concatenate(list(assemble(assembly(plan), lambda p: images[p], noisy, chunk=7)))
    assert np.array_equal(out, oracle)
    assert set(reads) == {c for c in range(3) if len(rendered[c])}


def test_one_changed_image_changes_only_its_class():
    index, _ = data()
    before = class_plan(index, CLASSES, CFG)
    edited = int(np.flatnonzero((index["split"] == "train") & (index["label"] == 1))[0])
    after = class_plan(data(edit=edited)[0], CLASSES, CFG)
    keys = [(part_key(before, c), part_key(after, c)) for c in range(3)]
    assert [k0 != k1 for k0, k1 in keys] == [False, True, False]
    for c in (0, 2):
        pd.testing.assert_frame_equal(before.parts[c], after.parts[c])
    assert not before.parts[1]["seed"].equals(after.parts[1]["seed"])
    other = class_plan(index, CLASSES, AugmentConfig(plan="balance", random_state=1))
    assert all(part_key(before, c) != part_key(other, c) for c in range(3))


def test_the_draws_are_the_files_not_how_they_are_resized():
    """Another resizing (its config, its code's version or the machine's alignment numerics)
    makes other pixels, so every class is rendered again; which images get which noise does
    not move: a refactor of the resizing code must not change the training set's draws."""
    before = class_plan(data()[0], CLASSES, CFG)
    after = class_plan(data(recipe="resize code v2 ")[0], CLASSES, CFG)
    pd.testing.assert_frame_equal(before.rows, after.rows)
    assert all(part_key(before, c) != part_key(after, c) for c in range(3))


def test_class_plan_takes_the_train_rows_of_the_index_with_their_paths():
    split = ["train", "val"] * 15 + ["test"] * 10
    label = [0 if (i % 2 == 0 and i < 24) or i >= 30 else 1 for i in range(40)]
    index = pd.DataFrame({"path": [f"p{i}" for i in range(40)], "split": split, "label": label,
                          "sha1": [f"s{i}" for i in range(40)],
                          "content": [f"c{i}" for i in range(40)]})
    before = index.copy()
    plan = class_plan(index, ("a", "b"), AugmentConfig(plan="balance"))
    rows, train = plan.rows, plan.train
    pd.testing.assert_frame_equal(index, before)
    assert train.tolist() == list(range(0, 30, 2))
    assert list(rows.columns) == ["source", "path", "noise", "label", "class", "seed"]
    assert rows["path"].tolist() == [f"p{train[s]}" for s in rows["source"]]
    assert rows["label"].tolist() == [label[train[s]] for s in rows["source"]]
    # 12 of a and 3 of b in train: balance adds 3 noisy copies per noise of b, 9 in all
    assert rows["class"].value_counts().to_dict() == {"a": 12, "b": 12}
