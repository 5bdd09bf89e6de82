"""One round of the active-learning loop: train on the labels, score the unlabeled pool.

``fit_and_score`` (the ``cnn`` family, on images) and ``fit_and_score_features`` (the
``pretrained`` and ``torchscript`` families, on cached embeddings) are the entry points
that the Celery task and the simulation call; they take arrays and return arrays, and
know nothing about storage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from ml.model import predict_proba_features, predict_with_features
from ml.scoring import get_scorer, score
from ml.training import train, train_head

#: Strategies that need disagreement between MC-dropout samples, and the least S they get.
MC_STRATEGIES = frozenset({"bald", "variation_ratios"})
MIN_MC_SAMPLES = 20


@dataclass
class LoopResult:
    """What one round produced; ``probs`` (N_pool, C) are mean probabilities, ``scores`` (N_pool,),
    ``embeddings`` (N_pool, D) what diverse batch selection measures similarity on."""

    model: nn.Module
    metrics: dict
    probs: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None = None


def fit_and_score(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    pool_images: np.ndarray,
    n_classes: int,
    *,
    strategy: str,
    seed: int = 0,
    mc_samples: int = 1,
    progress: Callable[[float], None] | None = None,
) -> LoopResult:
    """Train on (N, S, S, 3) uint8 images with (N,) labels, then score (M, S, S, 3) pool images.
    (N, C) 0/1 labels train a multi-label model, scored per class (``ml.scoring.score``).

    ``strategy`` is checked before any training (``ValueError`` if unknown). The pool is
    predicted with ``mc_samples`` MC-dropout samples, at least ``MIN_MC_SAMPLES`` for
    the strategies in ``MC_STRATEGIES``. Returns the model, the training metrics, mean
    probabilities (M, C) float32 and scores (M,) float64. The pool may be empty.
    ``progress`` gets fractions 0..1: training fills 0..0.9, scoring the rest.
    """
    get_scorer(strategy)  # unknown names fail before any training
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    samples = max(mc_samples, MIN_MC_SAMPLES) if strategy in MC_STRATEGIES else mc_samples
    report = progress or (lambda _fraction: None)
    model, metrics = train(train_images, train_labels, n_classes, seed=seed, progress=lambda f: report(0.9 * f))
    probs, embeddings = predict_with_features(model, pool_images, mc_samples=samples)  # (M, C, S), (M, D)
    scores = score(strategy, probs, multi_label=np.ndim(train_labels) == 2, rng=np.random.default_rng(seed))
    report(1.0)
    return LoopResult(
        model=model,
        metrics=metrics,
        probs=probs.mean(axis=2, dtype=np.float32),
        scores=scores,
        embeddings=embeddings,
    )


def fit_and_score_features(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    pool_features: np.ndarray,
    n_classes: int,
    *,
    strategy: str,
    seed: int = 0,
    mc_samples: int = 1,
    progress: Callable[[float], None] | None = None,
) -> LoopResult:
    """Train a head on (N, D) embeddings with (N,) labels, then score (M, D) pool embeddings.
    (N, C) 0/1 labels train a multi-label head.

    Like ``fit_and_score``, but the backbone has already run (embeddings are cached), so
    a round costs a head fit plus S head passes: MC-dropout samples for BALD never touch
    the backbone. The model in the result is the head.
    """
    get_scorer(strategy)  # unknown names fail before any training
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    samples = max(mc_samples, MIN_MC_SAMPLES) if strategy in MC_STRATEGIES else mc_samples
    report = progress or (lambda _fraction: None)
    pool_features = np.asarray(pool_features, dtype=np.float32)
    reference = np.concatenate([np.asarray(train_features, dtype=np.float32), pool_features])
    head, metrics = train_head(
        train_features, train_labels, n_classes, reference=reference, seed=seed, progress=lambda f: report(0.9 * f)
    )
    probs = predict_proba_features(head, pool_features, mc_samples=samples)  # (M, C, S)
    scores = score(strategy, probs, multi_label=np.ndim(train_labels) == 2, rng=np.random.default_rng(seed))
    report(1.0)
    return LoopResult(
        model=head, metrics=metrics, probs=probs.mean(axis=2, dtype=np.float32), scores=scores, embeddings=pool_features
    )
