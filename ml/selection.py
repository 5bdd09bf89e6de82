"""Turning scores into choices: top k, diversity-aware batches, a cold start, storable priorities.

Scores follow one direction everywhere (higher = more worth labeling), so selection
always sorts descending; NaN scores rank last. Diversity and the cold start work on
embeddings (N, D): a batch should not be ten near-copies, and the first batch, with no
model yet, should cover the data's clusters (and so, usually, its classes). Until every class
has a few labels, ``plan_batch`` starts a batch with the class coverage picks of ``ml.coverage``.
"""

from __future__ import annotations

import numpy as np

from ml.clustering import kmeans, most_typical
from ml.coverage import COVERAGE_SHARE, MIN_CLASS_LABELS, coverage_picks

_MAX = np.finfo(np.float64).max


def priorities_from_scores(scores: np.ndarray) -> np.ndarray:
    """Finite priorities that sort exactly like the scores, descending.

    NaN maps to the lowest finite float (ranked last), -inf just above it, +inf to the highest
    finite float, so the values can be stored in a database column or JSON.

    Parameters
    ----------
    scores : (N,) float
        Higher = more worth labeling.

    Returns
    -------
    (N,) float64
    """
    p = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.nan_to_num(p, nan=-_MAX, posinf=_MAX, neginf=np.nextafter(-_MAX, 0.0))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k highest scores, highest first.

    Ties go to the lower index; NaN scores come last; k <= 0 gives no indices.

    Parameters
    ----------
    scores : (N,) float
    k : int

    Returns
    -------
    (min(k, N),) int64
    """
    p = priorities_from_scores(scores)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    # Stable ascending sort of the negated priorities = descending, lower index first.
    return np.argsort(-p, kind="stable")[:k].astype(np.int64)


def diverse_top_k(
    scores: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    *,
    candidates: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A batch that is uncertain and not near-copies, highest score first.

    The ``candidates`` highest-scoring items are clustered into k groups over their embeddings
    (``kmeans``); each group gives its highest-scoring item, so the single best item is always in
    the batch. With N <= k this is ``top_k``.

    Parameters
    ----------
    scores : (N,) float
    embeddings : (N, D) float
    k : int
    candidates : int, optional
        Items clustered; default 5 k.
    seed : int
        Seeds the clustering.

    Returns
    -------
    (min(k, N),) int64
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
    _, assign = kmeans(emb[pool], k, seed=seed)
    # Each cluster's first member: the pool is in descending score order.
    chosen = np.array([pool[assign == cluster][0] for cluster in np.unique(assign)], dtype=np.int64)
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
    """16x16 grey thumbnails: the cold start's fallback when no backbone is installed.

    Parameters
    ----------
    images : (N, S, S, 3) uint8

    Returns
    -------
    (N, 256) float32
        In [0, 1] (fewer columns when S < 16).
    """
    grey = images.astype(np.float32).mean(axis=3)
    n, s, _ = grey.shape
    f = max(1, s // 16)
    grey = grey[:, : f * (s // f), : f * (s // f)].reshape(n, s // f, f, s // f, f).mean(axis=(2, 4))
    return grey.reshape(n, -1) / 255.0


def cold_start(embeddings: np.ndarray, k: int, *, seed: int = 0, neighbours: int = 20) -> np.ndarray:
    """Items that cover the data before any label (TypiClust-like).

    Cluster into k groups (``kmeans``); from each group take its most typical item
    (``most_typical``, on a sample of 2,000 in a larger group). Larger groups come first, so a
    shorter prefix still covers the bulk of the data.

    Parameters
    ----------
    embeddings : (N, D) float
    k : int
    seed : int
    neighbours : int
        Neighbours that measure density.

    Returns
    -------
    (min(k, N),) int64
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"expected embeddings of shape (N, D), got {emb.shape}")
    k = min(k, len(emb))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    _, assign = kmeans(emb, k, seed=seed)
    picks: list[tuple[int, int]] = []
    for cluster in np.unique(assign):
        members = np.flatnonzero(assign == cluster)
        # Density within a very large group is estimated on a sample of it.
        members_eval = np.sort(rng.choice(members, 2000, replace=False)) if len(members) > 2000 else members
        best = members_eval[most_typical(emb[members_eval], neighbours)]
        picks.append((-len(members), int(best)))
    chosen = [idx for _, idx in sorted(picks)]
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(emb)), chosen)
        chosen += rng.permutation(rest)[: k - len(chosen)].tolist()
    return np.array(chosen, dtype=np.int64)


def priorities_with_batch(scores: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Priorities that put the batch first, in its order, then everything else by score.

    Parameters
    ----------
    scores : (N,) float
    batch : (K,) int
        Indices into ``scores``, first first.

    Returns
    -------
    (N,) float64
        Ranks, N for the first down to 1: finite, and they sort the queue in that order (the raw
        scores are stored separately).
    """
    p = priorities_from_scores(scores)
    batch = np.asarray(batch, dtype=np.int64)
    rest = np.argsort(-p, kind="stable")
    rest = rest[~np.isin(rest, batch)]
    order = np.concatenate([batch, rest])
    out = np.empty(len(p), dtype=np.float64)
    out[order] = np.arange(len(p), 0, -1, dtype=np.float64)
    return out


def choose_batch(
    scores: np.ndarray, k: int, *, embeddings: np.ndarray | None = None, selection: str = "topk", seed: int = 0
) -> np.ndarray:
    """The k items to label next, best first.

    ``topk`` by score, or ``diverse`` on ``embeddings`` (``topk`` without them); another
    ``selection`` raises ``ValueError`` naming the valid ones.

    Parameters
    ----------
    scores : (N,) float
    k : int
    embeddings : (N, D) float, optional
    selection : {"topk", "diverse"}
    seed : int
        Seeds the clustering of ``diverse``.

    Returns
    -------
    (min(k, N),) int64
    """
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
    """The next k pool items to label, first first: what the queue puts on top.

    Until every class has ``MIN_CLASS_LABELS`` labels, up to ``COVERAGE_SHARE`` of the batch
    searches for the rare ones (``coverage_picks``); the rest is chosen by score (``choose_batch``).
    ``random`` stays a plain random sample: it is the baseline.

    Parameters
    ----------
    scores : (M,) float
    k : int
    strategy : str
        The scorer's name (``ml.scoring.SCORERS``).
    selection : {"topk", "diverse"}
    probs : (M, C) float
        Mean probabilities on the pool.
    counts : (C,) int
        Labels per class.
    embeddings : (M, D) float, optional
        What ``diverse`` clusters.
    explore : ((M, D), (L, D)) float, optional
        Pool and labeled embeddings to look for unlabeled regions in.
    seed : int

    Returns
    -------
    (min(k, M),) int64
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
