"""The rows an export writes: one per labeled item with its final labels and who gave them, and on
box projects its boxes."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

from django.db.models import OuterRef, Subquery

from annotator.kinds import kind_of
from annotator.kinds.boxes import Box
from annotator.models import Annotation, AnswerRole, BoxRole, Item, ItemBox, ItemClass, Project, ReviewStatus

#: Items whose boxes one query reads: their rows wait meanwhile, about 5 kB each (500 measured 2.5 MB
#: more at 2,000 items than the classification export, 100 0.6 MB; 1,000 queries at 100,000 items).
BOX_CHUNK = 100


def export_rows(*, project: Project, include_ambiguous: bool = False) -> Iterator[dict[str, Any]]:
    """One row per labeled item, in item order, with its final labels: the consensus when several
    people labeled it, every class on multi-label projects. ``annotator`` is who labeled it last.
    Items a manager marked ambiguous are left out unless ``include_ambiguous``."""
    latest = Annotation.objects.filter(item=OuterRef("pk"), active=True).order_by("-id")
    items = (
        Item.objects.filter(project=project, status=Item.Status.LABELED)
        .select_related("pred_label", "pred_version")
        .annotate(
            last_user=Subquery(latest.values("user__username")[:1]),
            last_source=Subquery(latest.values("source")[:1]),
        )
        .order_by("id")
    )
    if not include_ambiguous:
        items = items.exclude(review_status=ReviewStatus.AMBIGUOUS)
    kind = kind_of(project)
    answers = _answers_in_item_order(project)
    pending = next(answers, None)
    for item in items.iterator(chunk_size=2000):
        # Both streams go in item order: skip the answers of items left out, take this item's.
        while pending is not None and pending[0] < item.id:
            pending = next(answers, None)
        labels = pending[1] if pending is not None and pending[0] == item.id else []
        yield {
            "item": item,
            "filename": item.original_name,
            "label": kind.as_json(labels)["label"],
            "labels": labels,
            "annotator": item.last_user or item.last_source or "",
            "created": item.labeled_at or item.created,
            "n_annotations": item.n_annotations,
            "agreement": item.agreement,
            "prediction": item.pred_label.name if item.pred_label is not None else None,
            "confidence": item.pred_confidence,
            "score": item.score,
            "model_version": item.pred_version.number if item.pred_version is not None else None,
        }


def _answers_in_item_order(project: Project) -> Iterator[tuple[int, list[str]]]:
    """``(item id, class names)`` of the project's labeled items with an answer, in item order: a
    stream read beside the items' (memory stays flat whatever the project's size)."""
    rows = (
        ItemClass.objects.filter(role=AnswerRole.CONSENSUS, item__project=project, item__status=Item.Status.LABELED)
        .order_by("item_id", "label_class__index")
        .values_list("item_id", "label_class__name")
    )
    for item_id, group in groupby(rows.iterator(chunk_size=2000), key=itemgetter(0)):
        yield item_id, [name for _, name in group]


def export_box_rows(*, project: Project, include_ambiguous: bool = False) -> Iterator[dict[str, Any]]:
    """``export_rows`` of a box project, each with ``boxes``: the item's consensus boxes as ``Box``
    values (class names, pixels of the displayed image; empty: nothing here), read for
    ``BOX_CHUNK`` items at a time, in one query each."""
    rows = export_rows(project=project, include_ambiguous=include_ambiguous)
    while chunk := list(islice(rows, BOX_CHUNK)):
        boxes = _consensus_boxes(item_ids=[row["item"].id for row in chunk])
        for row in chunk:
            row["boxes"] = boxes.get(row["item"].id, [])
            yield row


def _consensus_boxes(*, item_ids: list[int]) -> dict[int, list[Box]]:
    """``{item id: its consensus boxes}``, in the order they were stored; items without boxes are absent."""
    rows = (
        ItemBox.objects.filter(item_id__in=item_ids, role=BoxRole.CONSENSUS)
        .order_by("item_id", "id")
        .values_list("item_id", "label_class__name", "x", "y", "w", "h")
    )
    found: dict[int, list[Box]] = {}
    for item_id, label, x, y, w, h in rows:
        found.setdefault(item_id, []).append(Box(label, x, y, w, h))
    return found
