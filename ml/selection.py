"""Turning scores into choices: the top k items and storable priorities.

Scores follow one direction everywhere (higher = more worth labeling), so selection
always sorts descending; NaN scores rank last.
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
