"""Reads: what pages, the API and the worker ask of the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone

from annotator.models import Annotation, Item, LabelClass, Membership, ModelVersion, Project


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_get_for_user(*, user: AbstractBaseUser, project_id: int) -> Project:
    """The project if ``user`` may see it; 404 otherwise (no hint that it exists)."""
    project = project_list_for_user(user=user).filter(id=project_id).first()
    if project is None:
        raise Http404("No such project.")
    return project


def project_role(*, user: AbstractBaseUser, project: Project) -> str | None:
    if user.is_superuser:
        return Membership.Role.MANAGER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def item_get_for_user(*, user: AbstractBaseUser, item_id: int) -> Item:
    item = Item.objects.select_related("project", "pred_label", "label").filter(id=item_id).first()
    if item is None or project_role(user=user, project=item.project) is None:
        raise Http404("No such item.")
    return item


def project_classes(*, project: Project) -> list[LabelClass]:
    return list(LabelClass.objects.filter(project=project).order_by("index"))


def project_counts(*, project: Project) -> dict[str, int]:
    """Items per status, plus how many are leased right now."""
    counts = {status: 0 for status in Item.Status.values}
    for row in Item.objects.filter(project=project).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Item.Status.values)
    counts["leased"] = Item.objects.filter(
        project=project, status=Item.Status.UNLABELED, lease_until__gt=timezone.now()
    ).count()
    return counts


def model_version_current(*, project: Project) -> ModelVersion | None:
    """The newest ready version: the one whose pre-labels are being served."""
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY).order_by("-number").first()


def model_version_list(*, project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).order_by("number")


@dataclass
class TrainingData:
    """Everything a training run needs, as cache rows; arrays are read by the worker."""

    labeled_rows: np.ndarray  # (L,) cache rows of labeled items
    labels: np.ndarray  # (L,) class indices
    pool_ids: np.ndarray  # (P,) ids of items that still need a label
    pool_rows: np.ndarray  # (P,) their cache rows
    n_classes: int


def training_data(*, project: Project) -> TrainingData:
    classes = {c.id: c.index for c in LabelClass.objects.filter(project=project)}
    labeled = list(
        Item.objects.filter(project=project, status=Item.Status.LABELED, label__isnull=False, cache_row__isnull=False)
        .order_by("id")
        .values_list("cache_row", "label_id")
    )
    pool = list(
        Item.objects.filter(
            project=project, status__in=[Item.Status.UNLABELED, Item.Status.SKIPPED], cache_row__isnull=False
        )
        .order_by("id")
        .values_list("id", "cache_row")
    )
    return TrainingData(
        labeled_rows=np.array([row for row, _ in labeled], dtype=np.int64),
        labels=np.array([classes[label_id] for _, label_id in labeled], dtype=np.int64),
        pool_ids=np.array([item_id for item_id, _ in pool], dtype=np.int64),
        pool_rows=np.array([row for _, row in pool], dtype=np.int64),
        n_classes=len(classes),
    )


def export_rows(*, project: Project) -> Iterator[dict[str, Any]]:
    """One row per labeled item, from its most recent active annotation, in item order."""
    annotations = (
        Annotation.objects.filter(item__project=project, item__status=Item.Status.LABELED, active=True)
        .select_related("item", "label", "user", "item__pred_label", "item__pred_version")
        .order_by("item_id", "-id")
    )
    last_item = None
    for annotation in annotations.iterator(chunk_size=2000):
        if annotation.item_id == last_item:
            continue
        last_item = annotation.item_id
        item = annotation.item
        yield {
            "item": item,
            "filename": item.original_name,
            "label": annotation.label.name,
            "annotator": annotation.user.get_username() if annotation.user else annotation.source,
            "created": annotation.created,
            "prediction": item.pred_label.name if item.pred_label_id else None,
            "confidence": item.pred_confidence,
            "score": item.score,
            "model_version": item.pred_version.number if item.pred_version_id else None,
        }


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def annotation_stats(*, project: Project) -> dict[str, Any]:
    """How pre-labels help: the share of shown pre-labels accepted, and the median seconds per
    label with a pre-label shown and without one (people's active labels only)."""
    rows = Annotation.objects.filter(item__project=project, source=Annotation.Source.HUMAN, active=True).values_list(
        "prelabel", "duration_ms"
    )
    counts = {value: 0 for value in Annotation.Prelabel.values}
    with_pre: list[int] = []
    without: list[int] = []
    for prelabel, duration_ms in rows.iterator(chunk_size=5000):
        counts[prelabel] += 1
        if duration_ms is not None:
            (without if prelabel == Annotation.Prelabel.NONE else with_pre).append(duration_ms)
    shown = counts[Annotation.Prelabel.ACCEPTED] + counts[Annotation.Prelabel.CORRECTED]
    with_ms, without_ms = _median(with_pre), _median(without)
    return {
        "n_labels": sum(counts.values()),
        **counts,
        "acceptance_rate": counts[Annotation.Prelabel.ACCEPTED] / shown if shown else None,
        "median_s_with_prelabel": with_ms / 1000 if with_ms is not None else None,
        "median_s_without_prelabel": without_ms / 1000 if without_ms is not None else None,
    }
