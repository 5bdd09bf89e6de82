"""Diverse batches, the cold start, batch priorities and planned batches, on hand-made points with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ml.clustering import kmeans
from ml.coverage import class_counts
from ml.evaluation.simulate import balanced_initial
from ml.loop import fit_and_score_features
from ml.selection import (
    choose_batch,
    cold_start,
    diverse_top_k,
    plan_batch,
    priorities_with_batch,
    top_k,
)


def blobs(centres: list[tuple[float, float]], n: int, seed: int = 0) -> np.ndarray:
    """(len(centres) * n, 2) points, n per centre, tight around it, centre by centre."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.05, size=(n, 2)) for c in centres])


def test_kmeans_finds_separated_groups():
    x = blobs([(0, 0), (10, 0), (0, 10)], 30)
    centres, assign = kmeans(x, 3, seed=0)
    assert centres.shape == (3, 2)
    assert all(len(set(assign[i * 30 : (i + 1) * 30])) == 1 for i in range(3))
    assert len(set(assign)) == 3


def test_kmeans_with_fewer_distinct_points_than_k():
    centres, assign = kmeans(np.zeros((5, 3)), 4, seed=0)
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


def test_a_planned_batch_gives_coverage_up_to_half_and_the_rest_to_the_strategy():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=50)
    scores = rng.random(50)
    emb = rng.normal(size=(50, 3))
    counts = np.array([10, 10, 1, 10])
    batch = plan_batch(scores, 6, strategy="margin", selection="topk", probs=probs, counts=counts)
    likeliest = np.argsort(-probs[:, 2], kind="stable")[:2].tolist()
    assert batch[:2].tolist() == likeliest and len(set(batch.tolist())) == 6
    rest = [i for i in np.argsort(-scores, kind="stable") if i not in likeliest][:4]
    assert batch[2:].tolist() == rest
    # Random stays a random sample: it is the baseline
    assert (
        plan_batch(
            scores, 6, strategy="random", selection="diverse", probs=probs, counts=counts, embeddings=emb
        ).tolist()
        == top_k(scores, 6).tolist()
    )
    # Once every class has enough labels, the strategy has the whole batch
    full = plan_batch(scores, 6, strategy="margin", selection="topk", probs=probs, counts=np.full(4, 3))
    assert full.tolist() == top_k(scores, 6).tolist()


def test_a_rare_class_nobody_labeled_is_searched_for():
    # Given four classes of embeddings, one of them rare (8 of 188 items), and labels for the others only
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 5
    y = np.repeat(np.arange(4), [60, 60, 60, 8])
    x = (centres[y] + rng.normal(size=(len(y), 16))).astype(np.float32)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    result = fit_and_score_features(x[labeled], y[labeled], x[pool], 4, strategy="margin", seed=0)
    # When the next batch of 10 is planned
    batch = plan_batch(
        result.scores,
        10,
        strategy="margin",
        selection="diverse",
        probs=result.probs,
        counts=class_counts(y[labeled], 4),
        embeddings=result.embeddings,
        explore=(result.embeddings, result.labeled_embeddings),
    )
    # Then it holds an item of the rare class, first
    assert y[pool[batch[0]]] == 3
    # And each labeled class with 3 labels is left to the strategy
    assert len(batch) == 10
