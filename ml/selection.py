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


#: Items that get cold-start priorities: two retrain batches, but at least MIN and at most MAX.
COLD_START_MIN = 20
COLD_START_MAX = 200


def cold_start_size(retrain_every: int) -> int:
    """How many items the cold start ranks first: two retrain batches, within COLD_START_MIN..MAX."""
    return max(COLD_START_MIN, min(2 * retrain_every, COLD_START_MAX))


def cold_start_family(model_family: str) -> str:
    """The backbone the cold start embeds with: the project's own, the packaged MobileNetV2 for ``cnn``."""
    return "pretrained" if model_family == "cnn" else model_family


def pixel_embeddings(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 256) float32: 16x16 grey thumbnails, a fallback when no backbone is installed."""
    grey = images.astype(np.float32).mean(axis=3)
    n, s, _ = grey.shape
    f = max(1, s // 16)
    grey = grey[:, : f * (s // f), : f * (s // f)].reshape(n, s // f, f, s // f, f).mean(axis=(2, 4))
    return grey.reshape(n, -1) / 255.0


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


#: Until every class has this many labels, part of each batch searches for the rarer classes.
MIN_CLASS_LABELS = 3
#: At most this share of a batch goes to that search; the rest follows the strategy.
COVERAGE_SHARE = 0.5
#: Points clustered when looking for regions with no label yet (a uniform sample of the pool).
EXPLORE_SAMPLE = 4000


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) labels per class of (N,) class indices, or of (N, C) 0/1 class sets."""
    y = np.asarray(labels)
    if y.ndim == 2:
        return (y > 0.5).sum(axis=0).astype(np.int64)
    return np.bincount(y.astype(np.int64), minlength=n_classes)[:n_classes]


def unexplored_typical(
    pool_embeddings: np.ndarray, labeled_embeddings: np.ndarray, n: int, *, seed: int = 0
) -> np.ndarray:
    """Up to n pool indices from regions of the (M, D) pool that no labeled item reached.

    The labeled (L, D) and pool points are clustered together into L + n groups; the groups holding
    no labeled item (and more than one point: not a lone outlier) are ranked by how far their most
    typical member lies from the nearest labeled item, farthest first, and each gives that member:
    a second round of the cold start, aimed at what the labels have not reached (a class nobody has
    labeled yet looks unlike every labeled item, while a part of a labeled class lies near one).
    """
    pool = np.asarray(pool_embeddings, dtype=np.float64)
    labeled = np.asarray(labeled_embeddings, dtype=np.float64).reshape(-1, pool.shape[1] if pool.ndim == 2 else 0)
    if n <= 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(pool), EXPLORE_SAMPLE, replace=False)) if len(pool) > EXPLORE_SAMPLE else None
    points = pool[sample] if sample is not None else pool
    _, assign = kmeans(np.concatenate([labeled, points]), min(len(labeled) + len(points), len(labeled) + n), rng=rng)
    reached = set(assign[: len(labeled)].tolist())
    pool_assign = assign[len(labeled) :]
    candidates = []
    for group in np.unique(pool_assign):
        members = np.flatnonzero(pool_assign == group)
        if group in reached or (len(members) < 2 and len(points) > 1):
            continue
        typical = int(members[_most_typical(points[members])])
        gap = float(np.min(np.linalg.norm(labeled - points[typical], axis=1))) if len(labeled) else 0.0
        candidates.append((-gap, -len(members), typical))
    picks = np.array([typical for _, _, typical in sorted(candidates)[:n]], dtype=np.int64)
    return sample[picks] if sample is not None else picks


def _most_typical(points: np.ndarray, neighbours: int = 20) -> int:
    """Index of the point with the highest density among (N, D) points (inverse mean distance to its neighbours)."""
    m = min(neighbours, len(points) - 1)
    if m <= 0:
        return 0
    sq = np.einsum("nd,nd->n", points, points)
    dist = np.sqrt(np.maximum(sq[:, None] - 2 * points @ points.T + sq[None, :], 0.0))
    near = np.partition(dist, m, axis=1)[:, 1 : m + 1]
    return int(np.argmin(near.mean(axis=1)))


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
    """Up to k pool indices that look for classes with fewer than ``minimum`` labels.

    A class with a label or two gets the pool items the model gives it the highest (N, C)
    probability, its likely members, as many as it lacks; each class with no label at all gets
    one item from an unexplored region (``unexplored_typical``, on the embeddings), since no
    model can point at a class it has never seen. Rarest classes first.
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


def choose_batch(
    scores: np.ndarray, k: int, *, embeddings: np.ndarray | None = None, selection: str = "topk", seed: int = 0
) -> np.ndarray:
    """The k items to label next, best first: ``topk`` by score, or ``diverse`` (needs (N, D) embeddings)."""
    if selection == "diverse" and embeddings is not None:
        return diverse_top_k(scores, embeddings, k, seed=seed)
    if selection not in {"topk", "diverse"}:
        raise ValueError(f"unknown selection {selection!r}; valid: diverse, topk")
    return top_k(scores, k)


def default_selection(model: str) -> str:
    """``diverse`` for every family (``cnn``, ``pretrained``, ``torchscript``).

    The batch is clustered on the round's ``LoopResult.embeddings``: backbone embeddings,
    or the CNN's own penultimate features. Even trained on a few dozen labels those
    features separate the confusions well enough that ten picks from ten clusters of the
    most uncertain items teach more than the ten most uncertain, which tend to be
    near-copies of one confusion.
    """
    if model not in {"cnn", "pretrained", "torchscript"}:
        raise ValueError(f"unknown model family {model!r}; valid: cnn, pretrained, torchscript")
    return "diverse"


def plan_batch(
    scores: np.ndarray,
    k: int,
    *,
    strategy: str,
    selection: str,
    probs: np.ndarray,
    counts: np.ndarray,
    embeddings: np.ndarray | None = None,
    explore: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The next k pool indices to label, first first: what the queue puts on top.

    Until every class has ``MIN_CLASS_LABELS`` labels, up to ``COVERAGE_SHARE`` of the batch
    searches for the rare ones (``coverage_picks``; ``explore`` = (pool, labeled) embeddings to
    look for unlabeled regions in); the rest is chosen by score, ``diverse`` on the (M, D)
    ``embeddings`` or ``topk``. ``random`` stays a plain random sample: it is the baseline.
    """
    if strategy == "random":
        return choose_batch(scores, k, selection="topk")
    cover = np.empty(0, dtype=np.int64)
    if (np.asarray(counts) < MIN_CLASS_LABELS).any():
        pool_emb, labeled_emb = explore if explore is not None else (None, None)
        budget = max(1, int(np.ceil(COVERAGE_SHARE * k)))
        cover = coverage_picks(
            probs, counts, min(k, budget), pool_embeddings=pool_emb, labeled_embeddings=labeled_emb, seed=seed
        )
    rest = np.setdiff1d(np.arange(len(scores)), cover)
    picked = choose_batch(
        np.asarray(scores)[rest],
        k - len(cover),
        embeddings=None if embeddings is None else np.asarray(embeddings)[rest],
        selection=selection,
        seed=seed,
    )
    return np.concatenate([cover, rest[picked]]).astype(np.int64)
