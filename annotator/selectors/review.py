"""Review of likely label errors: what a scan ranks, the review's counts, the next flagged item, an
item's votes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from django.db.models import Count, F, Q

from annotator.models import Annotation, Item, Project, ReviewAction, ReviewReason, ReviewStatus
from annotator.selectors.classes import class_order
from annotator.selectors.training_data import multi_hot


@dataclass
class ReviewData:
    """The labeled items a review scan ranks, as cache rows; arrays are read by the worker."""

    item_ids: np.ndarray  # (N,)
    label_ids: list[Any]  # (N,) what the scan judges: LabelClass ids, or sorted class names (multi-label)
    rows: np.ndarray  # (N,) cache rows
    labels: np.ndarray  # (N,) class indices; (N, C) 0/1 on multi-label projects
    n_classes: int
    class_names: list[str]


def review_data(*, project: Project) -> ReviewData:
    """Labeled items with a label and a cache row, except those still marked ambiguous with the
    label that was judged ambiguous."""
    classes = class_order(project_id=project.id)
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED, cache_row__isnull=False).order_by("id")
    # (item id, what is judged, cache row); the filters leave out the nulls the field types allow.
    rows: list[tuple[int, Any, int | None]]
    if project.multi_label:
        index = classes.position_of_name
        rows = [
            (item_id, sorted(cast(list[str], names)), row)
            for item_id, names, row, status, decided in labeled.filter(labels__isnull=False).values_list(
                "id", "labels", "cache_row", "review_status", "review_labels"
            )
            if not (status == ReviewStatus.AMBIGUOUS and sorted(decided or []) == sorted(cast(list[str], names)))
        ]
        labels = multi_hot([names for _, names, _ in rows], index)
    else:
        index_of = classes.position_of_id
        rows = list(
            labeled.filter(label__isnull=False)
            .exclude(review_status=ReviewStatus.AMBIGUOUS, review_label=F("label"))
            .values_list("id", "label_id", "cache_row")
        )
        labels = np.array([index_of[cast(int, r[1])] for r in rows], dtype=np.int64)
    return ReviewData(
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        label_ids=[r[1] for r in rows],
        rows=np.array([r[2] for r in rows], dtype=np.int64),
        labels=labels,
        n_classes=len(classes),
        class_names=classes.names,
    )


def review_counts(*, project: Project) -> dict[str, Any]:
    """The review's figures: items flagged now (by reason), decided (kept, changed, ambiguous),
    and when the last scan finished. One aggregate query."""
    flagged = Q(review_status=ReviewStatus.FLAGGED)
    reviewed = Q(review_status=ReviewStatus.REVIEWED)
    counts = Item.objects.filter(project=project).aggregate(
        flagged=Count("id", filter=flagged),
        label_issue=Count("id", filter=flagged & Q(review_reason=ReviewReason.LABEL_ISSUE)),
        disagreement=Count("id", filter=flagged & Q(review_reason=ReviewReason.DISAGREEMENT)),
        reviewed=Count("id", filter=reviewed | Q(review_status=ReviewStatus.AMBIGUOUS)),
        kept=Count("id", filter=reviewed & Q(review_action=ReviewAction.KEEP)),
        changed=Count("id", filter=reviewed & Q(review_action=ReviewAction.CHANGE)),
        ambiguous=Count("id", filter=Q(review_status=ReviewStatus.AMBIGUOUS)),
    )
    scanned = Project.objects.filter(id=project.id).values_list("review_scanned_at", flat=True).first()
    return {**counts, "scanned_at": scanned}


def _review_names() -> dict[str, F]:
    return {"label_name": F("label__name"), "suggested_name": F("review_suggested__name")}


def review_next(*, project: Project, exclude: Sequence[int] = ()) -> Item | None:
    """The flagged item most likely mislabeled (lowest label quality first), not in ``exclude``,
    with ``label_name`` and ``suggested_name`` set; ``None`` when nothing is flagged."""
    items = Item.objects.filter(project=project, review_status=ReviewStatus.FLAGGED).exclude(id__in=list(exclude))
    return items.annotate(**_review_names()).order_by("review_score", "id").first()


def review_item(*, item_id: int) -> Item:
    """An item with the names the review page shows (``label_name``, ``suggested_name``)."""
    return Item.objects.annotate(**_review_names()).get(id=item_id)


def item_votes(*, item: Item) -> list[dict[str, Any]]:
    """The active annotations of an item per class, most votes first: ``{"label", "n"}`` (on
    multi-label projects, how many chose each class)."""
    if item.labels is not None:
        sets = Annotation.objects.filter(item=item, active=True, labels__isnull=False).values_list("labels", flat=True)
        chosen = Counter(name for names in sets for name in cast(list[str], names))
        return [{"label": name, "n": n} for name, n in sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows = (
        Annotation.objects.filter(item=item, active=True, label__isnull=False)
        .values("label__name")
        .annotate(n=Count("id"))
        .order_by("-n", "label__name")
    )
    return [{"label": row["label__name"], "n": row["n"]} for row in rows]
