"""How much an unlabeled image would teach the detector, from what it detects there: per-box
uncertainty (is there an object, and of which class), aggregated over the image's boxes, and the
disagreement between MC-dropout samples of the head (boxes that appear, move or change class).

Higher is more worth labeling, as for classification (``ml.scoring``). Every function takes one
``Detections`` per image and returns (N,) float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.boxes import match_boxes
from ml.detection.centernet import Detections

#: Detections below this score are background: they neither count nor add uncertainty.
MIN_SCORE = 0.05
#: How the per-box uncertainties of an image add up.
AGGREGATES = ("max", "mean", "sum")
#: What a box's uncertainty measures about its class.
BOX_MEASURES = ("entropy", "margin")


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)


def box_uncertainty(detections: Detections, *, measure: str = "entropy") -> np.ndarray:
    """(K,) uncertainty in 0..2 of each box scoring at least ``MIN_SCORE``: whether it is an object
    at all (the binary entropy of its score, in bits) plus, weighted by its score, how unsure its
    class is (``entropy``: of the classes' heat at its centre normalised to sum to one, divided by
    log C; ``margin``: 1 minus the gap between the two highest)."""
    if measure not in BOX_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid: {', '.join(BOX_MEASURES)}")
    keep = detections.scores >= MIN_SCORE
    scores, probs = detections.scores[keep].astype(np.float64), detections.class_probs[keep].astype(np.float64)
    if len(scores) == 0:
        return np.zeros(0)
    shares = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    n_classes = shares.shape[1]
    if n_classes < 2:
        unsure_class = np.zeros(len(scores))
    elif measure == "entropy":
        unsure_class = -(shares * np.log(np.clip(shares, 1e-12, None))).sum(axis=1) / np.log(n_classes)
    else:
        top = np.sort(shares, axis=1)[:, ::-1]
        unsure_class = 1 - (top[:, 0] - top[:, 1])
    return _binary_entropy(scores) + scores * unsure_class


def image_scores(detections: Sequence[Detections], *, aggregate: str = "max", measure: str = "entropy") -> np.ndarray:
    """(N,) each image's box uncertainties added up by ``aggregate``: ``max`` (its most doubtful
    box), ``mean`` or ``sum`` (many doubtful boxes count more); 0 for an image with no box."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; valid: {', '.join(AGGREGATES)}")
    out = np.zeros(len(detections))
    for i, found in enumerate(detections):
        values = box_uncertainty(found, measure=measure)
        if len(values):
            out[i] = values.max() if aggregate == "max" else values.mean() if aggregate == "mean" else values.sum()
    return out


def low_confidence_count(detections: Sequence[Detections], *, low: float = 0.1, high: float = 0.5) -> np.ndarray:
    """(N,) how many boxes each image has with a score in [low, high): the objects the model half sees."""
    return np.array([float(((d.scores >= low) & (d.scores < high)).sum()) for d in detections])


def mc_disagreement(samples: Sequence[Sequence[Detections]], *, min_score: float = 0.3) -> np.ndarray:
    """(N,) how much T stochastic passes of the head (MC dropout; T >= 2, each a list of N images'
    detections) disagree on each image: 1 minus the mean matched F1 (``ml.boxes.match_boxes``: same
    class, IoU >= 0.5) over every pair of passes, boxes scoring ``min_score`` or more. 0 when every
    pass finds the same boxes (or none), up to 1 when no two passes share a box."""
    if len(samples) < 2:
        raise ValueError("MC disagreement needs at least two passes")
    n_images = len(samples[0])
    out = np.zeros(n_images)
    for image in range(n_images):
        kept = []
        for passes in samples:
            found = passes[image]
            keep = found.scores >= min_score
            kept.append((found.boxes[keep], found.labels[keep]))
        f1 = [match_boxes(*kept[a], *kept[b]).f1 for a in range(len(kept)) for b in range(a + 1, len(kept))]
        out[image] = 1.0 - float(np.mean(f1))
    return out
