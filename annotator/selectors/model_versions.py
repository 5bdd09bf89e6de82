"""Model versions: the one being served, the list, the learning curve, and how far the next one is."""

from __future__ import annotations

from typing import Any, TypeGuard

from django.db.models import Count, Max, Q, QuerySet

from annotator.models import Item, ModelVersion, Project


def model_version_current(*, project: Project) -> ModelVersion | None:
    """The newest ready version: the one whose pre-labels are being served."""
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY).order_by("-number").first()


def model_version_list(*, project: Project) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(project=project).order_by("number")


def model_version_get(*, project: Project, number: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, number=number).first()


def model_version_confusion(*, version: ModelVersion) -> dict[str, Any] | None:
    """Where the version goes wrong, as its training run measured it out of fold: ``{"n", "classes",
    "cells", "per_class"}`` with ``per_class`` ``[{"name", "precision", "recall", "support"}]`` in
    class order; ``None`` for a version that did not measure it (failed, training, or older)."""
    confusion = (version.metrics or {}).get("confusion")
    if not confusion:
        return None
    names = confusion["classes"]
    per_class = [
        {"name": name, "precision": p, "recall": r, "support": n}
        for name, p, r, n in zip(names, confusion["precision"], confusion["recall"], confusion["support"], strict=False)
    ]
    return {"n": confusion["n"], "classes": names, "cells": confusion["cells"], "per_class": per_class}


def learning_curve(*, project: Project) -> list[dict[str, Any]]:
    """One point per ready version that measured a validation accuracy, in version order:
    ``{"number", "n_labels", "val_accuracy", "val_accuracy_low", "val_accuracy_high", "val_n"}``
    (the estimate's 95% interval and the labels it rests on; ``None`` for versions without them).
    A detector's version (box projects) is a point at its mAP@0.5 on held-out images, ``val_map50``."""
    rows = (
        ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY)
        .order_by("number")
        .values("number", "n_labels", "metrics")
    )
    points = []
    for row in rows:
        metrics = row["metrics"] or {}
        if "val_map50" in metrics:  # a detector's point: its mAP@0.5 on held-out images, no interval
            metrics = {
                "val_accuracy": metrics["val_map50"],
                "val_n": metrics.get("val_n"),
                "val_map50": metrics["val_map50"],
            }
        low, high, n = (metrics.get(k) for k in ("val_accuracy_low", "val_accuracy_high", "val_n"))
        if _is_number(metrics.get("val_accuracy")):
            points.append(
                {
                    "number": row["number"],
                    "n_labels": row["n_labels"],
                    "val_accuracy": float(metrics["val_accuracy"]),
                    "val_accuracy_low": float(low) if _is_number(low) else None,
                    "val_accuracy_high": float(high) if _is_number(high) else None,
                    "val_n": int(n) if _is_number(n) else None,
                }
            )
    return points


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def retrain_status(*, project: Project) -> dict[str, Any]:
    """How far the next model is: ``labels_until_next``, ``retrain_every`` less the items labeled since
    the latest version began (0 while a retrain is requested or running), and ``training``, whether
    one is. Two indexed queries; the count stops at ``retrain_every``."""
    row = (
        Project.objects.filter(id=project.id)
        .annotate(
            last=Max("model_versions__created"),
            running=Count("model_versions", filter=Q(model_versions__status=ModelVersion.Status.TRAINING)),
        )
        .values("training_requested", "retrain_every", "last", "running")
        .first()
    )
    if row is None or row["training_requested"] or row["running"]:
        return {"labels_until_next": 0, "training": row is not None}
    recent = Item.objects.filter(project=project, status=Item.Status.LABELED)
    if row["last"] is not None:
        recent = recent.filter(labeled_at__gt=row["last"])
    n = recent.order_by()[: row["retrain_every"]].count()
    return {"labels_until_next": max(0, row["retrain_every"] - n), "training": False}
