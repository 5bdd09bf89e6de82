"""One round of the active-learning loop: train on the labels, calibrate, estimate, score the pool.

``fit_and_score`` (the ``cnn`` family, on images) and ``fit_and_score_features`` (the
``pretrained`` and ``torchscript`` families, on cached embeddings) are the entry points that
the Celery task and the simulation call; they take arrays and return arrays, and know nothing
about storage. A round cross-fits the served model with fold models (``ml.crossfit``), fits a
temperature on the out-of-fold predictions and folds it into the served model, estimates its
accuracy (``ml.calibration``), and scores the pool with the calibrated model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ml.calibration import accuracy_estimate, fit_temperature
from ml.crossfit import CrossFitState, cross_fit, fold_temperature_into, oof_complete
from ml.models.predict import predict_proba_features, predict_with_features
from ml.pseudo_labels import audit_items, next_state
from ml.scoring import get_scorer, score

#: Strategies that need disagreement between MC-dropout samples, and the least S they get.
MC_STRATEGIES = frozenset({"bald", "variation_ratios"})
MIN_MC_SAMPLES = 20


@dataclass
class LoopResult:
    """What one round produced: ``probs`` (N_pool, C) calibrated mean probabilities, ``scores``
    (N_pool,), ``embeddings`` (N_pool, D) what diverse batch selection measures similarity on,
    ``oof_probs`` (N_labeled, C) out-of-fold probabilities (NaN rows: none), ``state`` what the
    next round starts from, ``labeled_embeddings`` (N_labeled, D) the labeled items in the space
    of ``embeddings``."""

    model: nn.Module
    metrics: dict
    probs: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None = None
    oof_probs: np.ndarray | None = None
    state: CrossFitState | None = None
    labeled_embeddings: np.ndarray | None = None


def _round(
    train_x: np.ndarray,
    train_labels: np.ndarray,
    pool_x: np.ndarray,
    n_classes: int,
    *,
    features: bool,
    strategy: str,
    seed: int,
    mc_samples: int,
    progress: Callable[[float], None] | None,
    keys: np.ndarray | None,
    pool_keys: np.ndarray | None,
    previous: CrossFitState | None,
    reference: np.ndarray | None,
    n_pool: int | None,
    allow_flips: bool,
    device: torch.device | None,
    pseudo_x: np.ndarray | None = None,
    pseudo_keys: np.ndarray | None = None,
) -> LoopResult:
    get_scorer(strategy)  # unknown names fail before any training
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    started = time.perf_counter()
    samples = max(mc_samples, MIN_MC_SAMPLES) if strategy in MC_STRATEGIES else mc_samples
    report = progress or (lambda _fraction: None)
    multi_label = np.ndim(train_labels) == 2
    n, m = len(train_labels), len(pool_x)
    keys = np.arange(n, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
    pool_keys = np.arange(n, n + m, dtype=np.int64) if pool_keys is None else np.asarray(pool_keys, dtype=np.int64)
    if pseudo_x is None:
        pseudo_x, pseudo_keys = pool_x, pool_keys
    pseudo_keys = np.asarray(pseudo_keys, dtype=np.int64)
    fit = cross_fit(
        train_x,
        train_labels,
        keys,
        n_classes,
        pool_inputs=pseudo_x,
        pool_keys=pseudo_keys,
        previous=previous,
        features=features,
        reference=reference,
        seed=seed,
        allow_flips=allow_flips,
        device=device,
        progress=lambda f: report(0.85 * f),
    )
    trained = time.perf_counter()
    labels = np.asarray(train_labels)
    known = oof_complete(fit.oof_probs)
    temperature = fit_temperature(fit.oof_probs[known], labels[known], multi_label=multi_label)
    assert fit.model is not None  # cross_fit serves a model unless told not to
    model = fold_temperature_into(fit.model, temperature)
    if device is not None and device.type != "cpu":
        model.to(device)  # score the pool where it trained; back to the CPU for saving below
    embeddings: np.ndarray | None
    labeled_embeddings: np.ndarray | None
    if features:
        probs = predict_proba_features(model, pool_x, mc_samples=samples)  # (M, C, S)
        embeddings = np.asarray(pool_x, dtype=np.float32)
        labeled_embeddings = np.asarray(train_x, dtype=np.float32)
    else:
        probs, embeddings = predict_with_features(model, pool_x, mc_samples=samples)  # (M, C, S), (M, D)
        labeled_embeddings = predict_with_features(model, train_x)[1]
    model.cpu()
    scores = score(strategy, probs, multi_label=multi_label, rng=np.random.default_rng(seed))
    mean = probs.mean(axis=2, dtype=np.float32)
    audit = audit_items(pool_keys)
    estimate = accuracy_estimate(
        fit.oof_probs[known],
        labels[known],
        mean[audit] if audit.any() else mean,
        temperature=temperature,
        n_pool=n_pool if n_pool is not None else m,
        multi_label=multi_label,
    )
    state = next_state(fit, pseudo_x, pseudo_keys, temperature=temperature, features=features, seed=seed)
    state.oof_keys, state.oof_probs = keys, fit.oof_probs
    report(1.0)
    metrics = {
        **estimate.as_metrics(),
        "n_train": n,
        "steps": fit.steps,
        "n_pseudo": fit.n_pseudo[0] if fit.n_pseudo else 0,
        "train_seconds": round(trained - started, 3),
        "round_seconds": round(time.perf_counter() - started, 3),
    }
    return LoopResult(
        model=model,
        metrics=metrics,
        probs=mean,
        scores=scores,
        embeddings=embeddings,
        oof_probs=fit.oof_probs,
        state=state,
        labeled_embeddings=labeled_embeddings,
    )


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
    keys: np.ndarray | None = None,
    pool_keys: np.ndarray | None = None,
    previous: CrossFitState | None = None,
    n_pool: int | None = None,
    allow_flips: bool = False,
    device: torch.device | None = None,
    pseudo_pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> LoopResult:
    """One round on images: cross-fit, calibrate, estimate, score the pool.

    Parameters
    ----------
    train_images : (N, S, S, 3) uint8
    train_labels : (N,) int, or (N, C) 0/1
        (N, C) class sets train a multi-label model, scored per class (``ml.scoring.score``).
    pool_images : (M, S, S, 3) uint8
        May be empty.
    n_classes : int
    strategy : str
        A scorer of ``ml.scoring.SCORERS``; checked before any training (``ValueError``).
    seed : int
    mc_samples : int
        MC-dropout samples S for the pool, at least ``MIN_MC_SAMPLES`` for ``MC_STRATEGIES``.
    progress : callable, optional
        Gets fractions 0..1.
    keys : (N,) int, optional
    pool_keys : (M,) int, optional
        Identify items across rounds (folds, pseudo-labels); default: positions.
    previous : CrossFitState, optional
        The last round's ``LoopResult.state``.
    n_pool : int, optional
        How many unlabeled items the pool is a uniform sample of; default M.
    allow_flips : bool
    device : torch.device, optional
    pseudo_pool : ((P, S, S, 3) uint8, (P,) int), optional
        The images and keys pseudo-labels are drawn from, when not the pool.

    Returns
    -------
    LoopResult
        ``probs`` (M, C), ``scores`` (M,), ``embeddings`` (M, 128), ``oof_probs`` (N, C), ...
    """
    return _round(
        train_images,
        train_labels,
        pool_images,
        n_classes,
        features=False,
        strategy=strategy,
        seed=seed,
        mc_samples=mc_samples,
        progress=progress,
        keys=keys,
        pool_keys=pool_keys,
        previous=previous,
        reference=None,
        n_pool=n_pool,
        allow_flips=allow_flips,
        device=device,
        pseudo_x=None if pseudo_pool is None else pseudo_pool[0],
        pseudo_keys=None if pseudo_pool is None else pseudo_pool[1],
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
    keys: np.ndarray | None = None,
    pool_keys: np.ndarray | None = None,
    previous: CrossFitState | None = None,
    n_pool: int | None = None,
    device: torch.device | None = None,
    pseudo_pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> LoopResult:
    """One round on cached embeddings: heads instead of CNNs, otherwise ``fit_and_score``.

    The backbone has already run, so MC-dropout samples for BALD never touch it; the model in
    the result is the head.

    Parameters
    ----------
    train_features : (N, D) float32
    train_labels : (N,) int, or (N, C) 0/1
    pool_features : (M, D) float32
    n_classes : int
    strategy, seed, mc_samples, progress, keys, pool_keys, previous, n_pool, device
        As for ``fit_and_score``.
    pseudo_pool : ((P, D) float32, (P,) int), optional

    Returns
    -------
    LoopResult
        ``probs`` (M, C), ``scores`` (M,), ``embeddings`` (M, D) the pool features, ...
    """
    pool = np.asarray(pool_features, dtype=np.float32)
    reference = np.concatenate([np.asarray(train_features, dtype=np.float32), pool])
    return _round(
        train_features,
        train_labels,
        pool,
        n_classes,
        features=True,
        strategy=strategy,
        seed=seed,
        mc_samples=mc_samples,
        progress=progress,
        keys=keys,
        pool_keys=pool_keys,
        previous=previous,
        reference=reference,
        n_pool=n_pool,
        allow_flips=False,
        device=device,
        pseudo_x=None if pseudo_pool is None else np.asarray(pseudo_pool[0], dtype=np.float32),
        pseudo_keys=None if pseudo_pool is None else pseudo_pool[1],
    )
