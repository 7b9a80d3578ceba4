"""Section 4's SHA-1 duplicate removal, including label conflicts and train/test leakage."""

from fer_core.duplicates import DedupConfig, duplicate_report, find_duplicates, label_conflicts
from fer_core.manifest import DUPLICATE, KEPT, REJECTED, new_rows


def rows(*specs):
    return new_rows([{"path": p, "class": c, "sha1": h, "subset": s} for p, c, h, s in specs])


def test_one_copy_per_group_is_kept_in_path_order():
    m = rows(("b/2.png", "b", "x", "train"), ("b/1.png", "b", "x", "train"),
             ("b/3.png", "b", "y", "train"))
    out = find_duplicates(m, DedupConfig()).set_index("path")
    assert out.loc["b/1.png", "status"] == KEPT
    assert out.loc["b/2.png", "status"] == DUPLICATE
    assert out.loc["b/2.png", "duplicate_of"] == "b/1.png"
    assert (m["status"] == KEPT).all(), "the input manifest must not change"
    assert duplicate_report(out).to_dict("records") == [{"class": "b", "duplicates": 1}]


def test_label_conflicts_drop_every_copy_by_default():
    m = rows(("a/1.png", "a", "x", "train"), ("b/1.png", "b", "x", "train"))
    out = find_duplicates(m, DedupConfig())
    assert (out["status"] == REJECTED).all()
    assert len(label_conflicts(out)) == 2
    assert "a/1.png" in out["reason"].iloc[0] and "b/1.png" in out["reason"].iloc[0]
    kept = find_duplicates(m, DedupConfig(on_conflict="keep_first")).set_index("path")
    assert kept.loc["a/1.png", "status"] == KEPT and kept.loc["b/1.png", "status"] == DUPLICATE


def test_test_copy_is_kept_so_training_never_sees_a_test_image():
    m = rows(("test/a/9.png", "a", "x", "test"), ("train/a/1.png", "a", "x", "train"))
    out = find_duplicates(m, DedupConfig()).set_index("path")
    assert out.loc["test/a/9.png", "status"] == KEPT
    assert out.loc["train/a/1.png", "duplicate_of"] == "test/a/9.png"


def test_rejected_files_take_no_part():
    m = new_rows([{"path": "a/1.png", "class": "a", "sha1": "", "status": REJECTED},
                  {"path": "a/2.png", "class": "a", "sha1": "", "status": REJECTED}])
    assert find_duplicates(m, DedupConfig())["status"].tolist() == [REJECTED, REJECTED]
