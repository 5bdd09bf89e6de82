"""Stored boxes read: an annotation's (with their outcomes) and an item's consensus boxes or
pre-boxes, for many ids in one query each, as ``CheckedBox`` values or as the API's JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from annotator.kinds.boxes import KEPT, CheckedBox
from annotator.models import Annotation, AnnotationBox, BoxRole, Item, ItemBox


def annotation_boxes(*, annotation_ids: Iterable[int]) -> dict[int, list[CheckedBox]]:
    """``{annotation id: its boxes}``, in the order they were sent; annotations without boxes are absent."""
    rows = AnnotationBox.objects.filter(annotation_id__in=list(annotation_ids)).order_by("id")
    found: dict[int, list[CheckedBox]] = {}
    fields = ("annotation_id", "label_class_id", "x", "y", "w", "h", "outcome", "confidence")
    for annotation_id, *box in rows.values_list(*fields):
        found.setdefault(annotation_id, []).append(CheckedBox(*box))
    return found


def item_boxes(*, item_id: int, role: str = BoxRole.CONSENSUS) -> list[CheckedBox]:
    """The item's ``role`` boxes as ``CheckedBox`` values (outcome ``drawn``; pre-boxes with their confidence)."""
    rows = ItemBox.objects.filter(item_id=item_id, role=role).order_by("id")
    fields = ("label_class_id", "x", "y", "w", "h", "confidence")
    return [
        CheckedBox(class_id, x, y, w, h, confidence=confidence)
        for class_id, x, y, w, h, confidence in rows.values_list(*fields)
    ]


def item_boxes_json(
    *, item_ids: Iterable[int], role: str = BoxRole.CONSENSUS, min_confidence: float | None = None
) -> dict[int, list[dict[str, Any]]]:
    """``{item id: [{"label", "x", "y", "w", "h"} (pre-boxes: and "confidence"), ...]}`` for the
    items that have ``role`` boxes (pre-boxes at least ``min_confidence``); one query."""
    rows = ItemBox.objects.filter(item_id__in=list(item_ids), role=role)
    if min_confidence is not None:
        rows = rows.filter(confidence__gte=min_confidence)
    found: dict[int, list[dict[str, Any]]] = {}
    fields = ("item_id", "label_class__name", "x", "y", "w", "h", "confidence")
    for item_id, label, x, y, w, h, confidence in rows.order_by("item_id", "id").values_list(*fields):
        box: dict[str, Any] = {"label": label, "x": x, "y": y, "w": w, "h": h}
        if role == BoxRole.PREDICTED:
            box["confidence"] = confidence
        found.setdefault(item_id, []).append(box)
    return found


def annotation_boxes_json(*, annotation_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """``{annotation id: [{"label", "x", "y", "w", "h", "outcome", "confidence"}, ...]}``; one query."""
    rows = AnnotationBox.objects.filter(annotation_id__in=list(annotation_ids)).order_by("id")
    found: dict[int, list[dict[str, Any]]] = {}
    fields = ("annotation_id", "label_class__name", "x", "y", "w", "h", "outcome", "confidence")
    for annotation_id, label, x, y, w, h, outcome, confidence in rows.values_list(*fields):
        box = {"label": label, "x": x, "y": y, "w": w, "h": h, "outcome": outcome, "confidence": confidence}
        found.setdefault(annotation_id, []).append(box)
    return found


def item_people_boxes(*, item: Item) -> list[dict[str, Any]]:
    """Each active annotation's kept boxes, oldest first: ``[{"user", "source", "boxes": [...]}]``; two queries."""
    annotations = list(
        Annotation.objects.filter(item_id=item.id, active=True)
        .order_by("id")
        .values_list("id", "user__username", "source")
    )
    boxes = annotation_boxes_json(annotation_ids=[a for a, _, _ in annotations])
    return [
        {"user": user, "source": source, "boxes": _kept(boxes.get(annotation_id, []))}
        for annotation_id, user, source in annotations
    ]


def undone_boxes(*, item_id: int, user: Any) -> list[dict[str, Any]]:
    """The kept boxes of ``user``'s latest inactive annotation of the item (the answer an undo just
    took back), as the API shows boxes; ``[]`` when there is none. Two queries."""
    latest = (
        Annotation.objects.filter(item_id=item_id, user=user, active=False).order_by("-id").values_list("id", flat=True)
    ).first()
    if latest is None:
        return []
    return _kept(annotation_boxes_json(annotation_ids=[latest]).get(latest, []))


def _kept(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An annotation's boxes (``annotation_boxes_json``) that are part of its answer, as items show boxes."""
    return [{key: box[key] for key in ("label", "x", "y", "w", "h")} for box in boxes if box["outcome"] in KEPT]
