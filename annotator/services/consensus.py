"""Consensus: what an item's active annotations add up to (its label, how many people labeled it,
their agreement, whether it is done). A manager's review decides over the annotators' votes."""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Coalesce

from annotator.kinds import Answer, kind_of
from annotator.kinds.boxes import KEPT, boxes_consensus
from annotator.models import Annotation, Item
from annotator.selectors.answers import annotation_answers
from annotator.selectors.boxes import annotation_boxes
from annotator.selectors.classes import class_order
from annotator.services.boxes import item_boxes_store


def item_consensus(*, item: Item, now: Any) -> tuple[dict[str, Any], Answer]:
    """The item's fields that follow from its active annotations (how many people labeled it, their
    agreement, whether it is done: ``labels_per_item`` people or an import), and its answer.

    The answer is what the project's kind makes of the annotations (``Kind.consensus``: the majority
    class, or each class chosen by at least half), unless a manager's review decided it. On box
    projects the item's consensus boxes are stored here too (``kinds.boxes.boxes_consensus``), and
    the answer is the classes present in them.
    """
    project = item.project
    annotations = list(
        Annotation.objects.filter(item_id=item.id, active=True).order_by("id").values_list("id", "source")
    )
    if not annotations:
        unlabeled: dict[str, Any] = {
            "status": Item.Status.UNLABELED,
            "labeled_at": None,
            "n_annotations": 0,
            "agreement": None,
        }
        if kind_of(project).boxes:
            item_boxes_store(boxes={item.id: []})
        return unlabeled, ()
    stored = annotation_answers(annotation_ids=[annotation_id for annotation_id, _ in annotations])
    answers = [stored.get(annotation_id, ()) for annotation_id, _ in annotations]
    n_human = sum(source == Annotation.Source.HUMAN for _, source in annotations)
    done = n_human >= project.labels_per_item or n_human < len(annotations)
    kind = kind_of(project)
    consensus = kind.consensus(answers)
    reviewed = [a for a, (_, source) in zip(answers, annotations, strict=True) if source == Annotation.Source.REVIEW]
    answer = reviewed[-1] if reviewed else consensus.answer  # a manager's review decides over the votes
    agreement: float | None = consensus.agreement
    if kind.boxes:
        ids, sources = [a for a, _ in annotations], [source for _, source in annotations]
        answer, agreement = _boxes_consensus(item.id, project.id, ids, sources)
        agreement = agreement if project.labels_per_item > 1 else None
    fields: dict[str, Any] = {
        "status": Item.Status.LABELED if done else Item.Status.UNLABELED,
        "labeled_at": Coalesce("labeled_at", now) if done else None,
        "n_annotations": n_human,
        "agreement": agreement,
    }
    return fields, answer


def _boxes_consensus(
    item_id: int, project_id: int, annotation_ids: list[int], sources: list[str]
) -> tuple[Answer, float]:
    """Store the item's consensus boxes, those of the annotation that agrees most with the others (a
    review's, should there be one), and return the classes present and the people's agreement."""
    stored = annotation_boxes(annotation_ids=annotation_ids)
    boxes = [stored.get(annotation_id, []) for annotation_id in annotation_ids]
    kept = [[box for box in answer if box.outcome in KEPT] for answer in boxes]
    people = [k for k, source in enumerate(sources) if source != Annotation.Source.REVIEW]
    chosen, agreement = boxes_consensus([kept[k] for k in people]) if people else (0, 1.0)
    reviews = [k for k, source in enumerate(sources) if source == Annotation.Source.REVIEW]
    winner = kept[reviews[-1]] if reviews else kept[people[chosen]]
    item_boxes_store(boxes={item_id: winner})
    return class_order(project_id=project_id).answer([box.class_id for box in winner]), agreement
