"""Stored answers written: an item's consensus, reviewed or suggested classes and an annotation's
classes, replaced as a whole (one delete and one insert per call, however many items)."""

from __future__ import annotations

from collections.abc import Mapping

from annotator.kinds import Answer
from annotator.models import AnnotationClass, AnswerRole, ItemClass


def item_answers_store(*, answers: Mapping[int, Answer], role: str = AnswerRole.CONSENSUS) -> None:
    """Replace the ``role`` answer of each item in ``answers`` (``{item id: answer}``; an empty
    answer removes it)."""
    if not answers:
        return
    ItemClass.objects.filter(role=role, item_id__in=list(answers)).delete()
    rows = [ItemClass(item_id=i, role=role, label_class_id=c) for i, answer in answers.items() for c in answer]
    ItemClass.objects.bulk_create(rows, batch_size=1000)


def item_answer_store(*, item_id: int, answer: Answer, role: str = AnswerRole.CONSENSUS) -> None:
    item_answers_store(answers={item_id: answer}, role=role)


def annotation_answer_store(*, annotation_id: int, answer: Answer) -> None:
    """The classes of a new annotation (annotations are history: their answer is written once)."""
    AnnotationClass.objects.bulk_create(
        [AnnotationClass(annotation_id=annotation_id, label_class_id=c) for c in answer]
    )
