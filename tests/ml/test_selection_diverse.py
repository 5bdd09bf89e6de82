"""Diversity-aware batches, the cold start and batch priorities, on hand-made points with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ml.selection import cold_start, diverse_top_k, kmeans, priorities_with_batch, top_k
from ml.simulate import balanced_initial, choose_batch


def blobs(centres: list[tuple[float, float]], n: int, seed: int = 0) -> np.ndarray:
    """(len(centres) * n, 2) points, n per centre, tight around it, centre by centre."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.05, size=(n, 2)) for c in centres])


def test_kmeans_finds_separated_groups():
    x = blobs([(0, 0), (10, 0), (0, 10)], 30)
    centres, assign = kmeans(x, 3, rng=np.random.default_rng(0))
    assert centres.shape == (3, 2)
    assert all(len(set(assign[i * 30 : (i + 1) * 30])) == 1 for i in range(3))
    assert len(set(assign)) == 3


def test_kmeans_with_fewer_distinct_points_than_k():
    centres, assign = kmeans(np.zeros((5, 3)), 4, rng=np.random.default_rng(0))
    assert len(centres) == 1 and (assign == 0).all()


def test_diverse_batch_is_not_near_copies():
    # Given the 20 highest scores all in one tight group, and a second group scored a bit lower
    x = blobs([(0, 0), (10, 10)], 20)
    scores = np.concatenate([np.linspace(1.0, 0.9, 20), np.linspace(0.8, 0.7, 20)])
    assert set(top_k(scores, 2)) == {0, 1}  # plain top-k: two near-copies
    batch = diverse_top_k(scores, x, 2, candidates=40)
    assert batch.tolist() == [0, 20]  # the best of each group, best first


def test_diverse_always_keeps_the_best_item_and_handles_small_pools():
    x = blobs([(0, 0), (5, 5), (9, 0)], 10, seed=3)
    scores = np.random.default_rng(1).random(30)
    assert diverse_top_k(scores, x, 5)[0] == int(np.argmax(scores))
    assert diverse_top_k(scores[:1], x[:1], 3).tolist() == [0]  # one item
    assert diverse_top_k(scores, x, 0).size == 0
    with pytest.raises(ValueError):
        diverse_top_k(scores, x[:5], 2)


def test_diverse_with_identical_embeddings_falls_back_to_scores():
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    assert diverse_top_k(scores, np.ones((4, 2)), 2).tolist() == [1, 3]


def test_cold_start_covers_every_group_with_a_typical_member():
    # Given three groups of different sizes, each with one far-off outlier
    x = blobs([(0, 0), (10, 0), (0, 10)], 40)
    x[0], x[40], x[80] = (2, 2), (12, 2), (2, 12)
    picks = cold_start(x, 3, seed=0)
    assert sorted(p // 40 for p in picks) == [0, 1, 2]
    assert not {0, 40, 80} & set(picks.tolist())  # typical, not outliers
    assert cold_start(x[:1], 5).tolist() == [0]
    assert cold_start(x, 0).size == 0


def test_priorities_put_the_batch_first_then_the_rest_by_score():
    scores = np.array([0.1, 0.9, 0.5, 0.7, np.nan])
    p = priorities_with_batch(scores, np.array([2, 0]))
    assert np.argsort(-p).tolist() == [2, 0, 1, 3, 4]
    assert np.isfinite(p).all()


def test_choose_batch_and_balanced_initial():
    scores = np.array([0.2, 0.8, 0.5])
    assert choose_batch(scores, 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="diverse"):
        choose_batch(scores, 2, selection="nope")
    labels = np.repeat(np.arange(4), 10)
    chosen = balanced_initial(labels, 8, np.random.default_rng(0))
    assert np.bincount(labels[chosen], minlength=4).tolist() == [2, 2, 2, 2]
