"""Turning scores into choices: top k, diversity-aware batches, a cold start, storable priorities.

Scores follow one direction everywhere (higher = more worth labeling), so selection
always sorts descending; NaN scores rank last. Diversity and the cold start work on
embeddings (N, D): a batch should not be ten near-copies, and the first batch, with no
model yet, should cover the data's clusters (and so, usually, its classes).
"""

from __future__ import annotations

import numpy as np

_MAX = np.finfo(np.float64).max


def priorities_from_scores(scores: np.ndarray) -> np.ndarray:
    """Finite float64 priorities (N,) that sort exactly like the (N,) scores, descending.

    The scores themselves, with NaN mapped to the lowest finite float (ranked last),
    -inf just above it and +inf to the highest finite float, so the values can be
    stored in a database column or JSON.
    """
    p = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.nan_to_num(p, nan=-_MAX, posinf=_MAX, neginf=np.nextafter(-_MAX, 0.0))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices (min(k, N),) int64 of the k highest of the (N,) scores, highest first.

    Ties go to the lower index; NaN scores come last; k <= 0 gives no indices.
    """
    p = priorities_from_scores(scores)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    # Stable ascending sort of the negated priorities = descending, lower index first.
    return np.argsort(-p, kind="stable")[:k].astype(np.int64)


def kmeans(x: np.ndarray, k: int, *, rng: np.random.Generator, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding then Lloyd iterations on (N, D) points; returns (centres (k', D), assignment (N,)).

    k' = min(k, number of distinct points). Deterministic given ``rng``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(k, n)
    if k <= 0:
        return np.empty((0, x.shape[1] if x.ndim == 2 else 0)), np.zeros(n, dtype=np.int64)
    sq = np.einsum("nd,nd->n", x, x)
    centres = [int(rng.integers(n))]
    d2 = np.maximum(sq - 2 * x @ x[centres[0]] + sq[centres[0]], 0.0)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            break  # fewer distinct points than k
        nxt = int(rng.choice(n, p=d2 / total))
        centres.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq - 2 * x @ x[nxt] + sq[nxt], 0.0))
    c = x[centres].copy()
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        dist = sq[:, None] - 2 * x @ c.T + np.einsum("kd,kd->k", c, c)[None, :]
        new = dist.argmin(axis=1)
        if _ and np.array_equal(new, assign):
            break
        assign = new
        for j in range(len(c)):
            members = assign == j
            if members.any():
                c[j] = x[members].mean(axis=0)
    return c, assign


def diverse_top_k(
    scores: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    *,
    candidates: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A batch of k indices (highest score first) that are uncertain and not near-copies.

    The ``candidates`` (default 5 k) highest-scoring of the (N,) scores are clustered into
    k groups over their (N, D) embeddings; each group gives its highest-scoring item.
    The single best item is always in the batch. With N <= k this is ``top_k``.
    """
    scores = priorities_from_scores(scores)
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or len(emb) != len(scores):
        raise ValueError(f"expected embeddings of shape ({len(scores)}, D), got {emb.shape}")
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if len(scores) <= k:
        return top_k(scores, k)
    pool = top_k(scores, max(k, candidates if candidates is not None else 5 * k))
    _, assign = kmeans(emb[pool], k, rng=np.random.default_rng(seed))
    chosen = []
    for cluster in np.unique(assign):
        members = pool[assign == cluster]  # already in descending score order
        chosen.append(members[0])
    chosen = np.array(chosen, dtype=np.int64)
    if len(chosen) < k:  # duplicate points collapsed clusters: fill by score
        rest = pool[~np.isin(pool, chosen)]
        chosen = np.concatenate([chosen, rest[: k - len(chosen)]])
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def cold_start(embeddings: np.ndarray, k: int, *, seed: int = 0, neighbours: int = 20) -> np.ndarray:
    """k indices that cover (N, D) embeddings with no labels at all (TypiClust-like).

    Cluster into k groups with k-means; from each group take its most typical item (the
    highest density: inverse mean distance to its nearest neighbours in the group).
    Larger groups come first, so a shorter prefix still covers the bulk of the data.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"expected embeddings of shape (N, D), got {emb.shape}")
    k = min(k, len(emb))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    _, assign = kmeans(emb, k, rng=rng)
    picks: list[tuple[int, int]] = []
    for cluster in np.unique(assign):
        members = np.flatnonzero(assign == cluster)
        # Density within a very large group is estimated on a sample of it.
        members_eval = np.sort(rng.choice(members, 2000, replace=False)) if len(members) > 2000 else members
        pts = emb[members_eval]
        sq = np.einsum("nd,nd->n", pts, pts)
        dist = np.sqrt(np.maximum(sq[:, None] - 2 * pts @ pts.T + sq[None, :], 0.0))
        m = min(neighbours, len(pts) - 1)
        if m <= 0:
            best = members_eval[0]
        else:
            near = np.partition(dist, m, axis=1)[:, 1 : m + 1]  # skip self (distance 0)
            best = members_eval[int(np.argmin(near.mean(axis=1)))]
        picks.append((-len(members), int(best)))
    chosen = [idx for _, idx in sorted(picks)]
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(emb)), chosen)
        chosen += rng.permutation(rest)[: k - len(chosen)].tolist()
    return np.array(chosen, dtype=np.int64)


def priorities_with_batch(scores: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """(N,) priorities: the batch indices first, in the given order, then everything else by score.

    Values are ranks (N for the first, down to 1), so they are finite and sort the queue
    in that order; the raw scores are stored separately.
    """
    p = priorities_from_scores(scores)
    batch = np.asarray(batch, dtype=np.int64)
    rest = np.argsort(-p, kind="stable")
    rest = rest[~np.isin(rest, batch)]
    order = np.concatenate([batch, rest])
    out = np.empty(len(p), dtype=np.float64)
    out[order] = np.arange(len(p), 0, -1, dtype=np.float64)
    return out
