"""One-hot labels: the saved sets' uint8 rows, against hand-written ones."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.prepare.onehot import one_hot


def test_one_hot_rows_are_uint8_with_a_one_at_each_label():
    out = one_hot(np.array([2, 0, 1, 2]), 4)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert one_hot([3], 4).tolist() == [[0, 0, 0, 1]]  # a list is taken too
    empty = one_hot(np.array([], np.int64), 3)
    assert empty.shape == (0, 3) and empty.dtype == np.uint8


@pytest.mark.parametrize("bad", [[-1, 0], [0, 4]])
def test_one_hot_refuses_a_label_outside_the_classes(bad):
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        one_hot(np.array(bad), 4)
