"""Table 2 from Table 1: LabelEncoder codes and the stratified 80/20 split with seed 0."""

import pandas as pd
import pytest

from fer_core.prepare.manifest import new_rows
from fer_core.prepare.split import SplitConfig, classes_of, encode_labels, split, split_table

TABLE1_AFTER = {"Anger": 8228, "Disgust": 2458, "Fear": 2983, "Happiness": 9113,
                "Sadness": 13040, "Surprise": 7417}
TABLE2 = {"Anger": (0, 6582, 1646), "Disgust": (1, 1967, 491), "Fear": (2, 2386, 597),
          "Happiness": (3, 7290, 1823), "Sadness": (4, 10432, 2608), "Surprise": (5, 5934, 1483)}


def manifest_of(counts: dict[str, int], subset: str = "train") -> pd.DataFrame:
    return new_rows([{"path": f"{subset}/{c}/{i:05d}.jpg", "subset": subset, "class": c,
                      "sha1": f"{c}{i}"} for c, n in counts.items() for i in range(n)])


def test_table2_reproduced_from_table1_counts():
    encoded, classes = encode_labels(manifest_of(TABLE1_AFTER))
    table = split_table(split(encoded, SplitConfig()), classes).set_index("class")
    for cls, (code, train, val) in TABLE2.items():
        assert (table.loc[cls, "code"], table.loc[cls, "train"], table.loc[cls, "val"]) == (
            str(code), train, val)
    assert (table.loc["Total", "train"], table.loc["Total", "val"]) == (34591, 8648)


def test_split_is_seeded_and_leaves_input_untouched():
    m, _ = encode_labels(manifest_of({"a": 50, "b": 30}))
    before = m.copy()
    one, two = split(m, SplitConfig()), split(m, SplitConfig())
    pd.testing.assert_frame_equal(m, before)
    assert one["split"].tolist() == two["split"].tolist()
    other = split(m, SplitConfig(random_state=1))
    assert other["split"].tolist() != one["split"].tolist()


def test_held_out_test_subset_is_kept_whole():
    m = pd.concat([manifest_of({"a": 20, "b": 20}), manifest_of({"a": 5, "b": 5}, "test")],
                  ignore_index=True)
    out = split(encode_labels(m)[0], SplitConfig())
    assert (out.loc[out["subset"] == "test", "split"] == "test").all()
    assert set(out.loc[out["subset"] == "train", "split"]) == {"train", "val"}


def test_label_codes_follow_sorted_class_names():
    m, classes = encode_labels(manifest_of({"Surprise": 3, "Anger": 3}))
    assert classes == ("Anger", "Surprise") == classes_of(m)
    assert m.loc[m["class"] == "Surprise", "label"].unique().tolist() == [1]


def test_class_too_small_to_stratify_is_named():
    m, _ = encode_labels(manifest_of({"big": 10, "lonely": 1}))
    with pytest.raises(ValueError, match="lonely"):
        split(m, SplitConfig())


def test_the_split_stage_encodes_then_splits_and_leaves_its_input_untouched():
    from fer_core.prepare.split import encode_and_split

    m = pd.concat([manifest_of({"b": 20, "a": 10}), manifest_of({"a": 4}, "test")],
                  ignore_index=True)
    before = m.copy()
    out = encode_and_split(m, SplitConfig())
    pd.testing.assert_frame_equal(m, before)
    assert out.groupby("class")["label"].unique().map(list).to_dict() == {"a": [0], "b": [1]}
    assert (out.loc[out["subset"] == "test", "split"] == "test").all()
    train = out[out["subset"] == "train"]
    assert train["split"].value_counts().to_dict() == {"train": 24, "val": 6}  # 80/20 of 30


def test_a_given_split_is_kept_as_given_and_table2_reports_it():
    # A labels file's split column (FER+'s usages): 3 a + 1 b in train, no 80/20.
    m = pd.concat([manifest_of({"a": 3, "b": 1}), manifest_of({"a": 2, "b": 1}, "val"),
                   manifest_of({"a": 1, "b": 2}, "test")], ignore_index=True)
    encoded, classes = encode_labels(m)
    out = split(encoded, SplitConfig())
    assert (out["split"] == out["subset"]).all()
    table = split_table(out, classes).set_index("class")
    assert list(table.columns) == ["code", "train", "val", "test"]
    assert table.loc["a", ["train", "val", "test"]].tolist() == [3, 2, 1]
    assert table.loc["Total", ["train", "val", "test"]].tolist() == [4, 3, 3]
