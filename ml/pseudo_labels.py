"""Self-training: which unlabeled items each cross-fit member learns from in the next round.

After a round, each member of a ``CrossFit`` (the served model and every fold model) predicts a
sample of the pool; the items it is confident about become its pseudo-labels for the next round
(``CrossFitState``), which lets a few dozen labels go much further. A member only ever sees its
own earlier predictions, so a fold model never learns, even indirectly, from the labels it is
held out on. One item in ``AUDIT_EVERY`` is never pseudo-labeled, which keeps an uncontaminated
view of the served model's accuracy.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ml.calibration import temperature_scale
from ml.crossfit import CrossFit, CrossFitState, PseudoLabels, stable_folds
from ml.models.predict import predict_proba, predict_proba_features

#: A member pseudo-labels an unlabeled item when its calibrated confidence is at least this.
PSEUDO_THRESHOLD = 0.9
#: At most this many unlabeled items (a uniform sample) are considered for pseudo-labels per round.
PSEUDO_CANDIDATES = 4096
#: One unlabeled item in AUDIT_EVERY (a fixed hash of its key) is never pseudo-labeled, so the served
#: model's calibrated confidence on those is an uncontaminated view of its accuracy on unseen items.
AUDIT_EVERY = 10


def audit_items(keys: np.ndarray) -> np.ndarray:
    """The items kept out of pseudo-labels: one in ``AUDIT_EVERY``, by a hash of the key.

    Parameters
    ----------
    keys : (N,) int

    Returns
    -------
    (N,) bool
    """
    return stable_folds(keys, AUDIT_EVERY, salt=1) == 0


def next_state(
    fit: CrossFit,
    pool_inputs: np.ndarray,
    pool_keys: np.ndarray,
    *,
    temperature: float,
    features: bool = False,
    seed: int = 0,
    threshold: float = PSEUDO_THRESHOLD,
) -> CrossFitState:
    """Each member's pseudo-labels for the next round.

    The pool items a member predicts, calibrated, at ``threshold`` or above, from a uniform
    sample of at most ``PSEUDO_CANDIDATES``; never the audit items. ``fit.model`` is already
    calibrated (the temperature folded in); the fold models are calibrated with ``temperature``.

    Parameters
    ----------
    fit : CrossFit
    pool_inputs : (M, ...) images or embeddings
    pool_keys : (M,) int
    temperature : float
    features : bool
    seed : int
    threshold : float

    Returns
    -------
    CrossFitState
        With no members for a multi-label model or an empty pool.
    """
    pool_keys = np.asarray(pool_keys, dtype=np.int64)
    folds = len(fit.fold_models)
    if len(pool_keys) == 0 or fit.model is None or getattr(fit.model, "arch", {}).get("multi_label"):
        return CrossFitState(folds=folds, members=[])
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(pool_keys), min(len(pool_keys), PSEUDO_CANDIDATES), replace=False))
    sample = sample[~audit_items(pool_keys[sample])]
    subset = np.asarray(pool_inputs)[sample]
    predict = predict_proba_features if features else predict_proba

    def pick(model: nn.Module | None, calibrate: bool) -> PseudoLabels:
        if model is None or len(sample) == 0:
            return PseudoLabels()
        probs = predict(model, subset).mean(axis=2)
        probs = temperature_scale(probs, temperature) if calibrate else probs
        confident = probs.max(axis=1) >= threshold
        return PseudoLabels(pool_keys[sample[confident]], probs.argmax(axis=1)[confident].astype(np.int64))

    members = [pick(fit.model, calibrate=False)] + [pick(model, calibrate=True) for model in fit.fold_models]
    return CrossFitState(folds=folds, members=members)
