"""Likely box errors: every labeled image's boxes judged against detections by heads that never saw
them (out-of-fold), with cleanlab's object-detection scores (ObjectLab, ``cleanlab.object_detection``).

- Out-of-fold detections: the labeled images split in ``folds`` (scikit-learn's ``KFold``); each
  fold's images are detected by a head (``centernet.train_head``) trained on the other folds' boxes.
- Per box, cleanlab's three scores, 0..1, lower = more likely wrong: *swap* per given box
  (``rank.compute_swap_box_scores``: a sure detection of another class sits on it, so it is
  probably of the wrong class), *badloc* per given box (``rank.compute_badloc_box_scores``: the sure
  detections of its class that touch it overlap it only a little: probably badly placed),
  *overlooked* per sure detection that touches no given box (probably an object left unboxed).
- A box is an issue when its score is at most ``BoxScanConfig.box_threshold`` for its kind; an
  image is flagged when one of its boxes is. Its quality is cleanlab's image score: the three
  scores pooled per image by softmin (``rank.pool_box_scores_per_image``) and combined with
  cleanlab's default weights, as ``rank.get_label_quality_scores`` does.

Where this departs from cleanlab's own ``filter.find_label_issues``, and why:

- "Sure" is a parameter (``high_probability``, 0.5 here): cleanlab's pipeline fixes it at 0.95,
  which this detector's heat-map scores (sigmoid peaks; nine in ten of its boxes scored 0.6 to 0.8
  match an object) seldom reach.
- The overlooked score is computed here (``_overlooked_scores``, cleanlab's formula) because
  cleanlab skips a detection that touches a given box at all (IoU > 0), and neighbours touch: a
  detection that overlaps every given box at most ``touch_iou`` counts as touching none.
- The per-box thresholds are fixed values, not cleanlab's per-class AP rule, which it computes in a
  ``multiprocessing.Pool``: a fork of a process running torch's threads (a worker) can hang.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ml.boxes import iou_matrix
from ml.detection.centernet import Detections, FeatureMaps, detect, train_on_boxes

#: The issue kinds, as the product names them: cleanlab's swap, badloc and overlooked subtypes.
WRONG_CLASS, BADLY_PLACED, UNBOXED = "wrong_class", "badly_placed", "unboxed"
ISSUE_KINDS = (WRONG_CLASS, BADLY_PLACED, UNBOXED)


@dataclass(frozen=True)
class BoxScanConfig:
    """The scan's settings: cleanlab's own parameters and the fold models' training.

    ``high_probability``: a detection at least this sure counts for the swap and overlooked scores
    (cleanlab's ``high_probability_threshold``); ``low_probability``: the least a detection needs to
    judge a box's placement (``low_probability_threshold``, 0.5 in cleanlab too); ``touch_iou``: a
    detection overlapping each given box at most this much (IoU) may be an unboxed object (cleanlab:
    0); ``box_threshold``: a per-box score at most this is an issue, per kind (wrong class at 0.5: a
    sure detection of another class matches the box about as well as IoU 0.5; badly placed and
    unboxed at 0.1: no sure detection of the class overlaps it to speak of). ``suggest``: detections
    at least this sure are the suggested boxes (every issue's detection is among them).
    """

    folds: int = 4
    epochs: int = 30
    allow_flips: bool = True
    high_probability: float = 0.5
    low_probability: float = 0.5
    touch_iou: float = 0.3
    box_threshold: dict[str, float] = field(default_factory=lambda: {WRONG_CLASS: 0.5, BADLY_PLACED: 0.1, UNBOXED: 0.1})

    @property
    def suggest(self) -> float:
        return min(self.high_probability, self.low_probability)


@dataclass(frozen=True)
class BoxIssue:
    """One likely error in an image: its ``kind`` (``ISSUE_KINDS``), cleanlab's per-box ``score``
    (0..1, lower = more likely), the ``given`` box at issue (its position in the image's boxes;
    ``None`` for an unboxed object) and the ``suggested`` box that shows it (its position in the
    image's suggested boxes; ``None`` when no detection does)."""

    kind: str
    score: float
    given: int | None
    suggested: int | None


@dataclass
class BoxLabelIssues:
    """The scan of N labeled images.

    ``quality`` (N,) cleanlab's image label quality, 0..1, lower = more likely wrong; ``flagged``
    (N,) bool, an image with at least one issue; ``ranked`` (F,) the flagged images, worst first;
    ``issues`` (N,) lists of ``BoxIssue``, worst first; ``suggested`` (N,) the out-of-fold detections
    at least ``BoxScanConfig.suggest`` sure (boxes (K, 4) ``x, y, w, h`` image pixels)."""

    quality: np.ndarray
    flagged: np.ndarray
    ranked: np.ndarray
    issues: list[list[BoxIssue]]
    suggested: list[Detections]

    def reason(self, i: int) -> str | None:
        """The kind of image ``i``'s worst issue, ``None`` when it has none."""
        return self.issues[i][0].kind if self.issues[i] else None


def out_of_fold_detections(
    features: FeatureMaps,
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_classes: int,
    *,
    input_size: int,
    folds: int = 4,
    epochs: int = 30,
    allow_flips: bool = True,
    seed: int = 0,
    min_score: float = 0.05,
    progress: Callable[[float], None] | None = None,
) -> list[Detections]:
    """Each of N labeled images' detections by a head trained on the other folds' images.

    Parameters
    ----------
    features : FeatureMaps of the N images
    boxes : (N,) arrays (K_i, 4) ``x, y, w, h`` in image pixels
    labels : (N,) arrays (K_i,) class positions
    n_classes : int
    input_size : int
        The side the maps were computed at.
    folds : int
        At least 2 and at most N.

    Returns
    -------
    list of N ``Detections``, best first, scores at least ``min_score``.
    """
    from sklearn.model_selection import KFold

    n = len(features)
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be between 2 and the number of images ({n}); got {folds}")
    report = progress or (lambda _f: None)
    found: list[Detections | None] = [None] * n
    splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.arange(n))
    for k, (train, held) in enumerate(splits):
        head = train_on_boxes(
            features.take(train),
            [boxes[i] for i in train],
            [labels[i] for i in train],
            n_classes,
            input_size=input_size,
            epochs=epochs,
            allow_flips=allow_flips,
            seed=seed + k,
            progress=partial(_fold_progress, report, k, folds),
        )
        for i, detections in zip(held, detect(head, features.take(held), min_score=min_score), strict=True):
            found[int(i)] = detections
    report(1.0)
    return [d for d in found if d is not None]


def _fold_progress(report: Callable[[float], None], k: int, folds: int, fraction: float) -> None:
    report((k + fraction) / folds)


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    """(K, 4) ``x, y, w, h`` -> (K, 4) ``x1, y1, x2, y2``, cleanlab's format."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([b[:, :2], b[:, :2] + b[:, 2:]])


def cleanlab_inputs(
    boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], detections: Sequence[Detections], n_classes: int
) -> tuple[list[dict[str, np.ndarray]], list[list[np.ndarray]]]:
    """The given boxes and the detections in cleanlab's format: per image ``{"bboxes": (L, 4)
    x1, y1, x2, y2, "labels": (L,)}`` and a list of ``n_classes`` (M_c, 5) arrays ``[x1, y1, x2, y2,
    score]``."""
    given = [
        {"bboxes": _xyxy(b), "labels": np.asarray(y, dtype=np.int64).reshape(-1)}
        for b, y in zip(boxes, labels, strict=True)
    ]
    predictions = []
    for d in detections:
        rows = np.column_stack([_xyxy(d.boxes), np.asarray(d.scores, dtype=np.float64).reshape(-1, 1)])
        predictions.append([rows[np.asarray(d.labels) == c] for c in range(n_classes)])
    return given, predictions


def _above(d: Detections, threshold: float) -> Detections:
    keep = np.asarray(d.scores) >= threshold
    return Detections(d.boxes[keep], d.scores[keep], d.labels[keep], d.class_probs[keep])


def _closest(iou: np.ndarray, candidates: np.ndarray) -> int | None:
    """The candidate (a position into iou's columns) overlapping most, if one overlaps at all."""
    if not len(candidates) or iou[candidates].max() <= 0:
        return None
    return int(candidates[np.argmax(iou[candidates])])


def find_box_issues(
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    detections: Sequence[Detections],
    n_classes: int,
    *,
    config: BoxScanConfig | None = None,
) -> BoxLabelIssues:
    """Judge N images' given boxes against their out-of-fold ``detections`` (module docstring).

    Parameters
    ----------
    boxes : (N,) arrays (K_i, 4) ``x, y, w, h``
    labels : (N,) arrays (K_i,) class positions
    detections : (N,) ``Detections`` by heads that did not see the image
    n_classes : int

    Returns
    -------
    BoxLabelIssues
    """
    from cleanlab.internal.constants import (
        ALPHA,
        CUSTOM_SCORE_WEIGHT_BADLOC,
        CUSTOM_SCORE_WEIGHT_OVERLOOKED,
        CUSTOM_SCORE_WEIGHT_SWAP,
        TINY_VALUE,
    )
    from cleanlab.object_detection.rank import (
        _get_valid_inputs_for_compute_scores,
        compute_badloc_box_scores,
        compute_swap_box_scores,
        pool_box_scores_per_image,
    )

    config = config or BoxScanConfig()
    n = len(boxes)
    suggested = [_above(d, config.suggest) for d in detections]
    if n == 0:
        return BoxLabelIssues(np.ones(0), np.zeros(0, bool), np.zeros(0, np.int64), [], [])
    # Only the detections cleanlab can use: the weaker ones change no score (each score looks at
    # detections above low_probability or high_probability only), except its "smallest similarity".
    given, predictions = cleanlab_inputs(boxes, labels, suggested, n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an image without any box: cleanlab's empty max
        shared = _get_valid_inputs_for_compute_scores(ALPHA, given, predictions)  # the matrices, once
        swap = compute_swap_box_scores(auxiliary_inputs=shared, high_probability_threshold=config.high_probability)
        badloc = compute_badloc_box_scores(auxiliary_inputs=shared, low_probability_threshold=config.low_probability)
    overlooked = [_overlooked_scores(a, config.high_probability, config.touch_iou) for a in shared]
    pooled = {
        "swap": pool_box_scores_per_image(swap),
        "badloc": pool_box_scores_per_image(badloc),
        "overlooked": pool_box_scores_per_image(overlooked),
    }
    weights = {"swap": CUSTOM_SCORE_WEIGHT_SWAP, "badloc": CUSTOM_SCORE_WEIGHT_BADLOC}
    weights["overlooked"] = CUSTOM_SCORE_WEIGHT_OVERLOOKED
    quality = np.exp(sum(w * np.log(TINY_VALUE + pooled[k]) for k, w in weights.items()))
    issues = [
        _image_issues(b, y, s, sw, bl, ov, config)
        for b, y, s, sw, bl, ov in zip(boxes, labels, suggested, swap, badloc, overlooked, strict=True)
    ]
    flagged = np.array([bool(found) for found in issues])
    ranked = np.flatnonzero(flagged)
    ranked = ranked[np.argsort(quality[ranked], kind="stable")]
    return BoxLabelIssues(np.asarray(quality, dtype=np.float64), flagged, ranked.astype(np.int64), issues, suggested)


def _overlooked_scores(shared: dict, high_probability: float, touch_iou: float) -> np.ndarray:
    """cleanlab's overlooked score of each of an image's (M,) detections (``rank.
    compute_overlooked_box_scores``), in its order (class by class), with one change: a detection
    that overlaps every given box by at most ``touch_iou`` (IoU) counts as touching none (cleanlab
    has 0: the least touch of a neighbour hides an unboxed object). NaN where there is no score.

    ``shared``: cleanlab's per-image inputs (``pred_labels``, ``pred_label_probs``, ``lab_labels``,
    ``similarity_matrix`` (L, M), ``iou_matrix`` (L, M), ``min_possible_similarity``)."""
    labels, probs = shared["pred_labels"], shared["pred_label_probs"]
    given, similarity, iou = shared["lab_labels"], shared["similarity_matrix"], shared["iou_matrix"]
    scores = np.full(len(labels), np.nan)
    for m, (k, p) in enumerate(zip(labels, probs, strict=True)):
        if p < high_probability or np.any(iou[:, m] > touch_iou):
            continue
        same = similarity[given == k, m]
        scores[m] = same.max() if len(same) else shared["min_possible_similarity"] * (1 - p)
    return scores


def _image_issues(
    boxes: np.ndarray,
    labels: np.ndarray,
    suggested: Detections,
    swap: np.ndarray,
    badloc: np.ndarray,
    overlooked: np.ndarray,
    config: BoxScanConfig,
) -> list[BoxIssue]:
    """One image's issues, worst first: each given box at most once (a wrong class before a bad
    placement), with the detection that shows it; each detection shows one issue at most."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    iou = iou_matrix(boxes, suggested.boxes)  # (L, M)
    found: list[BoxIssue] = []
    limit = config.box_threshold
    for j, label in enumerate(labels):
        if np.nan_to_num(swap[j], nan=1.0) <= limit[WRONG_CLASS]:
            others = np.flatnonzero((suggested.labels != label) & (suggested.scores > config.high_probability))
            found.append(BoxIssue(WRONG_CLASS, float(swap[j]), j, _closest(iou[j], others)))
        elif np.nan_to_num(badloc[j], nan=1.0) <= limit[BADLY_PLACED]:
            same = np.flatnonzero((suggested.labels == label) & (suggested.scores > config.low_probability))
            found.append(BoxIssue(BADLY_PLACED, float(badloc[j]), j, _closest(iou[j], same)))
    by_class = np.argsort(suggested.labels, kind="stable")  # cleanlab's order: class by class
    for m, score in zip(by_class, overlooked, strict=True):  # NaN: not sure, or on a given box
        shown = any(issue.suggested == m for issue in found)  # already a badly placed box's, say
        if not np.isnan(score) and score <= limit[UNBOXED] and not shown:
            found.append(BoxIssue(UNBOXED, float(score), None, int(m)))
    return sorted(found, key=lambda issue: issue.score)


def scan_box_issues(
    features: FeatureMaps,
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_classes: int,
    *,
    input_size: int,
    config: BoxScanConfig | None = None,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> BoxLabelIssues:
    """Likely box errors of N labeled images (their maps, (K_i, 4) ``x, y, w, h`` boxes and (K_i,)
    classes): ``out_of_fold_detections`` judged by ``find_box_issues``."""
    config = config or BoxScanConfig()
    found = out_of_fold_detections(
        features,
        boxes,
        labels,
        n_classes,
        input_size=input_size,
        folds=config.folds,
        epochs=config.epochs,
        allow_flips=config.allow_flips,
        seed=seed,
        progress=progress,
    )
    return find_box_issues(boxes, labels, found, n_classes, config=config)
