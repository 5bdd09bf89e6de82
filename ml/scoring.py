"""Acquisition scores: probabilities in, one score per item out, higher = more worth labeling.

Every scorer takes ``probs`` of shape (N, C, S) (items, classes, MC samples; a 2-D
(N, C) array counts as S = 1) and returns (N,) float64. All share one call signature,
``scorer(probs, rng=None)``, and ignore keywords they do not use.

Multi-label models give an independent (sigmoid) probability per class; ``score`` then
treats each class as a yes/no question, scores it with the same scorer, and averages
over the classes: an image is worth labeling when the model is unsure about its classes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _as_ncs(probs: np.ndarray) -> np.ndarray:
    """Probabilities as a float64 (N, C, S) array; (N, C) becomes (N, C, 1)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2:
        p = p[:, :, None]
    if p.ndim != 3 or p.shape[1] < 1 or p.shape[2] < 1:
        raise ValueError(f"expected probabilities of shape (N, C, S) or (N, C) with C, S >= 1, got {p.shape}")
    return p


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """Natural-log entropy along ``axis``, with 0 log 0 = 0."""
    return -np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=axis)


def least_confidence(probs: np.ndarray, **_: object) -> np.ndarray:
    """1 - max_c p(c), p the mean over samples; (N, C, S) -> (N,), in [0, 1 - 1/C]."""
    return 1.0 - _as_ncs(probs).mean(axis=2).max(axis=1)


def margin(probs: np.ndarray, **_: object) -> np.ndarray:
    """1 - (p1 - p2), the top two mean probabilities; (N, C, S) -> (N,), in [0, 1].

    Higher means a smaller margin. With a single class there is no second choice and
    every score is 0.
    """
    mean = _as_ncs(probs).mean(axis=2)
    n, c = mean.shape
    if c < 2:
        return np.zeros(n)
    top2 = np.partition(mean, c - 2, axis=1)[:, c - 2 :]  # (N, 2): second, first
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(probs: np.ndarray, **_: object) -> np.ndarray:
    """Entropy (nats) of the mean probabilities; (N, C, S) -> (N,), in [0, log C]."""
    return _entropy(_as_ncs(probs).mean(axis=2), axis=1)


def bald(probs: np.ndarray, **_: object) -> np.ndarray:
    """BALD mutual information: H(mean_s p_s) - mean_s H(p_s); (N, C, S) -> (N,), >= 0.

    Measures disagreement between MC samples, so it is 0 when S == 1. The float32
    probabilities the models give are scored in float32 with torch (vectorised, about 3x
    faster than NumPy in float64 on N x C x S values; the scores agree to about 1e-6).
    """
    raw = np.asarray(probs)
    if raw.dtype == np.float32 and raw.ndim == 3 and raw.shape[1] >= 1 and raw.shape[2] > 1:
        x = torch.from_numpy(np.ascontiguousarray(raw))
        with torch.inference_mode():
            info = _entropy_torch(x.mean(dim=2), dim=1) - _entropy_torch(x, dim=1).mean(dim=1)
            return info.clamp_min(0.0).double().numpy()
    p = _as_ncs(probs)
    if p.shape[2] == 1:
        return np.zeros(p.shape[0])
    info = _entropy(p.mean(axis=2), axis=1) - _entropy(p, axis=1).mean(axis=1)
    return np.maximum(info, 0.0)


def _entropy_torch(p: torch.Tensor, dim: int) -> torch.Tensor:
    """``_entropy`` for a tensor: natural-log entropy along ``dim``, 0 log 0 = 0."""
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dim)


def variation_ratios(probs: np.ndarray, **_: object) -> np.ndarray:
    """1 - (samples whose argmax is the modal class) / S; (N, C, S) -> (N,), in [0, 1 - 1/S].

    0 when S == 1; ties within a sample go to the lower class index.
    """
    p = _as_ncs(probs)
    votes = p.argmax(axis=1)  # (N, S)
    counts = (votes[:, :, None] == np.arange(p.shape[1])).sum(axis=1)  # (N, C)
    return np.asarray(1.0 - counts.max(axis=1, initial=0) / p.shape[2], dtype=np.float64)


def random(probs: np.ndarray, *, rng: np.random.Generator | None = None, **_: object) -> np.ndarray:
    """Uniform [0, 1) scores, the baseline; (N, C, S) -> (N,). Pass ``rng`` for repeatability."""
    n = _as_ncs(probs).shape[0]
    return (rng if rng is not None else np.random.default_rng()).random((n,))


SCORERS: dict[str, Callable[..., np.ndarray]] = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
    "bald": bald,
    "variation_ratios": variation_ratios,
    "random": random,
}


def get_scorer(name: str) -> Callable[..., np.ndarray]:
    """The scorer registered as ``name``; ``ValueError`` naming the valid names if none is."""
    try:
        return SCORERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scoring strategy {name!r}; valid: {', '.join(sorted(SCORERS))}") from None


def per_class(scorer: Callable[..., np.ndarray], probs: np.ndarray, **kwargs: object) -> np.ndarray:
    """Score (N, C, S) independent per-class probabilities: each class as a two-way (yes, no)
    question scored by ``scorer``, then the mean over the C classes; (N,) float64."""
    p = _as_ncs(probs)
    n, c, s = p.shape
    binary = np.stack([p, 1.0 - p], axis=2).reshape(n * c, 2, s)
    return np.asarray(scorer(binary, **kwargs), dtype=np.float64).reshape(n, c).mean(axis=1)


def score(
    name: str, probs: np.ndarray, *, multi_label: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """(N,) float64 scores of strategy ``name`` for (N, C, S) probabilities: softmax ones, or with
    ``multi_label`` sigmoid ones scored per class and combined (``per_class``)."""
    scorer = get_scorer(name)
    if multi_label and scorer is not random:
        return per_class(scorer, probs, rng=rng)
    return np.asarray(scorer(probs, rng=rng), dtype=np.float64)
