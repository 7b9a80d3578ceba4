"""FER+'s votes to labels (fer_core.prepare.votes) on hand-worked rows.

Columns as FER+'s CSV: neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, then unknown, NF. Each expected value is worked out by hand from FER+'s
``_process_data`` (comments show the working).
"""

import numpy as np
import pytest

from fer_core.prepare import votes

IGN = ("unknown", "NF")


def row(**given):
    cols = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
            "contempt", "unknown", "NF")
    return np.array([given.get(c, 0) for c in cols], float)


def onehot(i):
    return np.eye(8)[i]


def test_majority_clear_winner_after_dropping_single_votes():
    # 6 happy, 2 neutral, 1 sad, 1 NF -> outliers (1s) dropped: 6 of 8 > 4
    dist, reason = votes.majority(row(happiness=6, neutral=2, sadness=1, NF=1), IGN)
    assert reason == "" and np.array_equal(dist, onehot(1))


def test_five_five_tie_has_no_majority_but_probability_keeps_both():
    r = row(neutral=5, anger=5)
    assert votes.majority(r, IGN) == (None, "no majority")  # 5 > 5 is false
    dist, reason = votes.probability(r, IGN)  # both tops taken: 10 of 10
    assert reason == ""
    assert np.allclose(dist, 0.5 * onehot(0) + 0.5 * onehot(4))


def test_a_single_vote_is_an_outlier():
    r = row(surprise=1)  # -> all zero after the outlier rule
    assert votes.majority(r, IGN) == (None, "no majority")
    assert votes.probability(r, IGN)[0] is None


def test_nf_on_top():
    assert votes.majority(row(NF=10), IGN) == (None, "not a face")
    assert votes.majority(row(NF=7, neutral=3), IGN) == (None, "not a face")
    assert votes.probability(row(NF=7, neutral=3), IGN) == (None, "not a face")


def test_unknown_on_top():
    assert votes.majority(row(unknown=6, happiness=4), IGN) == (None, "unknown")


def test_unknown_tied_with_an_emotion():
    # 4 neutral, 4 unknown, 2 fear: majority 4 > 5 false. probability: the top 4s are
    # neutral (taken) then unknown (ends the taking; not taken, neutral came first):
    # 4 of 10 kept <= 5 -> dropped.
    r = row(neutral=4, unknown=4, fear=2)
    assert votes.majority(r, IGN) == (None, "no majority")
    dist, reason = votes.probability(r, IGN)
    assert dist is None and reason.startswith("too spread: 4 of 10")


def test_a_row_summing_to_nine():
    # 5 happy, 3 surprise, 1 neutral: outlier dropped -> 8 votes; 5 > 4 -> happy.
    r = row(happiness=5, surprise=3, neutral=1)
    assert r.sum() == 9
    dist, _ = votes.majority(r, IGN)
    assert np.array_equal(dist, onehot(1))
    # probability: 5 (< 6) then 3 -> 8 >= 6 stops; 5/8 and 3/8.
    dist, _ = votes.probability(r, IGN)
    assert np.allclose(dist, 5 / 8 * onehot(1) + 3 / 8 * onehot(2))


def test_majority_rejects_crossentropy_keeps():
    # 4 sad, 3 neutral, 2 fear, 1 anger -> 9 votes after outliers; 4 > 4.5 false.
    # crossentropy: 4 (< 6.75), 3 -> 7 >= 6.75 stops; 7 > 4.5 kept: 4/7 sad, 3/7 neutral.
    r = row(sadness=4, neutral=3, fear=2, anger=1)
    assert votes.majority(r, IGN) == (None, "no majority")
    dist, reason = votes.crossentropy(r, IGN)
    assert reason == ""
    assert np.allclose(dist, 4 / 7 * onehot(3) + 3 / 7 * onehot(0))
    assert np.allclose(votes.probability(r, IGN)[0], dist)


def test_three_classes_at_most():
    # 3, 3, 2, 2: tops 3+3 = 6 (< 7.5), then the two 2s both taken in one round: count 4
    # > 3 -> dropped.
    r = row(neutral=3, happiness=3, surprise=2, sadness=2)
    assert votes.probability(r, IGN)[0] is None
    # 4, 2, 2, 2: 4 (< 7.5), then three 2s: count 4 -> dropped.
    assert votes.probability(row(neutral=4, happiness=2, surprise=2, fear=2), IGN)[0] is None
    # 4, 3, 2: 4, 3 -> 7 < 6.75? no, stops at 7: 4/7, 3/7.
    dist, _ = votes.probability(row(neutral=4, happiness=3, surprise=2), IGN)
    assert np.allclose(dist, 4 / 7 * onehot(0) + 3 / 7 * onehot(1))


def test_probabilities_are_used_as_given():
    # A file of probabilities: no outlier rule (0.1 would be dropped as a count of <= 1).
    p = np.array([0.55, 0.3, 0.15, 0, 0, 0, 0, 0, 0, 0])
    dist, _ = votes.majority(p, IGN, counts=False)
    assert np.array_equal(dist, onehot(0))
    dist, _ = votes.probability(p, IGN, counts=False)  # 0.55, 0.85 >= 0.75 stops
    assert np.allclose(dist, np.r_[0.55, 0.3, np.zeros(6)] / 0.85)
    assert votes.are_counts(np.array([[3, 7, 0]])) and not votes.are_counts(p[None])


def test_unknown_mode_names_the_known():
    with pytest.raises(ValueError, match="majority, probability, crossentropy"):
        votes.label_votes(row(neutral=10), IGN, "multi")
