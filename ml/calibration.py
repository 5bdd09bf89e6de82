"""Calibrated probabilities and an honest accuracy estimate, from out-of-fold predictions.

Every labeled item has an out-of-fold prediction (``ml.crossfit``): the probabilities of a
model that never saw its label. A single temperature fitted on those (temperature scaling,
Guo et al. 2017) makes the served model's probabilities mean what they say.

The accuracy estimate is for an item drawn from the whole dataset, not for the labeled items
alone: active learning chose those because they are hard, so their out-of-fold accuracy alone
reads 10 to 20 points low. Labeled items count as right or wrong out of fold; unlabeled ones
by average thresholded confidence (ATC, Garg et al. 2022): the confidence threshold above which
the out-of-fold share of items equals the out-of-fold accuracy, applied to the served model's
confidence on unlabeled items. It comes with a 95% Wilson interval on the labels it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

#: Temperatures are searched in [1 / MAX_TEMPERATURE, MAX_TEMPERATURE].
MAX_TEMPERATURE = 20.0
_EPS = 1e-7


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, _EPS, 1.0))


def temperature_scale(probs: np.ndarray, temperature: float, *, multi_label: bool = False) -> np.ndarray:
    """Probabilities as a model whose logits were divided by ``temperature`` would give them.

    Softmax rows: ``softmax(log p / T)`` (log p differs from the logits by a constant per row, which
    the softmax ignores). Multi-label: each class's sigmoid, ``sigmoid(logit(p) / T)``.

    Parameters
    ----------
    probs : (N, C) float
    temperature : float
    multi_label : bool

    Returns
    -------
    (N, C) float64
    """
    p = np.asarray(probs, dtype=np.float64)
    if multi_label:
        logits = _log(p) - _log(1.0 - p)
        return 1.0 / (1.0 + np.exp(-logits / temperature))
    z = _log(p) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(probs: np.ndarray, labels: np.ndarray, multi_label: bool) -> float:
    if multi_label:
        y = labels > 0.5
        return float(-np.mean(np.where(y, _log(probs), _log(1.0 - probs))))
    return float(-np.mean(_log(probs[np.arange(len(labels)), labels])))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, *, multi_label: bool = False) -> float:
    """The temperature minimising the negative log-likelihood of the labels under rescaled probabilities.

    T > 1 softens an overconfident model, T < 1 sharpens a timid one.

    Parameters
    ----------
    probs : (N, C) float
        Out-of-fold probabilities.
    labels : (N,) int, or (N, C) 0/1 with ``multi_label``
    multi_label : bool

    Returns
    -------
    float
        T in [1 / MAX_TEMPERATURE, MAX_TEMPERATURE]; 1.0 when there is nothing to fit.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if len(p) < 2 or (not multi_label and len(np.unique(y)) < 2):
        return 1.0
    y = y if multi_label else y.astype(np.int64)

    def loss(log_t: float) -> float:
        return _nll(temperature_scale(p, math.exp(log_t), multi_label=multi_label), y, multi_label)

    bound = math.log(MAX_TEMPERATURE)
    found = minimize_scalar(loss, bounds=(-bound, bound), method="bounded", options={"xatol": 1e-3})
    return float(math.exp(found.x)) if found.success else 1.0


def correct(probs: np.ndarray, labels: np.ndarray, *, multi_label: bool = False) -> np.ndarray:
    """Whether each prediction is right (multi-label: every class decided right at 0.5).

    Parameters
    ----------
    probs : (N, C) float
    labels : (N,) int or (N, C) 0/1
    multi_label : bool

    Returns
    -------
    (N,) bool
    """
    p = np.asarray(probs)
    y = np.asarray(labels)
    if multi_label:
        return ((p >= 0.5) == (y > 0.5)).all(axis=1)
    return p.argmax(axis=1) == y


def expected_correct(probs: np.ndarray, *, multi_label: bool = False) -> np.ndarray:
    """The probability that each prediction is right, if the probabilities are calibrated.

    The top probability, or for multi-label the product over classes of the chosen side's.

    Parameters
    ----------
    probs : (N, C) float
    multi_label : bool

    Returns
    -------
    (N,) float64
    """
    p = np.asarray(probs, dtype=np.float64)
    if multi_label:
        return np.prod(np.maximum(p, 1.0 - p), axis=1)
    return p.max(axis=1)


def wilson_interval(p: float, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``p`` observed on ``n`` trials (0..1 for n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(p, 0.0), 1.0)
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class AccuracyEstimate:
    """``value`` with its 95% interval [low, high] resting on ``n_labels`` labels; ``cv`` is the plain
    out-of-fold accuracy of the labeled items, ``temperature`` the calibration it used."""

    value: float
    low: float
    high: float
    n_labels: int
    cv: float
    temperature: float

    def as_metrics(self) -> dict:
        """The figures as a version stores them; no estimate (``None``) when no label was predicted out of fold."""
        known = self.n_labels > 0
        return {
            "val_accuracy": round(self.value, 4) if known else None,
            "val_accuracy_low": round(self.low, 4) if known else None,
            "val_accuracy_high": round(self.high, 4) if known else None,
            "val_n": self.n_labels,
            "cv_accuracy": round(self.cv, 4) if known else None,
            "temperature": round(self.temperature, 4),
        }


def atc_threshold(confidence: np.ndarray, is_correct: np.ndarray) -> float:
    """The ATC threshold: the confidence below which the share of confidences equals the error rate.

    Parameters
    ----------
    confidence : (N,) float
        Out-of-fold confidences (``expected_correct``).
    is_correct : (N,) bool

    Returns
    -------
    float
    """
    return float(np.quantile(np.asarray(confidence, dtype=np.float64), 1.0 - float(np.mean(is_correct))))


def accuracy_estimate(
    oof_probs: np.ndarray,
    labels: np.ndarray,
    pool_probs: np.ndarray,
    *,
    temperature: float,
    n_pool: int | None = None,
    multi_label: bool = False,
) -> AccuracyEstimate:
    """The served model's expected accuracy on an item of the whole dataset that it was not trained on.

    Labeled items count as right or wrong out of fold; unlabeled ones as the share above the ATC
    threshold, found on the out-of-fold probabilities calibrated with ``temperature``.

    Parameters
    ----------
    oof_probs : (N, C) float
        Out-of-fold probabilities of the N labeled items.
    labels : (N,) int or (N, C) 0/1
    pool_probs : (M, C) float
        The served model's calibrated probabilities on unlabeled items (all, or a uniform sample).
    temperature : float
    n_pool : int, optional
        How many unlabeled items there are; default M.
    multi_label : bool

    Returns
    -------
    AccuracyEstimate
        With a Wilson interval resting on the N labels.
    """
    n = len(labels)
    ok = correct(oof_probs, labels, multi_label=multi_label) if n else np.zeros(0, dtype=bool)
    cv = float(ok.mean()) if n else 0.0
    m = len(pool_probs)
    total_pool = m if n_pool is None else max(n_pool, m)
    if n and m:
        calibrated = temperature_scale(oof_probs, temperature, multi_label=multi_label)
        threshold = atc_threshold(expected_correct(calibrated, multi_label=multi_label), ok)
        pool_rate = float((expected_correct(pool_probs, multi_label=multi_label) >= threshold).mean())
    else:
        pool_rate, total_pool = 0.0, 0
    value = (float(ok.sum()) + pool_rate * total_pool) / (n + total_pool) if n + total_pool else 0.0
    low, high = wilson_interval(value, n)
    return AccuracyEstimate(value=value, low=low, high=high, n_labels=n, cv=cv, temperature=temperature)
