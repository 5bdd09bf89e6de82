"""What a training run reads: the labeled items and the pool as cache rows and NumPy label arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from annotator.models import Item, Project, ReviewStatus
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


def multi_hot(sets: list[list[str]], index: dict[str, int]) -> np.ndarray:
    """(N, C) float32 0/1 rows for N lists of class names; names not in ``index`` are ignored."""
    rows = np.zeros((len(sets), len(index)), dtype=np.float32)
    for i, names in enumerate(sets):
        rows[i, [index[name] for name in names if name in index]] = 1.0
    return rows


def training_data(*, project: Project) -> TrainingData:
    """Labeled items (their label: the consensus, or a manager's review) and the pool; items a
    manager marked ambiguous are left out of both. On multi-label projects each labeled item
    comes with a 0/1 row over the classes (an empty list of classes is a row of zeros)."""
    classes = class_order(project_id=project.id)
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED, cache_row__isnull=False).exclude(
        review_status=ReviewStatus.AMBIGUOUS
    )
    if project.multi_label:
        rows = list(labeled.filter(labels__isnull=False).order_by("id").values_list("id", "cache_row", "labels"))
        # The filters leave out the nulls that the field types allow.
        labels = multi_hot([cast(list[str], names) for _, _, names in rows], classes.position_of_name)
    else:
        rows = list(labeled.filter(label__isnull=False).order_by("id").values_list("id", "cache_row", "label_id"))
        index_of = classes.position_of_id
        labels = np.array([index_of[cast(int, label_id)] for _, _, label_id in rows], dtype=np.int64)
    pool = list(
        Item.objects.filter(
            project=project, status__in=[Item.Status.UNLABELED, Item.Status.SKIPPED], cache_row__isnull=False
        )
        .order_by("id")
        .values_list("id", "cache_row")
    )
    return TrainingData(
        labeled_ids=np.array([item_id for item_id, _, _ in rows], dtype=np.int64),
        labeled_rows=np.array([row for _, row, _ in rows], dtype=np.int64),
        labels=labels,
        pool_ids=np.array([item_id for item_id, _ in pool], dtype=np.int64),
        pool_rows=np.array([row for _, row in pool], dtype=np.int64),
        n_classes=len(classes),
    )
