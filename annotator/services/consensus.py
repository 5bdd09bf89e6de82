"""Consensus: what an item's active annotations add up to (its label, how many people labeled it,
their agreement, whether it is done). A manager's review decides over the annotators' votes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models.functions import Coalesce

from annotator.models import Annotation, Item


def item_consensus(*, item_id: int, labels_per_item: int, now: Any, multi_label: bool = False) -> dict[str, Any]:
    """The item's fields that follow from its active annotations: consensus label, how many people
    labeled it, their agreement, and whether it is done (``labels_per_item`` people or an import).

    Single-label: the majority class; agreement is the share of votes it got. Multi-label: each
    class chosen by at least half of the annotators; agreement is the mean, over the classes anyone
    chose, of the share of annotators who agree with the consensus on that class.
    """
    rows = list(
        Annotation.objects.filter(item_id=item_id, active=True)
        .order_by("id")
        .values_list("label_id", "labels", "source")
    )
    human = [row for row in rows if row[2] == Annotation.Source.HUMAN]
    if not rows:
        return {
            "status": Item.Status.UNLABELED,
            "label": None,
            "labels": None,
            "labeled_at": None,
            "n_annotations": 0,
            "agreement": None,
        }
    done = len(human) >= labels_per_item or len(human) < len(rows)
    fields: dict[str, Any] = {
        "status": Item.Status.LABELED if done else Item.Status.UNLABELED,
        "labeled_at": Coalesce("labeled_at", now) if done else None,
        "n_annotations": len(human),
    }
    if multi_label:
        sets = [set(names or []) for _, names, _ in rows]
        chosen = Counter(name for names in sets for name in names)
        consensus = sorted(name for name, n in chosen.items() if 2 * n >= len(sets))
        shares = [max(n, len(sets) - n) / len(sets) for n in chosen.values()]
        reviewed_sets = [names for _, names, source in rows if source == Annotation.Source.REVIEW and names is not None]
        if reviewed_sets:  # a manager's review decides over the votes
            consensus = sorted(reviewed_sets[-1])
        fields |= {"labels": consensus, "agreement": sum(shares) / len(shares) if shares else 1.0}
        return fields
    votes = Counter(label for label, _, _ in rows if label is not None)
    label_id, top = votes.most_common(1)[0]
    reviewed = [label for label, _, source in rows if source == Annotation.Source.REVIEW and label is not None]
    if reviewed:  # a manager's review decides over the votes
        label_id = reviewed[-1]
    return fields | {"label_id": label_id, "agreement": top / sum(votes.values())}
