"""Stored boxes written: an annotation's boxes (once: annotations are history) and an item's
consensus boxes or pre-boxes, replaced as a whole (one delete and one insert per call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from annotator.kinds.boxes import KEPT, CheckedBox
from annotator.models import AnnotationBox, BoxRole, Item, ItemBox


def annotations_boxes_store(*, boxes: Mapping[int, Sequence[CheckedBox]]) -> None:
    """The boxes of new annotations (``{annotation id: boxes}``), rejected pre-boxes included (each
    with its outcome); one insert however many annotations."""
    rows = [
        AnnotationBox(
            annotation_id=annotation_id,
            label_class_id=b.class_id,
            x=b.x,
            y=b.y,
            w=b.w,
            h=b.h,
            outcome=b.outcome,
            confidence=b.confidence,
        )
        for annotation_id, annotation_boxes in boxes.items()
        for b in annotation_boxes
    ]
    AnnotationBox.objects.bulk_create(rows, batch_size=1000)


def annotation_boxes_store(*, annotation_id: int, boxes: Sequence[CheckedBox]) -> None:
    """The boxes of a new annotation (``annotations_boxes_store``)."""
    annotations_boxes_store(boxes={annotation_id: boxes})


def item_boxes_store(
    *, boxes: Mapping[int, Sequence[CheckedBox]], role: str = BoxRole.CONSENSUS, version_id: int | None = None
) -> None:
    """Replace the ``role`` boxes of each item in ``boxes`` (``{item id: boxes}``; an empty list
    removes them). Consensus boxes are the kept ones: rejected pre-boxes are left out."""
    if not boxes:
        return
    ItemBox.objects.filter(role=role, item_id__in=list(boxes)).delete()
    kept = {item_id: [b for b in item_boxes if b.outcome in KEPT] for item_id, item_boxes in boxes.items()}
    rows = [
        ItemBox(
            item_id=item_id,
            role=role,
            label_class_id=b.class_id,
            x=b.x,
            y=b.y,
            w=b.w,
            h=b.h,
            confidence=b.confidence,
            version_id=version_id,
        )
        for item_id, item_boxes in kept.items()
        for b in item_boxes
    ]
    ItemBox.objects.bulk_create(rows, batch_size=1000)
    if role == BoxRole.CONSENSUS:  # the count the browser filters on, one update per distinct count
        by_count: dict[int, list[int]] = {}
        for item_id, item_boxes in kept.items():
            by_count.setdefault(len(item_boxes), []).append(item_id)
        for n, ids in by_count.items():
            Item.objects.filter(id__in=ids).update(n_boxes=n)
