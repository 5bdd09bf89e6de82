"""Class coverage: finding the classes with too few labels, before the strategy picks the rest.

A model trained on a few labels cannot point at a class it has barely (or never) seen, so until
every class has ``MIN_CLASS_LABELS`` labels part of each batch (``COVERAGE_SHARE``) goes to the
rare ones: the pool items the model gives a rare class the highest probability, and, for a class
with no label at all, the typical items of regions no label has reached. ``ml.selection.plan_batch``
puts these first.
"""

from __future__ import annotations

import numpy as np

from ml.clustering import kmeans, most_typical

#: Until every class has this many labels, part of each batch searches for the rarer classes.
MIN_CLASS_LABELS = 3
#: At most this share of a batch goes to that search; the rest follows the strategy.
COVERAGE_SHARE = 0.5
#: Points clustered when looking for regions with no label yet (a uniform sample of the pool).
EXPLORE_SAMPLE = 4000


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """How many labels each class has.

    Parameters
    ----------
    labels : (N,) int class indices, or (N, C) 0/1 class sets
    n_classes : int
        C.

    Returns
    -------
    (C,) int64
    """
    y = np.asarray(labels)
    if y.ndim == 2:
        return (y > 0.5).sum(axis=0).astype(np.int64)
    return np.bincount(y.astype(np.int64), minlength=n_classes)[:n_classes]


def unexplored_typical(
    pool_embeddings: np.ndarray, labeled_embeddings: np.ndarray, n: int, *, seed: int = 0
) -> np.ndarray:
    """Pool items from regions that no labeled item reached.

    The labeled and pool points (a uniform sample of ``EXPLORE_SAMPLE`` when the pool is larger)
    are clustered together into L + n groups; the groups holding no labeled item (and more than
    one point: not a lone outlier) are ranked by how far their most typical member lies from the
    nearest labeled item, farthest first, and each gives that member. A second round of the cold
    start, aimed at what the labels have not reached: a class nobody labeled yet looks unlike every
    labeled item, while a part of a labeled class lies near one.

    Parameters
    ----------
    pool_embeddings : (M, D) float
    labeled_embeddings : (L, D) float
    n : int
    seed : int

    Returns
    -------
    (<= n,) int64
        Indices into the pool.
    """
    pool = np.asarray(pool_embeddings, dtype=np.float64)
    labeled = np.asarray(labeled_embeddings, dtype=np.float64).reshape(-1, pool.shape[1] if pool.ndim == 2 else 0)
    if n <= 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(pool), EXPLORE_SAMPLE, replace=False)) if len(pool) > EXPLORE_SAMPLE else None
    points = pool[sample] if sample is not None else pool
    _, assign = kmeans(np.concatenate([labeled, points]), len(labeled) + min(len(points), n), seed=seed)
    reached = set(assign[: len(labeled)].tolist())
    pool_assign = assign[len(labeled) :]
    candidates = []
    for group in np.unique(pool_assign):
        members = np.flatnonzero(pool_assign == group)
        if group in reached or (len(members) < 2 and len(points) > 1):
            continue
        typical = int(members[most_typical(points[members])])
        gap = float(np.min(np.linalg.norm(labeled - points[typical], axis=1))) if len(labeled) else 0.0
        candidates.append((-gap, -len(members), typical))
    picks = np.array([typical for _, _, typical in sorted(candidates)[:n]], dtype=np.int64)
    return sample[picks] if sample is not None else picks


def coverage_picks(
    probs: np.ndarray,
    counts: np.ndarray,
    k: int,
    *,
    pool_embeddings: np.ndarray | None = None,
    labeled_embeddings: np.ndarray | None = None,
    minimum: int = MIN_CLASS_LABELS,
    seed: int = 0,
) -> np.ndarray:
    """Pool items that look for the classes with fewer than ``minimum`` labels, rarest first.

    A class with a label or two gets the pool items the model gives it the highest probability
    (its likely members), as many as it lacks; each class with no label at all gets one item of an
    unexplored region (``unexplored_typical``), since no model can point at a class it never saw.

    Parameters
    ----------
    probs : (M, C) float
        The model's mean probabilities on the pool.
    counts : (C,) int
        Labels per class (``class_counts``).
    k : int
    pool_embeddings : (M, D) float, optional
    labeled_embeddings : (L, D) float, optional
        Without both, classes with no label are not searched for.
    minimum : int
    seed : int

    Returns
    -------
    (<= k,) int64
        Indices into the pool.
    """
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    if k <= 0 or len(probs) == 0:
        return np.empty(0, dtype=np.int64)
    chosen: list[int] = []
    missing = int((counts == 0).sum())
    if missing and pool_embeddings is not None and labeled_embeddings is not None:
        chosen += unexplored_typical(pool_embeddings, labeled_embeddings, min(missing, k), seed=seed).tolist()
    taken = set(chosen)
    for c in np.argsort(counts, kind="stable"):
        need = minimum - int(counts[c])
        if need <= 0 or counts[c] == 0:
            continue
        for i in np.argsort(-probs[:, c], kind="stable"):
            if len(chosen) >= k or need <= 0:
                break
            if int(i) not in taken:
                chosen.append(int(i))
                taken.add(int(i))
                need -= 1
    return np.array(chosen[:k], dtype=np.int64)
