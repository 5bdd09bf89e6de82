"""The managers' dashboard: how pre-labels help, annotators' throughput, and every figure in one dict."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import Count, Max, Min, Q, QuerySet

from annotator.models import Annotation, ModelVersion, Project
from annotator.selectors.agreement import agreement_stats
from annotator.selectors.classes import class_coverage, labels_per_class
from annotator.selectors.model_versions import learning_curve
from annotator.selectors.projects import project_counts


def annotation_stats(*, project: Project) -> dict[str, Any]:
    """How pre-labels help: the share of shown pre-labels accepted, and the median seconds per
    label with a pre-label shown and without one (people's active labels only). One aggregate
    query and up to two for the medians (read in SQL by offset): the project page polls this."""
    rows = Annotation.objects.filter(item__project=project, source=Annotation.Source.HUMAN, active=True)
    none = Annotation.Prelabel.NONE
    counts = rows.aggregate(
        **{value: Count("id", filter=Q(prelabel=value)) for value in Annotation.Prelabel.values},
        timed_with=Count("duration_ms", filter=~Q(prelabel=none)),
        timed_without=Count("duration_ms", filter=Q(prelabel=none)),
    )
    with_ms = _median_duration_ms(rows.exclude(prelabel=none), counts.pop("timed_with"))
    without_ms = _median_duration_ms(rows.filter(prelabel=none), counts.pop("timed_without"))
    shown = counts[Annotation.Prelabel.ACCEPTED] + counts[Annotation.Prelabel.CORRECTED]
    return {
        "n_labels": sum(counts.values()),
        **counts,
        "acceptance_rate": counts[Annotation.Prelabel.ACCEPTED] / shown if shown else None,
        "median_s_with_prelabel": with_ms / 1000 if with_ms is not None else None,
        "median_s_without_prelabel": without_ms / 1000 if without_ms is not None else None,
    }


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
    # The filter leaves out the nulls that the field's type allows.
    middle = cast(
        list[int], list(durations.values_list("duration_ms", flat=True)[(n_timed - 1) // 2 : n_timed // 2 + 1])
    )
    return sum(middle) / len(middle)


def project_dashboard(*, project: Project) -> dict[str, Any]:
    """Everything the managers' dashboard shows: the queue, the learning curve, labels per class
    (and the classes with too few), annotators' throughput, the run in progress, and the latest failure."""
    versions = ModelVersion.objects.filter(project=project).order_by("-number")
    training = versions.filter(status=ModelVersion.Status.TRAINING).values("number", "progress", "n_labels", "created")
    failed = versions.filter(status=ModelVersion.Status.FAILED).values("number", "error", "finished")
    classes = labels_per_class(project=project)
    return {
        "counts": project_counts(project=project),
        "learning_curve": learning_curve(project=project),
        "classes": classes,
        "under_covered": class_coverage(project=project, per_class=classes),
        "annotators": annotator_throughput(project=project),
        "training": training.first(),
        "training_requested": Project.objects.filter(id=project.id, training_requested=True).exists(),
        "last_error": failed.first(),
        "agreement": agreement_stats(project=project) if project.labels_per_item > 1 else None,
    }
