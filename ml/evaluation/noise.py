"""Planted label noise with a known answer: flipped classes and changed class sets, for the
label-error benchmarks and tests (``ml.review`` finds them)."""

from __future__ import annotations

import numpy as np


def flip_labels(
    labels: np.ndarray, n_classes: int, *, fraction: float, kind: str = "uniform", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a fraction of the labels.

    ``uniform``: each flipped label becomes another class at random. ``pairs``: class c becomes a
    fixed partner class (a random pairing), the asymmetric noise of real annotators.

    Parameters
    ----------
    labels : (N,) int
    n_classes : int
    fraction : float
        round(fraction N) labels are flipped.
    kind : {"uniform", "pairs"}
    seed : int

    Returns
    -------
    noisy : (N,) int
    flipped : (F,) int64
        The indices changed, sorted.
    """
    if kind not in {"uniform", "pairs"}:
        raise ValueError(f"unknown noise kind {kind!r}; valid: uniform, pairs")
    rng = np.random.default_rng(seed)
    n_flip = round(fraction * len(labels))
    flipped = np.sort(rng.choice(len(labels), size=n_flip, replace=False))
    noisy = labels.copy()
    if kind == "uniform":
        shift = rng.integers(1, n_classes, size=n_flip)
        noisy[flipped] = (labels[flipped] + shift) % n_classes
    else:
        partner = rng.permutation(n_classes)
        partner = np.where(partner == np.arange(n_classes), (partner + 1) % n_classes, partner)
        noisy[flipped] = partner[labels[flipped]]
    return noisy, flipped


def attribute_targets(labels: np.ndarray, n_classes: int, *, n_attributes: int = 4, seed: int = 0) -> np.ndarray:
    """Multi-label targets derived from classes: attribute a of class c is a fixed random bit.

    Each attribute is held by some classes and not others, so the sets are learnable.

    Parameters
    ----------
    labels : (N,) int
    n_classes : int
    n_attributes : int
        A.
    seed : int

    Returns
    -------
    (N, A) float32 0/1
    """
    rng = np.random.default_rng(seed)
    while True:
        codes = rng.integers(0, 2, size=(n_classes, n_attributes))
        held = codes.sum(axis=0)
        if np.all((held > 0) & (held < n_classes)):
            return codes[labels].astype(np.float32)


def flip_memberships(targets: np.ndarray, *, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a fraction of class sets by adding or leaving out one class each.

    Parameters
    ----------
    targets : (N, C) 0/1
    fraction : float
    seed : int

    Returns
    -------
    noisy : (N, C)
    flipped : (F,) int64
        The indices changed, sorted.
    """
    rng = np.random.default_rng(seed)
    n_flip = round(fraction * len(targets))
    flipped = np.sort(rng.choice(len(targets), size=n_flip, replace=False))
    noisy = targets.copy()
    column = rng.integers(0, targets.shape[1], size=n_flip)
    noisy[flipped, column] = 1 - noisy[flipped, column]
    return noisy, flipped
