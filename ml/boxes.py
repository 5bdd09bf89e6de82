"""Object boxes as arrays: clipping to the image, overlap (IoU), and matching two annotators' boxes.

A box is ``x, y, w, h`` in pixels of the displayed image (after EXIF rotation): ``x, y`` its top
left corner, ``w, h`` its size. Arrays of boxes are (N, 4) float; their classes (N,) int.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Two boxes match when they overlap at least this much (intersection over union) and share a class.
MATCH_IOU = 0.5


def as_boxes(boxes: np.ndarray | list) -> np.ndarray:
    """``boxes`` as a (N, 4) float64 array (an empty list gives (0, 4))."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 4) boxes cut to the image ``[0, width] x [0, height]``; a box wholly outside gets zero size."""
    b = as_boxes(boxes)
    x0 = np.clip(b[:, 0], 0, width)
    y0 = np.clip(b[:, 1], 0, height)
    x1 = np.clip(b[:, 0] + b[:, 2], 0, width)
    y1 = np.clip(b[:, 1] + b[:, 3], 0, height)
    return np.column_stack([x0, y0, np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of every box of ``a`` (N, 4) with every box of ``b`` (M, 4);
    0 where either box has no area."""
    a, b = as_boxes(a), as_boxes(b)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter_w = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    inter_h = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = inter_w * inter_h
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class BoxMatch:
    """``pairs`` (K, 2): index in ``a``, index in ``b`` of each matched pair; ``iou`` (K,) their
    overlap; ``f1``: 2K / (N + M), 1.0 when both sets are empty (they agree that nothing is there)."""

    pairs: np.ndarray
    iou: np.ndarray
    f1: float


def match_boxes(
    a: np.ndarray, a_labels: np.ndarray, b: np.ndarray, b_labels: np.ndarray, *, threshold: float = MATCH_IOU
) -> BoxMatch:
    """Pair the boxes of two answers one to one (Hungarian matching, ``scipy.optimize.
    linear_sum_assignment``): a pair shares a class and overlaps at least ``threshold``, and the
    pairs chosen are those with the largest total IoU.

    ``a`` (N, 4), ``a_labels`` (N,), ``b`` (M, 4), ``b_labels`` (M,).
    """
    a, b = as_boxes(a), as_boxes(b)
    a_labels, b_labels = np.asarray(a_labels).reshape(-1), np.asarray(b_labels).reshape(-1)
    if len(a) == 0 or len(b) == 0:
        f1 = 1.0 if len(a) == len(b) == 0 else 0.0
        return BoxMatch(np.zeros((0, 2), dtype=np.int64), np.zeros(0), f1)
    iou = iou_matrix(a, b)
    allowed = (iou >= threshold) & (a_labels[:, None] == b_labels[None, :])
    # A pair that may not match is worth nothing, as leaving both boxes unmatched is; the solver's
    # forced pairs among them are dropped afterwards.
    cost = np.where(allowed, -iou, 0.0)
    rows, cols = linear_sum_assignment(cost)
    keep = allowed[rows, cols]
    pairs = np.column_stack([rows[keep], cols[keep]]).astype(np.int64)
    return BoxMatch(pairs, iou[rows[keep], cols[keep]], 2 * len(pairs) / (len(a) + len(b)))
