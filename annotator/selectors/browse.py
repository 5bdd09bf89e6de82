"""The data browser's reads beside the items list (``selectors.items.item_list``): one item's
history (its annotations, each model version's guess) and the project's import batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min

from annotator import paths
from annotator.formats.predictions import prediction_read
from annotator.models import Annotation, Item, LabelClass, ModelVersion, Project
from annotator.selectors.answers import annotation_answer_names


@dataclass(frozen=True)
class HistoryEntry:
    """One annotation of an item, as its history lists it: who gave which classes, when, and whether it still counts."""

    id: int
    user: str | None
    source: str
    labels: list[str]
    created: Any
    active: bool


def item_history(*, item: Item) -> list[HistoryEntry]:
    """Every annotation of ``item``, current and replaced, oldest first; two queries."""
    rows = list(
        Annotation.objects.filter(item=item)
        .order_by("id")
        .values_list("id", "user__username", "source", "created", "active")
    )
    names = annotation_answer_names(annotation_ids=[row[0] for row in rows])
    return [
        HistoryEntry(id=i, user=user, source=source, labels=names.get(i, []), created=created, active=active)
        for i, user, source, created, active in rows
    ]


@dataclass(frozen=True)
class VersionGuess:
    """What one ready model version predicted for an item."""

    version: int
    label: str
    confidence: float


def item_predictions(*, item: Item) -> list[VersionGuess]:
    """Every ready version's prediction for ``item``, oldest version first (out-of-fold for the items
    that were labeled when it trained); versions that kept none are left out. Two queries."""
    versions = ModelVersion.objects.filter(project_id=item.project_id, status=ModelVersion.Status.READY)
    names = dict(LabelClass.objects.filter(project_id=item.project_id).values_list("id", "name"))
    guesses = []
    for number, weights in versions.exclude(weights="").order_by("number").values_list("number", "weights"):
        found = prediction_read(paths.predictions_path(weights), item.id)
        if found is not None and found[0] in names:
            guesses.append(VersionGuess(version=number, label=names[found[0]], confidence=round(found[1], 4)))
    return guesses


@dataclass(frozen=True)
class ImportBatch:
    """One import of a project, as the browser's batch filter offers it."""

    number: int
    items: int
    created: Any


def import_batches(*, project: Project) -> list[ImportBatch]:
    """The project's imports that stored items, newest first, with how many items each still has. One query."""
    rows = (
        Item.objects.filter(project=project, batch__isnull=False)
        .values("batch")
        .annotate(n=Count("id"), first=Min("created"))
        .order_by("-batch")
    )
    return [ImportBatch(number=row["batch"] or 0, items=row["n"], created=row["first"]) for row in rows]
