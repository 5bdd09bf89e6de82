"""top_k ordering and ties, and priorities that sort like the scores."""

from __future__ import annotations

import numpy as np

from ml.selection import priorities_from_scores, top_k


def test_top_k_descending_with_ties_to_the_lower_index():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    np.testing.assert_array_equal(top_k(scores, 3), [1, 2, 4])
    np.testing.assert_array_equal(top_k(scores, 4), [1, 2, 4, 3])


def test_top_k_larger_than_n_gives_all_and_zero_gives_none():
    scores = np.array([0.5, 0.1, 0.9])
    np.testing.assert_array_equal(top_k(scores, 10), [2, 0, 1])
    assert top_k(scores, 0).shape == (0,)
    assert top_k(np.array([]), 3).shape == (0,)


def test_top_k_puts_nan_last():
    scores = np.array([np.nan, -np.inf, 1.0, 0.0])
    np.testing.assert_array_equal(top_k(scores, 4), [2, 3, 1, 0])


def test_priorities_are_finite_and_sort_like_scores():
    scores = np.array([0.2, np.nan, np.inf, -np.inf, 0.2, -1.0])
    priorities = priorities_from_scores(scores)
    assert priorities.dtype == np.float64
    assert np.isfinite(priorities).all()
    np.testing.assert_array_equal(np.argsort(-priorities, kind="stable"), top_k(scores, len(scores)))
    assert priorities[1] < priorities[3] < priorities[5]
    np.testing.assert_array_equal(priorities_from_scores(np.array([0.3, 0.1])), [0.3, 0.1])
