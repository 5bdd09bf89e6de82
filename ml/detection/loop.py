"""One active-learning round of the detector: estimate it honestly on labeled images it did not
train on, train the served head on every labeled image, find the pool's boxes with calibrated
confidences, and score the pool by how much each image would teach.

- The estimate: a split of the labeled images (one in five held out, at least 5 and only from 10
  labeled images up) trains a head whose detections on the held-out images give mAP@0.5 and
  mAP@[.5:.95] by pycocotools (``evaluation.coco_map``), with the number of images they rest on.
- Calibration: on those same held-out images, each detection is right when it matches a true box
  of its class at IoU >= 0.5 (one to one, best score first); an isotonic regression of rightness on
  score turns the served head's scores into the chance a box is right (scikit-learn).
- Scores per strategy: ``random``; ``bald``: MC-dropout disagreement of the head
  (``scoring.mc_disagreement``); the others: per-box uncertainty (margin for ``margin`` and
  ``least_confidence``, entropy otherwise) aggregated over the image's boxes by ``aggregate``
  (``max`` by default: ``manage.py simulate --task boxes --aggregates max,mean,sum`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression

from ml.boxes import iou_matrix
from ml.detection.centernet import (
    CenterNetHead,
    Detections,
    FeatureMaps,
    detect,
    detect_samples,
    train_on_boxes,
)
from ml.detection.evaluation import coco_map
from ml.detection.scoring import image_scores, mc_disagreement

#: Held-out share of the labeled images for the estimate, and the fewest labeled images that have one.
HOLD_OUT = 0.2
MIN_FOR_ESTIMATE = 10
#: Detections kept per image as pre-boxes (the API then shows those above the project's threshold).
MAX_PREBOXES = 50
#: The fewest training batches of a head: the first few dozen labeled images get trained as well as
#: they can be (on generated scenes mAP@0.5 went from 0.32 to 0.38 with 20 images, 0.50 to 0.56 with
#: 40), which costs seconds only while the set is small (30 epochs of 200 images are 390 batches).
MIN_STEPS = 200
MIN_PREBOX_SCORE = 0.05


@dataclass
class DetectorRound:
    """What a round hands to the product.

    ``head``: the served head (trained on every labeled image). ``pool`` (M,) detections of the pool
    images with ``confidence`` (M,) lists of calibrated confidences per box; ``scores`` (M,) how much
    each would teach; ``presence`` (M, C) each class's best calibrated box per image (the image-level
    guess). ``held_out`` the positions (into the labeled images) of the estimate's images and their
    (H, C) presence; ``metrics`` the estimate's figures."""

    head: CenterNetHead
    pool: list[Detections]
    confidence: list[np.ndarray]
    scores: np.ndarray
    presence: np.ndarray
    held_out: np.ndarray
    held_out_presence: np.ndarray
    metrics: dict[str, float | int | None] = field(default_factory=dict)


def _matched(found: Detections, boxes: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(K,) 1.0 for each detection (best first) matching a still-unmatched true box of its class."""
    right = np.zeros(len(found.scores))
    free = np.ones(len(boxes), dtype=bool)
    if len(boxes) == 0 or len(found.scores) == 0:
        return right
    iou = iou_matrix(found.boxes, boxes)
    for k in np.argsort(-found.scores):
        candidates = np.flatnonzero(free & (labels == found.labels[k]) & (iou[k] >= threshold))
        if len(candidates):
            best = candidates[np.argmax(iou[k, candidates])]
            free[best], right[k] = False, 1.0
    return right


def calibrator(
    detections: Sequence[Detections], boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """Scores -> the chance a box is right, fitted on held-out images' detections (isotonic, clipped
    to 0..1); the scores as they are when fewer than 20 detections or only one outcome were seen."""
    scores = np.concatenate([d.scores for d in detections]) if detections else np.zeros(0)
    matched = [_matched(d, b, y) for d, b, y in zip(detections, boxes, labels, strict=True)]
    right = np.concatenate(matched) if matched else np.zeros(0)
    if len(scores) < 20 or len(np.unique(right)) < 2:
        return lambda s: np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, right)

    def calibrate(s: np.ndarray) -> np.ndarray:
        values = np.asarray(s, dtype=np.float64)
        return model.predict(values) if len(values) else values  # an image without boxes has none to map

    return calibrate


def presence(detections: Sequence[Detections], confidence: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """(N, C) each class's most confident box per image (0 where the class has none)."""
    out = np.zeros((len(detections), n_classes))
    for i, (found, sure) in enumerate(zip(detections, confidence, strict=True)):
        for label, value in zip(found.labels, sure, strict=True):
            out[i, int(label)] = max(out[i, int(label)], float(value))
    return out


def pool_scores(
    head: CenterNetHead,
    pool: FeatureMaps,
    found: list[Detections],
    strategy: str,
    seed: int,
    *,
    aggregate: str = "max",
) -> np.ndarray:
    """(M,) how much each pool image would teach under ``strategy`` (higher first)."""
    if strategy == "random":
        return np.random.default_rng(seed).random(len(found))
    if strategy == "bald":
        return mc_disagreement(detect_samples(head, pool, passes=8, seed=seed))
    measure = "margin" if strategy in ("margin", "least_confidence") else "entropy"
    return image_scores(found, aggregate=aggregate, measure=measure)


def detector_round(
    labeled: FeatureMaps,
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    pool: FeatureMaps,
    n_classes: int,
    *,
    input_size: int,
    strategy: str = "entropy",
    aggregate: str = "max",
    allow_flips: bool = True,
    epochs: int = 30,
    min_steps: int = MIN_STEPS,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> DetectorRound:
    """A round on N labeled images (their (K_i, 4) ``boxes`` and (K_i,) class positions ``labels``;
    empty for "nothing here") and M pool images, as the module docstring says."""
    report = progress or (lambda _f: None)
    n = len(labeled)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.permutation(n)[: max(5, round(n * HOLD_OUT))]) if n >= MIN_FOR_ESTIMATE else np.zeros(0, int)
    train = np.setdiff1d(np.arange(n), held)
    metrics: dict[str, float | int | None] = {"n_train": n, "val_n": len(held), "val_map50": None, "val_map": None}
    calibrate: Callable[[np.ndarray], np.ndarray] = lambda s: np.clip(np.asarray(s, np.float64), 0, 1)  # noqa: E731
    held_presence = np.zeros((len(held), n_classes))
    if len(held):
        estimate = train_on_boxes(
            labeled.take(train),
            [boxes[i] for i in train],
            [labels[i] for i in train],
            n_classes,
            input_size=input_size,
            epochs=epochs,
            min_steps=min_steps,
            allow_flips=allow_flips,
            seed=seed,
            progress=lambda f: report(0.4 * f),
        )
        on_held = detect(estimate, labeled.take(held))
        sizes = [(b.width, b.height) for b in labeled.take(held).boxes_in]
        figures = coco_map(
            [boxes[i] for i in held], [labels[i] for i in held], on_held, n_classes=n_classes, sizes=sizes
        )
        metrics.update(val_map50=round(figures["map50"], 4), val_map=round(figures["map"], 4))
        calibrate = calibrator(on_held, [boxes[i] for i in held], [labels[i] for i in held])
        held_presence = presence(on_held, [calibrate(d.scores) for d in on_held], n_classes)
    start = 0.4 if len(held) else 0.0
    head = train_on_boxes(
        labeled,
        boxes,
        labels,
        n_classes,
        input_size=input_size,
        epochs=epochs,
        min_steps=min_steps,
        allow_flips=allow_flips,
        seed=seed,
        progress=lambda f: report(start + (0.9 - start) * f),
    )
    found = detect(head, pool, min_score=MIN_PREBOX_SCORE, top_k=MAX_PREBOXES)
    confidence = [calibrate(d.scores) for d in found]
    scores = pool_scores(head, pool, found, strategy, seed, aggregate=aggregate)
    report(1.0)
    return DetectorRound(
        head=head,
        pool=found,
        confidence=confidence,
        scores=np.asarray(scores, dtype=np.float64),
        presence=presence(found, confidence, n_classes),
        held_out=held,
        held_out_presence=held_presence,
        metrics=metrics,
    )
