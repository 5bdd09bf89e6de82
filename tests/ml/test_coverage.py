"""Class coverage: labels per class, the rare-class search and the unexplored regions, on hand-made points."""

from __future__ import annotations

import numpy as np

from ml.coverage import class_counts, coverage_picks, unexplored_typical


def blobs(centres: list[tuple[float, float]], n: int, seed: int = 0) -> np.ndarray:
    """(len(centres) * n, 2) points, n per centre, tight around it, centre by centre."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.05, size=(n, 2)) for c in centres])


def test_class_counts_for_both_kinds_of_labels():
    assert class_counts(np.array([0, 2, 2]), 4).tolist() == [1, 0, 2, 0]
    assert class_counts(np.array([[1, 0, 1], [1, 1, 0]]), 3).tolist() == [2, 1, 1]


def test_coverage_looks_for_the_rare_classes_first():
    # Given a model's probabilities over 3 classes for 7 pool items, and labels 5 / 1 / 0 per class
    probs = np.array(
        [
            [0.9, 0.1, 0.0],
            [0.2, 0.7, 0.1],
            [0.1, 0.6, 0.3],
            [0.5, 0.4, 0.1],
            [0.3, 0.3, 0.4],
            [0.8, 0.1, 0.1],
            [0.4, 0.3, 0.3],
        ]
    )
    counts = np.array([5, 1, 0])
    # And embeddings where items 4 and 6 lie together, far from everything labeled
    pool_emb = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [10, 10], [0.5, 0.5], [10.2, 10]], dtype=float)
    labeled_emb = np.array([[0, 0.1], [1, 0.1]], dtype=float)
    picks = coverage_picks(probs, counts, 4, pool_embeddings=pool_emb, labeled_embeddings=labeled_emb)
    # Then the class with no label gets an item of the unexplored region, the one with one label its
    # two likeliest members; the class with five is left to the strategy
    assert picks[0] in (4, 6) and picks[1:].tolist() == [1, 2]
    # Without embeddings a class nobody labeled cannot be searched for, the others still are
    assert coverage_picks(probs, counts, 4).tolist() == [1, 2]
    assert coverage_picks(probs, np.array([3, 3, 3]), 4).size == 0


def test_unexplored_regions_are_the_clusters_no_label_reached():
    x = blobs([(0, 0), (10, 0), (0, 10)], 30)
    labeled = x[[0, 1, 30]]  # the first two groups have labels
    picks = unexplored_typical(x, labeled, 1, seed=0)
    assert len(picks) == 1 and picks[0] // 30 == 2
