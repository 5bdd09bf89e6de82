"""The active-learning simulation: the true labels play the annotator.

Every round calls the very functions the Celery task calls (``fit_and_score`` or
``fit_and_score_features``, then ``plan_batch``), measures accuracy on a held-out test
set, and "labels" the chosen batch from the ground truth. Repeats share their initial
labelled set across strategies, so strategies are compared on equal footing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ml.coverage import class_counts
from ml.crossfit import CrossFitState
from ml.loop import LoopResult, fit_and_score, fit_and_score_features
from ml.models.predict import predict_proba, predict_proba_features
from ml.selection import (
    cold_start,
    cold_start_size,
    pixel_embeddings,
    plan_batch,
)

THRESHOLDS = ("0.90", "0.95", "0.97", "0.98")


def balanced_initial(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A class-balanced sample: Gal et al.'s initial labels (20 = 2 per class for 10 classes).

    Hand-written: scikit-learn's stratified splitters keep each class's *share* of the data,
    while this protocol wants equal *counts* per class whatever the shares.

    Parameters
    ----------
    labels : (N,) int
        True class of each pool item.
    n : int
        Items wanted; classes get n // C each, the first n % C of them (in random order) one more.
    rng : numpy Generator

    Returns
    -------
    (n,) int64
        Pool indices (fewer when a class has too few items).
    """
    classes = np.unique(labels)
    per, extra = divmod(n, len(classes))
    chosen: list[int] = []
    for i, cls in enumerate(rng.permutation(classes)):
        members = np.flatnonzero(labels == cls)
        chosen += rng.choice(members, min(len(members), per + (i < extra)), replace=False).tolist()
    return np.array(chosen, dtype=np.int64)


INITIAL_SELECTIONS = ("coldstart", "balanced", "random")


def initial_labels(data: Data, settings: Settings, repeat: int) -> np.ndarray:
    """The first ``settings.initial`` pool indices to label: what the product's cold start puts
    first in the queue (``coldstart``), class-balanced with the true labels (``balanced``, Gal et
    al.'s protocol: an oracle no user has), or a uniform sample (``random``)."""
    rng = np.random.default_rng([settings.seed, repeat])
    n = min(settings.initial, len(data.pool_y))
    if settings.initial_selection == "balanced":
        return balanced_initial(data.pool_y, n, rng)
    if settings.initial_selection == "random":
        return np.sort(rng.choice(len(data.pool_y), n, replace=False))
    if settings.initial_selection != "coldstart":
        valid = ", ".join(INITIAL_SELECTIONS)
        raise ValueError(f"unknown initial selection {settings.initial_selection!r}; valid: {valid}")
    emb = data.coldstart_embeddings if data.coldstart_embeddings is not None else data.pool_x
    if emb.ndim != 2:
        emb = pixel_embeddings(emb)
    k = max(n, cold_start_size(settings.batch))
    return cold_start(emb, min(k, len(emb)), seed=settings.seed * 1009 + repeat)[:n]


@dataclass
class Data:
    """The pool and test sets; images (N, S, S, 3) uint8 for ``cnn``, embeddings (N, D) float32 otherwise."""

    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    n_classes: int
    features: bool = False  # True: pool_x/test_x are embeddings
    #: (N_pool, D) what the product's cold start clusters: backbone embeddings of the pool
    coldstart_embeddings: np.ndarray | None = None


@dataclass
class Settings:
    strategies: list[str]
    initial: int = 20
    batch: int = 10
    budget: int = 300
    repeats: int = 3
    seed: int = 0
    selection: str = "topk"
    initial_selection: str = "coldstart"  # coldstart | balanced | random
    pool_subset: int | None = None  # score a random subset of this many unlabeled items per round
    prelabel_threshold: float = 0.5  # pre-labels this confident are suggestions (the project default)
    extra: dict = field(default_factory=dict)


def _round(
    data: Data,
    labeled: np.ndarray,
    candidates: np.ndarray,
    strategy: str,
    seed: int,
    previous: CrossFitState | None,
    unlabeled: np.ndarray,
) -> LoopResult:
    """One round as the worker runs it. When only a subset of the pool is scored (``pool_subset``),
    pseudo-labels still come from the whole unlabeled pool, as in the product, which scores it all."""
    fit = fit_and_score_features if data.features else fit_and_score
    pseudo = None if len(candidates) == len(unlabeled) else (data.pool_x[unlabeled], unlabeled)
    return fit(
        data.pool_x[labeled],
        data.pool_y[labeled],
        data.pool_x[candidates],
        data.n_classes,
        strategy=strategy,
        seed=seed,
        keys=labeled,
        pool_keys=candidates,
        previous=previous,
        n_pool=len(unlabeled),
        pseudo_pool=pseudo,
    )


def _accuracy(data: Data, model: nn.Module) -> float:
    predict = predict_proba_features if data.features else predict_proba
    probs = predict(model, data.test_x)[:, :, 0]
    return float((probs.argmax(axis=1) == data.test_y).mean())


@dataclass
class Run:
    """One learning curve, ``curve`` = [(labels, test accuracy, the product's estimate of it, classes
    with no label yet), ...] after each round, and ``prelabels`` = [(items served, of them with a
    suggestion, suggestions right, pre-labels right), ...] for each batch served."""

    curve: list[tuple[int, float, float, int]]
    prelabels: list[tuple[int, int, int, int]]


def run_one(
    data: Data, strategy: str, settings: Settings, repeat: int, log: Callable[[str], None] | None = None
) -> Run:
    """One run of ``strategy`` from the initial labels to the budget (``Run``)."""
    labeled = initial_labels(data, settings, repeat)
    pick_rng = np.random.default_rng([settings.seed, repeat, 1])
    curve: list[tuple[int, float, float, int]] = []
    target = len(labeled) + settings.budget
    rnd = 0
    state = None
    prelabels: list[tuple[int, int, int, int]] = []  # per batch served: items, suggested, right of those, right
    while True:
        done = len(labeled) >= min(target, len(data.pool_y))
        unlabeled = np.setdiff1d(np.arange(len(data.pool_y)), labeled)
        if settings.pool_subset and len(unlabeled) > settings.pool_subset:
            candidates = np.sort(pick_rng.choice(unlabeled, settings.pool_subset, replace=False))
        else:
            candidates = unlabeled
        started = time.perf_counter()
        seed = settings.seed * 100003 + repeat * 1009 + rnd
        result = _round(data, labeled, candidates, strategy, seed, state, unlabeled)
        state = result.state
        acc = _accuracy(data, result.model)
        shown = result.metrics["val_accuracy"]
        estimate = float(shown) if shown is not None else float("nan")  # none before any out-of-fold label
        counts = class_counts(data.pool_y[labeled], data.n_classes)
        curve.append((len(labeled), acc, estimate, int((counts == 0).sum())))
        if log:
            log(
                f"{strategy:>16} r{repeat} labels {len(labeled):4d} acc {acc:.4f} est {estimate:.4f} "
                f"classes<3 {int((counts < 3).sum())} "
                f"(cv {result.metrics['cv_accuracy']:.3f}, T {result.metrics['temperature']:.2f}, "
                f"{result.metrics['n_pseudo']} pseudo; {time.perf_counter() - started:.1f} s)"
            )
        if done:
            return Run(curve, prelabels)
        k = min(settings.batch, target - len(labeled), len(candidates))
        explore = None
        if result.embeddings is not None and result.labeled_embeddings is not None:
            explore = (result.embeddings, result.labeled_embeddings)
        chosen = plan_batch(
            result.scores,
            k,
            strategy=strategy,
            selection=settings.selection,
            probs=result.probs,
            counts=counts,
            embeddings=result.embeddings,
            explore=explore,
            seed=seed,
        )
        served = result.probs[chosen]
        suggested = served.max(axis=1) >= settings.prelabel_threshold
        right = served.argmax(axis=1) == data.pool_y[candidates[chosen]]
        prelabels.append((len(chosen), int(suggested.sum()), int((suggested & right).sum()), int(right.sum())))
        labeled = np.concatenate([labeled, candidates[chosen]])
        rnd += 1


#: The estimate's error is measured from this many labels on (below it a few labels carry it).
ESTIMATE_FROM = 50


def summarise(curves: list[list[tuple]]) -> dict:
    """Mean/std curve over repeats, labels needed per accuracy threshold (on the mean curve), AUC;
    with estimates (third element of each point), the mean estimate curve and ``estimate_mae``, the
    mean absolute difference between estimate and test accuracy from ``ESTIMATE_FROM`` labels on."""
    n = np.array([[p[0] for p in c] for c in curves], dtype=np.int64)  # (R, T)
    acc = np.array([[p[1] for p in c] for c in curves], dtype=np.float64)
    xs, mean, std = n[0], acc.mean(axis=0), acc.std(axis=0)
    reach = {}
    for t in THRESHOLDS:
        hit = np.flatnonzero(mean >= float(t))
        reach[t] = int(xs[hit[0]]) if hit.size else None
    span = xs[-1] - xs[0]
    trapezoid = float(np.sum((mean[1:] + mean[:-1]) / 2 * np.diff(xs)))
    auc = trapezoid / span if span > 0 else float(mean[0])
    out = {
        "curve": [[int(x), round(float(m), 5), round(float(s), 5)] for x, m, s in zip(xs, mean, std, strict=True)],
        "labels_to_accuracy": reach,
        "auc": round(float(auc), 5),
    }
    if all(len(p) > 2 for c in curves for p in c):
        est = np.array([[p[2] for p in c] for c in curves], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            mean_est = np.nanmean(est, axis=0) if np.isfinite(est).any() else est.mean(axis=0)
        out["estimate_curve"] = [[int(x), round(float(e), 5)] for x, e in zip(xs, mean_est, strict=True)]
        late = xs >= ESTIMATE_FROM
        errors = np.abs(est - acc)[:, late]
        out["estimate_mae"] = round(float(np.nanmean(errors)), 5) if late.any() and np.isfinite(errors).any() else None
    if all(len(p) > 3 for c in curves for p in c):
        at = [next((p[3] for p in c if p[0] >= ESTIMATE_FROM), None) for c in curves]
        out["classes_unlabeled_at_50"] = at
    return out


def simulate(data: Data, settings: Settings, log: Callable[[str], None] | None = None) -> dict:
    """Run every strategy ``repeats`` times; returns {"strategies": {name: summary}} plus the raw curves."""
    out: dict = {"strategies": {}, "runs": {}}
    for strategy in settings.strategies:
        runs = [run_one(data, strategy, settings, r, log) for r in range(settings.repeats)]
        curves = [run.curve for run in runs]
        out["strategies"][strategy] = {**summarise(curves), "prelabels": prelabel_summary(runs)}
        out["runs"][strategy] = [[[p[0], round(p[1], 5), round(p[2], 5), p[3]] for p in c] for c in curves]
    return out


def prelabel_summary(runs: list[Run]) -> dict:
    """How the pre-labels of the items served fared, over every batch of every run: the share shown
    as a suggestion (confident enough), how often a suggestion was right, how often any pre-label was."""
    served, suggested, suggested_right, right = (sum(b[i] for run in runs for b in run.prelabels) for i in range(4))
    return {
        "served": served,
        "suggested_share": round(suggested / served, 4) if served else None,
        "suggested_accuracy": round(suggested_right / suggested, 4) if suggested else None,
        "accuracy": round(right / served, 4) if served else None,
    }
