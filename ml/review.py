"""Likely label errors: out-of-fold predicted probabilities, ranked by cleanlab's label quality.

Every labeled item is predicted by a model that never saw its (possibly wrong) label: the fold
models of ``ml.crossfit``, which every training run trains anyway (the workers' scan reads the
latest version's), or which ``scan_label_issues`` trains on its own. cleanlab then ranks the items.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@contextmanager
def _quiet_cleanlab() -> Iterator[None]:
    """Hide cleanlab's warning that a class with few labels may not have all its issues flagged:
    small classes are the rule early in a project (the dashboard names them), and the warning,
    once per class and scan, would bury the worker's own messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="May not flag all label issues", category=UserWarning)
        yield


@dataclass
class LabelIssues:
    """``ranked``: indices of items flagged as likely mislabeled, worst first; ``quality`` (N,) in [0, 1]."""

    ranked: np.ndarray
    quality: np.ndarray
    predicted: np.ndarray  # (N,) the model's class per item; (N, C) bool on multi-label targets


def find_multilabel_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Rank given class sets against out-of-fold sigmoid probabilities (cleanlab's multi-label methods).

    Classes nobody used, or that every item has, are dropped first: there is nothing to judge in
    them, and cleanlab needs both values of each class.

    Parameters
    ----------
    labels : (N, C) 0/1
    probs : (N, C) float
        Out-of-fold sigmoid probabilities.

    Returns
    -------
    LabelIssues
        ``predicted`` (N, C) bool: the model's set (probability >= 0.5).
    """
    from cleanlab.multilabel_classification import get_label_quality_scores
    from cleanlab.multilabel_classification.filter import find_label_issues as cl_find

    labels = np.asarray(labels) > 0
    probs = np.asarray(probs, dtype=np.float64)
    predicted = probs >= 0.5
    counts = labels.sum(axis=0) if len(labels) else np.zeros(labels.shape[1:], dtype=np.int64)
    judged = np.flatnonzero((counts > 0) & (counts < len(labels)))
    if len(labels) == 0 or len(judged) < 1:
        return LabelIssues(np.zeros(0, dtype=np.int64), np.ones(len(labels)), predicted)
    given = [np.flatnonzero(row).tolist() for row in labels[:, judged]]
    sub = np.clip(probs[:, judged], 1e-6, 1 - 1e-6)
    if len(judged) == 1:  # cleanlab's multi-label methods want two columns: add the complement
        given = [[0] if row else [1] for row in labels[:, judged[0]]]
        sub = np.column_stack([sub[:, 0], 1 - sub[:, 0]])
    with _quiet_cleanlab():
        quality = get_label_quality_scores(given, sub)
        ranked = cl_find(given, sub, return_indices_ranked_by="self_confidence", n_jobs=1)
    return LabelIssues(np.asarray(ranked, dtype=np.int64), np.asarray(quality, dtype=np.float64), predicted)


def find_label_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Rank given labels against out-of-fold probabilities with cleanlab.

    Classes with no labeled item are dropped from the columns first (cleanlab expects every
    class to be present), and the probabilities renormalised.

    Parameters
    ----------
    labels : (N,) int
    probs : (N, C) float
        Out-of-fold softmax probabilities.

    Returns
    -------
    LabelIssues
        ``ranked`` (K,) worst first, ``quality`` (N,), ``predicted`` (N,).
    """
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    present = np.unique(labels)
    if len(labels) == 0 or len(present) < 2:
        return LabelIssues(np.zeros(0, dtype=np.int64), np.ones(len(labels)), predicted)
    remap = np.full(probs.shape[1], -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    sub = probs[:, present]
    sub = np.clip(sub, 1e-12, None)
    sub = sub / sub.sum(axis=1, keepdims=True)
    dense = remap[labels]
    # n_jobs=1: no process pool. Forking a process that runs threads (a Celery worker, torch) can
    # deadlock the children, and the work here is small.
    with _quiet_cleanlab():
        quality = get_label_quality_scores(dense, sub)
        ranked = cl_find(dense, sub, return_indices_ranked_by="self_confidence", n_jobs=1)
    return LabelIssues(np.asarray(ranked, dtype=np.int64), np.asarray(quality, dtype=np.float64), predicted)


#: Below this many labeled items a scan looks only for disagreements: fold models trained on
#: fewer cannot tell a wrong label from a hard item.
SCAN_MIN_LABELS = 50


def scan_label_issues(
    inputs: np.ndarray, labels: np.ndarray, n_classes: int, *, features: bool, folds: int = 5, seed: int = 0
) -> tuple[LabelIssues, np.ndarray]:
    """Likely label errors, with out-of-fold probabilities from the fold models ``ml.crossfit`` trains.

    Items no fold model could predict (too few labels) get uniform probabilities.

    Parameters
    ----------
    inputs : (N, S, S, 3) uint8, or (N, D) float32 with ``features``
        Images for the ``cnn`` family, cached embeddings for the backbone families.
    labels : (N,) int, or (N, C) 0/1 on multi-label projects
    n_classes : int
    features : bool
    folds : int
    seed : int

    Returns
    -------
    issues : LabelIssues
    probs : (N, C) float64
        The out-of-fold probabilities.
    """
    from ml.crossfit import cross_fit

    keys = np.arange(len(labels), dtype=np.int64)
    fit = cross_fit(inputs, labels, keys, n_classes, features=features, folds=folds, seed=seed, serve=False)
    fill = 0.5 if np.asarray(labels).ndim == 2 else 1.0 / max(1, n_classes)
    probs = np.nan_to_num(fit.oof_probs.astype(np.float64), nan=fill)
    if np.asarray(labels).ndim == 2:
        return find_multilabel_issues(labels, probs), probs
    return find_label_issues(labels, probs), probs
