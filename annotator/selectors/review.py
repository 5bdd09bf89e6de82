"""Review of likely label errors: what a scan ranks, the review's counts, the next flagged item, an
item's votes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, F, Q

from annotator.kinds import Answer, kind_of
from annotator.models import (
    AnnotationClass,
    AnswerRole,
    BoxRole,
    Item,
    ItemBox,
    ItemClass,
    Project,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
)
from annotator.selectors.answers import item_answers
from annotator.selectors.classes import class_order


@dataclass
class ReviewData:
    """The labeled items a review scan ranks, as cache rows; arrays are read by the worker."""

    item_ids: np.ndarray  # (N,)
    answers: list[Answer]  # (N,) what the scan judges: each item's answer
    rows: np.ndarray  # (N,) cache rows
    labels: np.ndarray  # (N,) class indices; (N, C) 0/1 on multi-label projects
    n_classes: int
    class_ids: list[int]  # (C,) the class of each output


def review_data(*, project: Project) -> ReviewData:
    """Labeled items with an answer (on single-label projects, a class) and a cache row, except
    those still marked ambiguous with the answer that was judged ambiguous."""
    classes = class_order(project_id=project.id)
    kind = kind_of(project)
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED, cache_row__isnull=False).order_by("id")
    given = item_answers(project_id=project.id)
    decided = item_answers(project_id=project.id, role=AnswerRole.REVIEWED)
    rows = [
        (item_id, given.get(item_id, ()), row)
        for item_id, row, status in labeled.values_list("id", "cache_row", "review_status")
        if (kind.multi_label or item_id in given)
        and not (status == ReviewStatus.AMBIGUOUS and decided.get(item_id, ()) == given.get(item_id, ()))
    ]
    return ReviewData(
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        answers=[r[1] for r in rows],
        rows=np.array([r[2] for r in rows], dtype=np.int64),
        labels=kind.targets([r[1] for r in rows], classes),
        n_classes=len(classes),
        class_ids=classes.ids,
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
        manual=Count("id", filter=flagged & Q(review_reason=ReviewReason.MANUAL)),
        reviewed=Count("id", filter=reviewed | Q(review_status=ReviewStatus.AMBIGUOUS)),
        kept=Count("id", filter=reviewed & Q(review_action=ReviewAction.KEEP)),
        changed=Count("id", filter=reviewed & Q(review_action=ReviewAction.CHANGE)),
        ambiguous=Count("id", filter=Q(review_status=ReviewStatus.AMBIGUOUS)),
    )
    scanned = Project.objects.filter(id=project.id).values_list("review_scanned_at", flat=True).first()
    return {**counts, "scanned_at": scanned}


def review_next(*, project: Project, exclude: Sequence[int] = ()) -> Item | None:
    """The flagged item most likely mislabeled (lowest label quality first), not in ``exclude``, with
    its project; ``None`` when nothing is flagged."""
    items = Item.objects.filter(project=project, review_status=ReviewStatus.FLAGGED).exclude(id__in=list(exclude))
    # Unscored flags last on every database (PostgreSQL's default, which the review index follows).
    return items.select_related("project").order_by(F("review_score").asc(nulls_last=True), "id").first()


def review_item(*, item_id: int) -> Item:
    """An item with its project, as the review shows it (its answers: ``review_answer_names``)."""
    return Item.objects.select_related("project").get(id=item_id)


def review_answer_names(*, item: Item) -> dict[str, list[str] | None]:
    """The class names of an item's answer (``given``) and of the scan's suggestion (``suggested``;
    ``None`` when there is none). One query."""
    rows = (
        ItemClass.objects.filter(item=item, role__in=[AnswerRole.CONSENSUS, AnswerRole.SUGGESTED])
        .order_by("label_class__index")
        .values_list("role", "label_class__name")
    )
    given: list[str] = []
    suggested: list[str] = []
    for role, name in rows:
        (given if role == AnswerRole.CONSENSUS else suggested).append(name)
    return {"given": given, "suggested": suggested if item.review_confidence is not None else None}


def review_suggested_boxes(*, item: Item) -> list[dict[str, Any]]:
    """The box scan's suggested boxes of an item: ``[{"label", "x", "y", "w", "h", "confidence",
    "issue"}]``, the likely error each shows (``BoxIssueKind``) or ``None``, worst first; one query."""
    rows = ItemBox.objects.filter(item_id=item.id, role=BoxRole.SUGGESTED).order_by("id")
    fields = ("label_class__name", "x", "y", "w", "h", "confidence", "issue")
    return [
        {"label": label, "x": x, "y": y, "w": w, "h": h, "confidence": confidence, "issue": issue or None}
        for label, x, y, w, h, confidence, issue in rows.values_list(*fields)
    ]


def item_votes(*, item: Item) -> list[dict[str, Any]]:
    """The active annotations of an item per class, most votes first: ``{"label", "n"}`` (on
    multi-label projects, how many chose each class)."""
    rows = (
        AnnotationClass.objects.filter(annotation__item=item, annotation__active=True)
        .values("label_class__name")
        .annotate(n=Count("id"))
        .order_by("-n", "label_class__name")
    )
    return [{"label": row["label_class__name"], "n": row["n"]} for row in rows]
