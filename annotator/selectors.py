"""Reads: what pages, the API and the worker ask of the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery
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
    """The item (with its project) if ``user`` is a member of its project; 404 otherwise. One query."""
    items = Item.objects.select_related("project").filter(id=item_id)
    if not user.is_superuser:
        items = items.filter(project__memberships__user=user)
    item = items.first()
    if item is None:
        raise Http404("No such item.")
    return item


def item_with_names(item_id: int) -> Item:
    """The item with the names a client needs: its label's, its pre-label's and the model version's."""
    names = {"label_name": F("label__name"), "pred_label_name": F("pred_label__name")}
    return Item.objects.annotate(**names, pred_version_number=F("pred_version__number")).get(id=item_id)


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
    """One row per labeled item, in item order, with its final labels: the consensus when several
    people labeled it, every class on multi-label projects. ``annotator`` is who labeled it last."""
    latest = Annotation.objects.filter(item=OuterRef("pk"), active=True).order_by("-id")
    items = (
        Item.objects.filter(project=project, status=Item.Status.LABELED)
        .select_related("label", "pred_label", "pred_version")
        .annotate(
            last_user=Subquery(latest.values("user__username")[:1]),
            last_source=Subquery(latest.values("source")[:1]),
        )
        .order_by("id")
    )
    for item in items.iterator(chunk_size=2000):
        single = [item.label.name] if item.label_id else []
        labels = list(item.labels or []) if project.multi_label else single
        yield {
            "item": item,
            "filename": item.original_name,
            "label": None if project.multi_label else (labels[0] if labels else None),
            "labels": labels,
            "annotator": item.last_user or item.last_source or "",
            "created": item.labeled_at or item.created,
            "n_annotations": item.n_annotations,
            "agreement": item.agreement,
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


def learning_curve(*, project: Project) -> list[dict[str, Any]]:
    """One point per ready version that measured a validation accuracy, in version order:
    ``{"number", "n_labels", "val_accuracy"}``."""
    rows = (
        ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY)
        .order_by("number")
        .values("number", "n_labels", "metrics")
    )
    points = []
    for row in rows:
        accuracy = (row["metrics"] or {}).get("val_accuracy")
        if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
            points.append({"number": row["number"], "n_labels": row["n_labels"], "val_accuracy": float(accuracy)})
    return points


def labels_per_class(*, project: Project) -> list[dict[str, Any]]:
    """Labeled items per class (the item's label: the consensus where several people label it),
    every class in index order, zeros included: ``{"name", "n"}``."""
    counts = dict(
        Item.objects.filter(project=project, status=Item.Status.LABELED, label__isnull=False)
        .values("label_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("label_id", "n")
    )
    return [{"name": c.name, "n": counts.get(c.id, 0)} for c in project_classes(project=project)]


def annotator_throughput(*, project: Project) -> list[dict[str, Any]]:
    """Per annotator, from their active labels (people's, as in ``annotation_stats``), most labels first:

    - ``n_labels``;
    - ``labels_per_hour``: labels after the first per hour between their first and last label (the
      mean pace between consecutive labels; breaks count as time); ``None`` under two labels;
    - ``acceptance_rate``: accepted / (accepted + corrected) pre-labels; ``None`` when none was shown;
    - ``median_s``: median seconds per label over the labels with a measured duration.

    One aggregate query, plus one per annotator for the median (two rows read by offset).
    """
    labels = Annotation.objects.filter(
        item__project=project, source=Annotation.Source.HUMAN, active=True, user__isnull=False
    )
    rows = (
        labels.values("user_id", "user__username")
        .annotate(
            n=Count("id"),
            first=Min("created"),
            last=Max("created"),
            accepted=Count("id", filter=Q(prelabel=Annotation.Prelabel.ACCEPTED)),
            corrected=Count("id", filter=Q(prelabel=Annotation.Prelabel.CORRECTED)),
            timed=Count("duration_ms"),
        )
        .order_by("-n", "user__username")
    )
    result = []
    for row in rows:
        span_s = (row["last"] - row["first"]).total_seconds()
        shown = row["accepted"] + row["corrected"]
        median_ms = _median_duration_ms(labels.filter(user_id=row["user_id"]), row["timed"])
        result.append(
            {
                "user": row["user__username"],
                "n_labels": row["n"],
                "first": row["first"],
                "last": row["last"],
                "labels_per_hour": (row["n"] - 1) * 3600 / span_s if row["n"] > 1 and span_s > 0 else None,
                "accepted": row["accepted"],
                "corrected": row["corrected"],
                "acceptance_rate": row["accepted"] / shown if shown else None,
                "median_s": median_ms / 1000 if median_ms is not None else None,
            }
        )
    return result


def _median_duration_ms(annotations: QuerySet[Annotation], n_timed: int) -> float | None:
    """The median ``duration_ms`` of ``annotations`` (``n_timed`` of which have one), read in SQL by offset."""
    if not n_timed:
        return None
    durations = annotations.filter(duration_ms__isnull=False).order_by("duration_ms", "id")
    middle = list(durations.values_list("duration_ms", flat=True)[(n_timed - 1) // 2 : n_timed // 2 + 1])
    return sum(middle) / len(middle)


def project_dashboard(*, project: Project) -> dict[str, Any]:
    """Everything the managers' dashboard shows: the queue, the learning curve, labels per class,
    annotators' throughput, the run in progress, and the latest failure."""
    versions = ModelVersion.objects.filter(project=project).order_by("-number")
    training = versions.filter(status=ModelVersion.Status.TRAINING).values("number", "progress", "n_labels", "created")
    failed = versions.filter(status=ModelVersion.Status.FAILED).values("number", "error", "finished")
    return {
        "counts": project_counts(project=project),
        "learning_curve": learning_curve(project=project),
        "classes": labels_per_class(project=project),
        "annotators": annotator_throughput(project=project),
        "training": training.first(),
        "training_requested": Project.objects.filter(id=project.id, training_requested=True).exists(),
        "last_error": failed.first(),
    }
