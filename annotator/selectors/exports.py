"""The rows an export writes: one per labeled item with its final labels and who gave them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import OuterRef, Subquery

from annotator.models import Annotation, Item, Project, ReviewStatus


def export_rows(*, project: Project, include_ambiguous: bool = False) -> Iterator[dict[str, Any]]:
    """One row per labeled item, in item order, with its final labels: the consensus when several
    people labeled it, every class on multi-label projects. ``annotator`` is who labeled it last.
    Items a manager marked ambiguous are left out unless ``include_ambiguous``."""
    latest = Annotation.objects.filter(item=OuterRef("pk"), active=True).order_by("-id")
    items = (
        Item.objects.filter(project=project, status=Item.Status.LABELED)
        .select_related("label", "pred_label", "pred_version")
        .annotate(
            last_user=Subquery(latest.values("user__username")[:1]),
            last_source=Subquery(latest.values("source")[:1]),
        )
        .order_by("id")
    )
    if not include_ambiguous:
        items = items.exclude(review_status=ReviewStatus.AMBIGUOUS)
    for item in items.iterator(chunk_size=2000):
        single = [item.label.name] if item.label is not None else []
        labels = list(item.labels or []) if project.multi_label else single
        yield {
            "item": item,
            "filename": item.original_name,
            "label": None if project.multi_label else (labels[0] if labels else None),
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
