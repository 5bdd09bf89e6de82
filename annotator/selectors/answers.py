"""Stored answers read back: an item's consensus, reviewed or suggested classes and an annotation's
classes, as ``Answer`` tuples (class ids in class order) or as class names, for many rows at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from annotator.kinds import Answer
from annotator.models import AnnotationClass, AnswerRole, ItemClass

V = TypeVar("V")


def _grouped(rows: Iterable[tuple[int, V]]) -> dict[int, list[V]]:
    """``(owner id, value)`` rows, in owner order, as ``{owner id: [values]}``."""
    grouped: dict[int, list[V]] = {}
    for owner, value in rows:
        grouped.setdefault(owner, []).append(value)
    return grouped


def item_answers(
    *, role: str = AnswerRole.CONSENSUS, item_ids: Iterable[int] | None = None, project_id: int | None = None
) -> dict[int, Answer]:
    """``{item id: answer}`` for the items given by id or for a whole project; an item without a row
    (no answer, or an empty one) is absent. One query."""
    rows = ItemClass.objects.filter(role=role)
    if item_ids is not None:
        rows = rows.filter(item_id__in=list(item_ids))
    if project_id is not None:
        rows = rows.filter(item__project_id=project_id)
    ordered = rows.order_by("item_id", "label_class__index").values_list("item_id", "label_class_id")
    return {item_id: tuple(class_ids) for item_id, class_ids in _grouped(ordered.iterator(5000)).items()}


def item_answer(*, item_id: int, role: str = AnswerRole.CONSENSUS) -> Answer:
    return item_answers(role=role, item_ids=[item_id]).get(item_id, ())


def item_answer_names(*, item_ids: Iterable[int], role: str = AnswerRole.CONSENSUS) -> dict[int, list[str]]:
    """``{item id: class names in class order}``; one query."""
    rows = (
        ItemClass.objects.filter(role=role, item_id__in=list(item_ids))
        .order_by("item_id", "label_class__index")
        .values_list("item_id", "label_class__name")
    )
    return _grouped(rows)


def annotation_answers(*, annotation_ids: Iterable[int]) -> dict[int, Answer]:
    """``{annotation id: answer}``; an annotation whose answer is empty is absent. One query."""
    rows = (
        AnnotationClass.objects.filter(annotation_id__in=list(annotation_ids))
        .order_by("annotation_id", "label_class__index")
        .values_list("annotation_id", "label_class_id")
    )
    return {annotation_id: tuple(class_ids) for annotation_id, class_ids in _grouped(rows).items()}


def annotation_answer_names(*, annotation_ids: Iterable[int]) -> dict[int, list[str]]:
    """``{annotation id: class names in class order}``; one query."""
    rows = (
        AnnotationClass.objects.filter(annotation_id__in=list(annotation_ids))
        .order_by("annotation_id", "label_class__index")
        .values_list("annotation_id", "label_class__name")
    )
    return _grouped(rows)
