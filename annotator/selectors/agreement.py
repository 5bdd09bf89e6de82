"""Agreement between annotators on items labeled by several of them: Fleiss' kappa and per-person agreement."""

from __future__ import annotations

from typing import Any

import numpy as np

from annotator.models import Annotation, AnnotationClass, Project
from annotator.selectors.answers import item_answers
from annotator.selectors.classes import class_order


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of an (items, classes) matrix of votes, every item rated by the same number of people."""
    if counts.ndim != 2 or len(counts) == 0:
        return None
    n = counts.sum(axis=1)
    if n.min() < 2 or n.min() != n.max():
        return None
    raters = float(n[0])
    p_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    p_class = counts.sum(axis=0) / counts.sum()
    chance = float((p_class**2).sum())
    if chance >= 1.0:
        return None
    return float((p_item.mean() - chance) / (1.0 - chance))


def agreement_stats(*, project: Project) -> dict[str, Any]:
    """How far annotators agree on items labeled by several of them (single-label projects):
    the items' mean agreement, Fleiss' kappa over the items with the full ``labels_per_item``
    votes, and each annotator's agreement with the consensus label. Two queries."""
    rows = list(
        AnnotationClass.objects.filter(
            annotation__item__project=project,
            annotation__item__n_annotations__gte=2,
            annotation__active=True,
            annotation__source=Annotation.Source.HUMAN,
        ).values_list("annotation__item_id", "annotation__user__username", "label_class_id")
    )
    consensus = item_answers(item_ids={item_id for item_id, _, _ in rows})
    position = class_order(project_id=project.id).position_of_id
    votes: dict[int, np.ndarray] = {}
    per_user: dict[str, list[int]] = {}
    for item_id, username, label_id in rows:
        votes.setdefault(item_id, np.zeros(len(position), dtype=np.int64))[position[label_id]] += 1
        per_user.setdefault(username or "(deleted)", []).append(int(consensus.get(item_id) == (label_id,)))
    shares = [v.max() / v.sum() for v in votes.values()]
    full = [v for v in votes.values() if v.sum() == project.labels_per_item]
    return {
        "items": len(votes),
        "mean_agreement": float(np.mean(shares)) if shares else None,
        "fleiss_kappa": fleiss_kappa(np.array(full)) if full else None,
        "annotators": [
            {"username": name, "n": len(hits), "agreement_with_consensus": sum(hits) / len(hits)}
            for name, hits in sorted(per_user.items())
        ],
    }
