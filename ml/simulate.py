"""The active-learning simulation: the true labels play the annotator.

Every round calls the very functions the Celery task calls (``fit_and_score`` or
``fit_and_score_features``, then ``choose_batch``), measures accuracy on a held-out test
set, and "labels" the chosen batch from the ground truth. Repeats share their initial
labelled set across strategies, so strategies are compared on equal footing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ml.loop import LoopResult, fit_and_score, fit_and_score_features
from ml.model import predict_proba, predict_proba_features
from ml.selection import diverse_top_k, top_k

THRESHOLDS = ("0.90", "0.95", "0.97", "0.98")


def choose_batch(
    scores: np.ndarray, k: int, *, embeddings: np.ndarray | None = None, selection: str = "topk", seed: int = 0
) -> np.ndarray:
    """The k items to label next, best first: ``topk`` by score, or ``diverse`` (needs (N, D) embeddings)."""
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
    near-copies of one confusion (digits, BALD: 95% accuracy with 60 labels instead of 80).
    """
    if model not in {"cnn", "pretrained", "torchscript"}:
        raise ValueError(f"unknown model family {model!r}; valid: cnn, pretrained, torchscript")
    return "diverse"


def balanced_initial(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices with the classes as equal as possible (Gal et al.'s 20 = 2 per class for 10 classes)."""
    classes = np.unique(labels)
    per, extra = divmod(n, len(classes))
    chosen: list[int] = []
    for i, cls in enumerate(rng.permutation(classes)):
        members = np.flatnonzero(labels == cls)
        chosen += rng.choice(members, min(len(members), per + (i < extra)), replace=False).tolist()
    return np.array(chosen, dtype=np.int64)


@dataclass
class Data:
    """The pool and test sets; images (N, S, S, 3) uint8 for ``cnn``, embeddings (N, D) float32 otherwise."""

    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    n_classes: int
    features: bool = False  # True: pool_x/test_x are embeddings


@dataclass
class Settings:
    strategies: list[str]
    initial: int = 20
    batch: int = 10
    budget: int = 300
    repeats: int = 3
    seed: int = 0
    selection: str = "topk"
    pool_subset: int | None = None  # score a random subset of this many unlabeled items per round
    extra: dict = field(default_factory=dict)


def _round(data: Data, labeled: np.ndarray, candidates: np.ndarray, strategy: str, seed: int) -> LoopResult:
    fit = fit_and_score_features if data.features else fit_and_score
    return fit(
        data.pool_x[labeled],
        data.pool_y[labeled],
        data.pool_x[candidates],
        data.n_classes,
        strategy=strategy,
        seed=seed,
    )


def _accuracy(data: Data, model) -> float:
    predict = predict_proba_features if data.features else predict_proba
    probs = predict(model, data.test_x)[:, :, 0]
    return float((probs.argmax(axis=1) == data.test_y).mean())


def run_one(
    data: Data, strategy: str, settings: Settings, repeat: int, log: Callable[[str], None] | None = None
) -> list[tuple[int, float]]:
    """One learning curve: [(labels, test accuracy), ...] after each round of ``strategy``."""
    rng = np.random.default_rng([settings.seed, repeat])
    labeled = balanced_initial(data.pool_y, settings.initial, rng)
    pick_rng = np.random.default_rng([settings.seed, repeat, 1])
    curve: list[tuple[int, float]] = []
    target = len(labeled) + settings.budget
    rnd = 0
    while True:
        done = len(labeled) >= min(target, len(data.pool_y))
        unlabeled = np.setdiff1d(np.arange(len(data.pool_y)), labeled)
        if done:
            candidates = unlabeled[:0]
        elif settings.pool_subset and len(unlabeled) > settings.pool_subset:
            candidates = np.sort(pick_rng.choice(unlabeled, settings.pool_subset, replace=False))
        else:
            candidates = unlabeled
        started = time.perf_counter()
        seed = settings.seed * 100003 + repeat * 1009 + rnd
        result = _round(data, labeled, candidates, strategy, seed)
        acc = _accuracy(data, result.model)
        curve.append((len(labeled), acc))
        if log:
            log(
                f"{strategy:>16} r{repeat} labels {len(labeled):4d} acc {acc:.4f} "
                f"({time.perf_counter() - started:.1f} s)"
            )
        if done:
            return curve
        k = min(settings.batch, target - len(labeled), len(candidates))
        # Random stays a plain random sample (as the worker treats it): diversity is part of a strategy.
        selection = "topk" if strategy == "random" else settings.selection
        chosen = choose_batch(result.scores, k, embeddings=result.embeddings, selection=selection, seed=seed)
        labeled = np.concatenate([labeled, candidates[chosen]])
        rnd += 1


def summarise(curves: list[list[tuple[int, float]]]) -> dict:
    """Mean/std curve over repeats, labels needed per accuracy threshold (on the mean curve), and AUC."""
    n = np.array([[x for x, _ in c] for c in curves], dtype=np.int64)  # (R, T)
    acc = np.array([[a for _, a in c] for c in curves], dtype=np.float64)
    xs, mean, std = n[0], acc.mean(axis=0), acc.std(axis=0)
    reach = {}
    for t in THRESHOLDS:
        hit = np.flatnonzero(mean >= float(t))
        reach[t] = int(xs[hit[0]]) if hit.size else None
    span = xs[-1] - xs[0]
    trapezoid = float(np.sum((mean[1:] + mean[:-1]) / 2 * np.diff(xs)))
    auc = trapezoid / span if span > 0 else float(mean[0])
    return {
        "curve": [[int(x), round(float(m), 5), round(float(s), 5)] for x, m, s in zip(xs, mean, std, strict=True)],
        "labels_to_accuracy": reach,
        "auc": round(float(auc), 5),
    }


def simulate(data: Data, settings: Settings, log: Callable[[str], None] | None = None) -> dict:
    """Run every strategy ``repeats`` times; returns {"strategies": {name: summary}} plus the raw curves."""
    out: dict = {"strategies": {}, "runs": {}}
    for strategy in settings.strategies:
        curves = [run_one(data, strategy, settings, r, log) for r in range(settings.repeats)]
        out["strategies"][strategy] = summarise(curves)
        out["runs"][strategy] = [[[x, round(a, 5)] for x, a in c] for c in curves]
    return out
