"""Where a model goes wrong: the confusion of its out-of-fold predictions with the labels they were
held out from, and each class's precision and recall (scikit-learn's metrics).

The out-of-fold predictions are the ones the accuracy estimate rests on (``ml.calibration``): each
labeled item predicted by a fold model that never saw its label, so the figures are as honest as the
estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def confusion_summary(oof_probs: np.ndarray, labels: np.ndarray, *, multi_label: bool = False) -> dict[str, Any]:
    """The confusion and per-class figures of N out-of-fold predictions over C classes.

    Parameters
    ----------
    oof_probs : (N, C) float
        Out-of-fold probabilities; rows with NaN (no fold model could predict them) are left out.
    labels : (N,) int class positions, or (N, C) 0/1 on multi-label targets
    multi_label : bool
        Each class on its own: a class is predicted at probability 0.5 or more.

    Returns
    -------
    dict
        ``n`` (items counted), ``cells`` (single-label: ``[given, predicted, count]`` for each
        non-zero cell of the C x C matrix, given class first; multi-label: ``[class, tp, fp, fn]``
        per class), ``precision``, ``recall`` (C,) each (``None`` for a class nothing was predicted
        as, or with no item given it), and ``support`` (C,), the items given each class.
    """
    probs = np.asarray(oof_probs, dtype=np.float64)
    known = ~np.isnan(probs).any(axis=1) if probs.size else np.zeros(len(probs), dtype=bool)
    probs, given = probs[known], np.asarray(labels)[known]
    n_classes = probs.shape[1] if probs.ndim == 2 else 0
    classes = np.arange(n_classes)
    if multi_label:
        truth, predicted = given.astype(bool), probs >= 0.5
        tp = (truth & predicted).sum(axis=0)
        fp = (~truth & predicted).sum(axis=0)
        fn = (truth & ~predicted).sum(axis=0)
        cells = [[int(c), int(tp[c]), int(fp[c]), int(fn[c])] for c in classes]
        support = truth.sum(axis=0)
        predicted_n = predicted.sum(axis=0)
        precision = np.divide(tp, predicted_n, out=np.zeros(n_classes), where=predicted_n > 0)
        recall = np.divide(tp, support, out=np.zeros(n_classes), where=support > 0)
    elif len(probs):
        predicted = probs.argmax(axis=1)
        matrix = confusion_matrix(given, predicted, labels=classes)
        cells = [[int(i), int(j), int(matrix[i, j])] for i, j in zip(*np.nonzero(matrix), strict=True)]
        precision, recall, _, support = precision_recall_fscore_support(
            given, predicted, labels=classes, zero_division=0
        )
        predicted_n = matrix.sum(axis=0)
    else:  # no labeled item has an out-of-fold prediction yet
        cells, precision, recall = [], np.zeros(n_classes), np.zeros(n_classes)
        support = predicted_n = np.zeros(n_classes, dtype=np.int64)
    return {
        "n": len(probs),
        "cells": cells,
        "precision": [round(float(p), 4) if predicted_n[c] else None for c, p in enumerate(precision)],
        "recall": [round(float(r), 4) if support[c] else None for c, r in enumerate(recall)],
        "support": [int(s) for s in support],
    }
