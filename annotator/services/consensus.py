"""Consensus: what an item's active annotations add up to (its label, how many people labeled it,
their agreement, whether it is done). A manager's review decides over the annotators' votes."""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Coalesce

from annotator.kinds import Answer, kind_of
from annotator.models import Annotation, Item
from annotator.selectors.answers import annotation_answers


def item_consensus(*, item: Item, now: Any) -> tuple[dict[str, Any], Answer]:
    """The item's fields that follow from its active annotations (how many people labeled it, their
    agreement, whether it is done: ``labels_per_item`` people or an import), and its answer.

    The answer is what the project's kind makes of the annotations (``Kind.consensus``: the majority
    class, or each class chosen by at least half), unless a manager's review decided it.
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
        return unlabeled, ()
    stored = annotation_answers(annotation_ids=[annotation_id for annotation_id, _ in annotations])
    answers = [stored.get(annotation_id, ()) for annotation_id, _ in annotations]
    n_human = sum(source == Annotation.Source.HUMAN for _, source in annotations)
    done = n_human >= project.labels_per_item or n_human < len(annotations)
    consensus = kind_of(project).consensus(answers)
    reviewed = [a for a, (_, source) in zip(answers, annotations, strict=True) if source == Annotation.Source.REVIEW]
    answer = reviewed[-1] if reviewed else consensus.answer  # a manager's review decides over the votes
    fields: dict[str, Any] = {
        "status": Item.Status.LABELED if done else Item.Status.UNLABELED,
        "labeled_at": Coalesce("labeled_at", now) if done else None,
        "n_annotations": n_human,
        "agreement": consensus.agreement,
    }
    return fields, answer
