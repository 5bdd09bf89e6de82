"""Clustering and density for selection: scikit-learn's k-means and nearest neighbours.

Thin wrappers that fix what selection needs from them: a k that never exceeds the distinct
points (no duplicate clusters), a fixed seed, a bounded number of Lloyd iterations, and a
density measure that leaves each point out of its own neighbours.
"""

from __future__ import annotations

import numpy as np

#: Lloyd iterations at most: the batch and cold-start clusterings need groups, not a converged optimum,
#: and a pool of many thousand points then costs a fraction of a second.
KMEANS_ITERATIONS = 20


def kmeans(x: np.ndarray, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding then Lloyd iterations (scikit-learn's ``KMeans``, one initialisation).

    Parameters
    ----------
    x : (N, D) float
        Points.
    k : int
        Clusters wanted; fewer (k' = the number of distinct points) when there are not k
        distinct points, so that no cluster is a duplicate.
    seed : int
        Seeds the k-means++ draw: the result is deterministic given it.

    Returns
    -------
    centres : (k', D) float64
    assignment : (N,) int64
        Each point's cluster in [0, k').
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(k, n)
    if k <= 0:
        return np.empty((0, x.shape[1] if x.ndim == 2 else 0)), np.zeros(n, dtype=np.int64)
    k = min(k, len(np.unique(x, axis=0)))
    if k == 1:
        return x.mean(axis=0, keepdims=True), np.zeros(n, dtype=np.int64)
    fitted = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=KMEANS_ITERATIONS, random_state=seed).fit(x)
    return fitted.cluster_centers_, fitted.labels_.astype(np.int64)


def most_typical(points: np.ndarray, neighbours: int = 20) -> int:
    """The point of highest density: the least mean distance to its nearest neighbours.

    Parameters
    ----------
    points : (N, D) float
    neighbours : int
        Neighbours counted (fewer when N is small), the point itself excluded.

    Returns
    -------
    int
        An index into ``points`` (0 for a single point).
    """
    from sklearn.neighbors import NearestNeighbors

    m = min(neighbours, len(points) - 1)
    if m <= 0:
        return 0
    distances, _ = NearestNeighbors(n_neighbors=m).fit(points).kneighbors()  # (N, m), self excluded
    return int(np.argmin(distances.mean(axis=1)))
