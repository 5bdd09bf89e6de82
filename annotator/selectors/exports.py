"""The rows an export writes: one per labeled item with its final labels and who gave them."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db.models import OuterRef, Subquery

from annotator.kinds import kind_of
from annotator.models import Annotation, AnswerRole, Item, ItemClass, Project, ReviewStatus


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
