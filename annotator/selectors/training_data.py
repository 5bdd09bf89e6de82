"""What a training run reads: the labeled items and the pool as cache rows and NumPy label arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotator.kinds import kind_of
from annotator.models import Item, Project, ReviewStatus
from annotator.selectors.answers import item_answers
from annotator.selectors.classes import class_order


@dataclass
class TrainingData:
    """Everything a training run needs, as cache rows; arrays are read by the worker."""

    labeled_ids: np.ndarray  # (L,) ids of labeled items
    labeled_rows: np.ndarray  # (L,) their cache rows
    labels: np.ndarray  # (L,) class indices; (L, C) 0/1 on multi-label projects
    pool_ids: np.ndarray  # (P,) ids of items that still need a label
    pool_rows: np.ndarray  # (P,) their cache rows
    n_classes: int


def training_data(*, project: Project) -> TrainingData:
    """Labeled items (their label: the consensus, or a manager's review) and the pool; items a
    manager marked ambiguous are left out of both. The targets are the project kind's: class
    indices, or on multi-label projects a 0/1 row over the classes (an empty answer is zeros)."""
    classes = class_order(project_id=project.id)
    kind = kind_of(project)
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED, cache_row__isnull=False).exclude(
        review_status=ReviewStatus.AMBIGUOUS
    )
    rows = list(labeled.order_by("id").values_list("id", "cache_row"))
    answers = item_answers(project_id=project.id)
    if not kind.multi_label:  # a single-label item is trained on only with its one class
        rows = [(item_id, row) for item_id, row in rows if answers.get(item_id)]
    labels = kind.targets([answers.get(item_id, ()) for item_id, _ in rows], classes)
    pool = list(
        Item.objects.filter(
            project=project, status__in=[Item.Status.UNLABELED, Item.Status.SKIPPED], cache_row__isnull=False
        )
        .order_by("id")
        .values_list("id", "cache_row")
    )
    return TrainingData(
        labeled_ids=np.array([item_id for item_id, _ in rows], dtype=np.int64),
        labeled_rows=np.array([row for _, row in rows], dtype=np.int64),
        labels=labels,
        pool_ids=np.array([item_id for item_id, _ in pool], dtype=np.int64),
        pool_rows=np.array([row for _, row in pool], dtype=np.int64),
        n_classes=len(classes),
    )
