"""Objects in each image, one box each: an answer is a list of boxes (a class and ``x, y, w, h`` in
pixels of the displayed image), possibly empty ("nothing here"). As a set of classes, the answer is
the classes present, so what counts classes (labels per class, the class filter, coverage) counts
the images holding each; several people's boxes add up by matching them (IoU >= 0.5, Hungarian).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotator.kinds.base import Answer, AnswerError, ClassOrder
from annotator.kinds.multi_label import MultiLabel
from ml.boxes import MATCH_IOU, match_boxes

#: How each box of a saved answer came to be (``models.BoxOutcome`` holds the same values).
OUTCOMES = ("drawn", "accepted", "moved", "relabeled", "rejected", "imported")
#: The outcomes of boxes that are part of the answer (a rejected pre-box is kept only as history).
KEPT = frozenset(OUTCOMES) - {"rejected"}
#: The most boxes one image's answer may hold.
MAX_BOXES = 1000


@dataclass(frozen=True)
class Box:
    """One object: its class name and its rectangle in pixels (top-left ``x, y``, size ``w, h``)."""

    label: str
    x: float
    y: float
    w: float
    h: float


def box_problem(box: Box, *, width: int, height: int, classes: Iterable[str]) -> str | None:
    """Why ``box`` cannot be stored on a ``width`` x ``height`` image with ``classes``, or ``None``.

    A box that sticks out of the image is cut to it (``clip_box``); one with no size, none left
    inside the image, a coordinate that is not a finite number, or an unknown class is refused."""
    if box.label not in set(classes):
        return f"unknown class {box.label!r}"
    if not all(_is_number(v) for v in (box.x, box.y, box.w, box.h)):
        return "box coordinates must be finite numbers"
    if box.w <= 0 or box.h <= 0:
        return f"box of {box.label!r} has no size (w and h must be positive)"
    inside = clip_box(box, width=width, height=height)
    if inside.w <= 0 or inside.h <= 0:
        where = f"({box.x:g}, {box.y:g}, {box.w:g}, {box.h:g})"
        return f"box of {box.label!r} at {where} lies outside the {width}x{height} image"
    return None


def clip_box(box: Box, *, width: int, height: int) -> Box:
    """``box`` cut to the image; no size left when it lies wholly outside."""
    x0, y0 = min(max(box.x, 0.0), float(width)), min(max(box.y, 0.0), float(height))
    x1, y1 = min(max(box.x + box.w, 0.0), float(width)), min(max(box.y + box.h, 0.0), float(height))
    return Box(box.label, x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class CheckedBox:
    """A box as stored: its class id, its rectangle cut to the image, how it came to be and, for a
    model's pre-box, the model's confidence."""

    class_id: int
    x: float
    y: float
    w: float
    h: float
    outcome: str = "drawn"
    confidence: float | None = None


def boxes_check(boxes: Any, *, classes: ClassOrder, width: int, height: int) -> list[CheckedBox]:
    """The boxes a client sent (a list of ``{"label", "x", "y", "w", "h"}``, each optionally with an
    ``outcome`` and a ``confidence``), cut to the ``width`` x ``height`` image; ``AnswerError``
    names the first box that cannot be stored and why."""
    if not isinstance(boxes, list):
        raise AnswerError("Send 'boxes', a list of {label, x, y, w, h} in image pixels (empty: nothing here).")
    if len(boxes) > MAX_BOXES:
        raise AnswerError(f"At most {MAX_BOXES} boxes per image; got {len(boxes)}.")
    index = dict(zip(classes.names, classes.ids, strict=True))
    checked = []
    for i, given in enumerate(boxes):
        if not isinstance(given, Mapping):
            raise AnswerError(f"boxes[{i}]: a box is an object {{label, x, y, w, h}}.")
        missing = [key for key in ("label", "x", "y", "w", "h") if key not in given]
        if missing:
            raise AnswerError(f"boxes[{i}]: missing {', '.join(missing)}.")
        label, coords = given["label"], [given[key] for key in ("x", "y", "w", "h")]
        if not isinstance(label, str):
            raise AnswerError(f"boxes[{i}]: label must be a class name.")
        if not all(_is_number(v) for v in coords):
            raise AnswerError(f"boxes[{i}]: x, y, w and h must be finite numbers (pixels).")
        box = Box(label, *(float(v) for v in coords))
        problem = box_problem(box, width=width, height=height, classes=classes.names)
        if problem is not None:
            known = f"; classes: {', '.join(classes.names)}" if label not in index else ""
            raise AnswerError(f"boxes[{i}]: {problem}{known}.")
        outcome = given.get("outcome", "drawn")
        if outcome not in OUTCOMES:
            raise AnswerError(f"boxes[{i}]: outcome must be one of {', '.join(OUTCOMES)}.")
        confidence = given.get("confidence")
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1
        ):
            raise AnswerError(f"boxes[{i}]: confidence must be a number from 0 to 1.")
        inside = clip_box(box, width=width, height=height)
        checked.append(
            CheckedBox(
                index[label],
                round(inside.x, 2),
                round(inside.y, 2),
                round(inside.w, 2),
                round(inside.h, 2),
                outcome,
                None if confidence is None else float(confidence),
            )
        )
    return checked


def boxes_answer(boxes: Sequence[CheckedBox], classes: ClassOrder) -> Answer:
    """The classes present in the kept ``boxes``, as an answer (a set of classes)."""
    return classes.answer([box.class_id for box in boxes if box.outcome in KEPT])


def _matrix(boxes: Sequence[CheckedBox]) -> tuple[np.ndarray, np.ndarray]:
    xywh = np.array([[b.x, b.y, b.w, b.h] for b in boxes], dtype=np.float64).reshape(-1, 4)
    return xywh, np.array([b.class_id for b in boxes], dtype=np.int64)


def boxes_agreement(a: Sequence[CheckedBox], b: Sequence[CheckedBox]) -> float:
    """How far two people's boxes of one image agree: the F1 of their boxes matched one to one at
    IoU >= 0.5 within each class (1 when both found nothing)."""
    (xa, ca), (xb, cb) = _matrix(a), _matrix(b)
    return float(match_boxes(xa, ca, xb, cb, threshold=MATCH_IOU).f1)


def boxes_consensus(answers: Sequence[Sequence[CheckedBox]]) -> tuple[int, float]:
    """Of several people's boxes of one image (at least one answer), the position of the answer that
    agrees most with the others (the earliest of those tied) and the mean pairwise agreement, 0..1."""
    n = len(answers)
    if n == 1:
        return 0, 1.0
    pairs = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            pairs[i, j] = pairs[j, i] = boxes_agreement(answers[i], answers[j])
    mean_to_others = (pairs.sum(axis=1) - 1) / (n - 1)
    best = int(np.argmax(mean_to_others))
    return best, float(pairs[np.triu_indices(n, 1)].mean())


class Boxes(MultiLabel):
    """As a set of classes, a boxes answer is multi-label: the classes present (so ``multi_label``)."""

    name = "boxes"
    multi_label = True
    boxes = True
    #: N: nothing here; A: accept the selected pre-box; X: reject it.
    reserved_keys = frozenset({"n", "a", "x"})

    def answer_check(self, *, label: Any, labels: Any, classes: ClassOrder) -> Answer:
        raise AnswerError(
            "This project labels boxes: send 'boxes', a list of {label, x, y, w, h} in image pixels "
            "(an empty list: nothing here)."
        )
