"""Reads: what pages, the API and the worker ask of the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from annotator.models import (
    Annotation,
    Item,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
)
from ml.selection import MIN_CLASS_LABELS

#: The Django permission ("Can add project") that lets a user create projects, and so become their
#: manager. An admin grants it on the admin's user or group page; superusers have every permission.
PROJECT_CREATE_PERMISSION = "annotator.add_project"
#: What the page and the API say to someone without it.
PROJECT_CREATE_REFUSED = (
    "You do not have the permission to create projects. Ask an admin to give it to you "
    "(“Can add project”, on your user or group page in the admin)."
)


def user_can_create_projects(*, user: AbstractBaseUser) -> bool:
    return user.has_perm(PROJECT_CREATE_PERMISSION)


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


def prelabels_visible(*, user: AbstractBaseUser, project: Project) -> bool:
    """Whether ``user`` may see the model's guesses on the project's items (pre-labels,
    probabilities, scores): always a manager; an annotator when the project shows pre-labels."""
    return project.show_prelabels or project_role(user=user, project=project) == Membership.Role.MANAGER


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

    labeled_ids: np.ndarray  # (L,) ids of labeled items
    labeled_rows: np.ndarray  # (L,) their cache rows
    labels: np.ndarray  # (L,) class indices; (L, C) 0/1 on multi-label projects
    pool_ids: np.ndarray  # (P,) ids of items that still need a label
    pool_rows: np.ndarray  # (P,) their cache rows
    n_classes: int


def _multi_hot(sets: list[list[str]], index: dict[str, int]) -> np.ndarray:
    """(N, C) float32 0/1 rows for N lists of class names; names not in ``index`` are ignored."""
    rows = np.zeros((len(sets), len(index)), dtype=np.float32)
    for i, names in enumerate(sets):
        rows[i, [index[name] for name in names if name in index]] = 1.0
    return rows


@dataclass(frozen=True)
class ClassOrder:
    """A project's classes in output order. A class's position here is its model output and its
    training target, for training, publishing pre-labels and the review scan alike; ``LabelClass.index``
    only orders them (a deleted class leaves a gap in it)."""

    ids: list[int]
    names: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def position_of_id(self) -> dict[int, int]:
        return {class_id: i for i, class_id in enumerate(self.ids)}

    @property
    def position_of_name(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def class_order(*, project_id: int) -> ClassOrder:
    """The one numbering of a project's classes, used by training, publishing, review and agreement."""
    rows = list(LabelClass.objects.filter(project_id=project_id).order_by("index").values_list("id", "name"))
    return ClassOrder(ids=[class_id for class_id, _ in rows], names=[name for _, name in rows])


def label_class_uses(*, label_class: LabelClass) -> dict[str, int]:
    """How many stored rows refer to a class, by kind (``labeled`` items, ``annotations`` with their
    history, ``predicted`` items, ``reviewed`` items: a decision or the scan's suggestion), counting
    both references to the class and, on multi-label projects, lists that name it. Only a class
    with none of them may be deleted: the others would lose answers or shift model outputs."""
    items = Item.objects.filter(project_id=label_class.project_id)
    reviewed = Q(review_label=label_class) | Q(review_suggested=label_class)
    uses = items.aggregate(
        labeled=Count("id", filter=Q(label=label_class)),
        predicted=Count("id", filter=Q(pred_label=label_class)),
        reviewed=Count("id", filter=reviewed),
    )
    uses["annotations"] = Annotation.objects.filter(label=label_class).count()
    name = label_class.name
    lists = Q(labels__isnull=False) | Q(review_labels__isnull=False) | Q(review_suggested_labels__isnull=False)
    rows = items.filter(lists).values_list("labels", "review_labels", "review_suggested_labels")
    for labels, decided, suggested in rows.iterator(2000):
        uses["labeled"] += name in (labels or [])
        uses["reviewed"] += name in (decided or []) or name in (suggested or [])
    named = Annotation.objects.filter(item__project_id=label_class.project_id, labels__isnull=False)
    uses["annotations"] += sum(name in names for names in named.values_list("labels", flat=True).iterator(2000))
    return {kind: n for kind, n in uses.items() if n}


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
        labels = _multi_hot([names for _, _, names in rows], classes.position_of_name)
    else:
        rows = list(labeled.filter(label__isnull=False).order_by("id").values_list("id", "cache_row", "label_id"))
        index_of = classes.position_of_id
        labels = np.array([index_of[label_id] for _, _, label_id in rows], dtype=np.int64)
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


def export_rows(*, project: Project, include_ambiguous: bool = False) -> Iterator[dict[str, Any]]:
    """One row per labeled item, in item order, with its final labels: the consensus when several
    people labeled it, every class on multi-label projects. ``annotator`` is who labeled it last.
    Items a manager marked ambiguous are left out unless ``include_ambiguous``."""
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
    if not include_ambiguous:
        items = items.exclude(review_status=ReviewStatus.AMBIGUOUS)
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
    ``{"number", "n_labels", "val_accuracy", "val_accuracy_low", "val_accuracy_high", "val_n"}``
    (the estimate's 95% interval and the labels it rests on; ``None`` for versions without them)."""
    rows = (
        ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY)
        .order_by("number")
        .values("number", "n_labels", "metrics")
    )
    points = []
    for row in rows:
        metrics = row["metrics"] or {}
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def labels_per_class(*, project: Project) -> list[dict[str, Any]]:
    """Labeled items per class (the item's final label: the consensus where several people label
    it; on multi-label projects an item counts once for each of its classes), every class in index
    order, zeros included: ``{"name", "n"}``."""
    classes = project_classes(project=project)
    if project.multi_label:
        by_name = _multi_label_counts(project=project)
        return [{"name": c.name, "n": by_name.get(c.name, 0)} for c in classes]
    counts = dict(
        Item.objects.filter(project=project, status=Item.Status.LABELED, label__isnull=False)
        .values("label_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("label_id", "n")
    )
    return [{"name": c.name, "n": counts.get(c.id, 0)} for c in classes]


#: Classes get a coverage warning once the project has this many labeled items per class.
COVERAGE_LABELS_PER_CLASS = 10


def class_coverage(*, project: Project, per_class: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The classes with fewer than ``MIN_CLASS_LABELS`` labels, ``[{"name", "n"}]`` in class order,
    once the project has ``COVERAGE_LABELS_PER_CLASS`` labeled items per class (before that, few
    labels anywhere is expected): ``[]`` otherwise. ``per_class``: ``labels_per_class``, if read already."""
    per_class = labels_per_class(project=project) if per_class is None else per_class
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED).count()
    if not per_class or labeled < COVERAGE_LABELS_PER_CLASS * len(per_class):
        return []
    return [{"name": row["name"], "n": row["n"]} for row in per_class if row["n"] < MIN_CLASS_LABELS]


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


def _multi_label_counts(*, project: Project) -> dict[str, int]:
    """Labeled items per class name on a multi-label project, counted in SQL over each item's JSON list."""
    postgresql = connection.vendor == "postgresql"
    elements = "jsonb_array_elements_text(i.labels) AS j(value)" if postgresql else "json_each(i.labels) AS j"
    sql = (
        f"SELECT j.value, COUNT(*) FROM {Item._meta.db_table} i CROSS JOIN {elements}"
        " WHERE i.project_id = %s AND i.status = %s GROUP BY j.value"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.id, Item.Status.LABELED])
        return {str(name): n for name, n in cursor.fetchall()}


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


def project_roles_for_user(*, user: AbstractBaseUser) -> dict[int, str]:
    """``{project_id: role}`` for every project ``user`` is a member of."""
    return dict(Membership.objects.filter(user=user).values_list("project_id", "role"))


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def item_list(
    *,
    project: Project,
    status: str | None = None,
    label: str | None = None,
    predicted: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    order: str = "id",
) -> QuerySet[Item]:
    """A project's items, filtered (each filter is optional) and ordered by ``id``, ``-score`` or ``-priority``."""
    items = Item.objects.filter(project=project)
    if status:
        items = items.filter(status=status)
    if label and project.multi_label:
        # JSON containment where the database has it; elsewhere (SQLite) the quoted name in the JSON text.
        if connection.vendor == "postgresql":
            items = items.filter(labels__contains=[label])
        else:
            items = items.filter(labels__icontains=f'"{label}"')
    elif label:
        items = items.filter(label__name=label)
    if predicted:
        items = items.filter(pred_label__name=predicted)
    if min_score is not None:
        items = items.filter(score__gte=min_score)
    if max_score is not None:
        items = items.filter(score__lte=max_score)
    names = {"label_name": F("label__name"), "pred_label_name": F("pred_label__name")}
    return items.annotate(**names, pred_version_number=F("pred_version__number")).order_by(order, "id")


def annotation_list(
    *, project: Project, user_id: int | None = None, active: bool | None = None
) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(item__project=project).select_related("label", "user")
    if user_id is not None:
        annotations = annotations.filter(user_id=user_id)
    if active is not None:
        annotations = annotations.filter(active=active)
    return annotations.order_by("-id")


# Review of likely label errors ----------------------------------------------------------------------


@dataclass
class ReviewData:
    """The labeled items a review scan ranks, as cache rows; arrays are read by the worker."""

    item_ids: np.ndarray  # (N,)
    label_ids: list[Any]  # (N,) what the scan judges: LabelClass ids, or sorted class names (multi-label)
    rows: np.ndarray  # (N,) cache rows
    labels: np.ndarray  # (N,) class indices; (N, C) 0/1 on multi-label projects
    n_classes: int
    class_names: list[str]


def review_data(*, project: Project) -> ReviewData:
    """Labeled items with a label and a cache row, except those still marked ambiguous with the
    label that was judged ambiguous."""
    classes = class_order(project_id=project.id)
    labeled = Item.objects.filter(project=project, status=Item.Status.LABELED, cache_row__isnull=False).order_by("id")
    if project.multi_label:
        index = classes.position_of_name
        rows = [
            (item_id, sorted(names), row)
            for item_id, names, row, status, decided in labeled.filter(labels__isnull=False).values_list(
                "id", "labels", "cache_row", "review_status", "review_labels"
            )
            if not (status == ReviewStatus.AMBIGUOUS and sorted(decided or []) == sorted(names))
        ]
        labels = _multi_hot([names for _, names, _ in rows], index)
    else:
        index_of = classes.position_of_id
        rows = list(
            labeled.filter(label__isnull=False)
            .exclude(review_status=ReviewStatus.AMBIGUOUS, review_label=F("label"))
            .values_list("id", "label_id", "cache_row")
        )
        labels = np.array([index_of[r[1]] for r in rows], dtype=np.int64)
    return ReviewData(
        item_ids=np.array([r[0] for r in rows], dtype=np.int64),
        label_ids=[r[1] for r in rows],
        rows=np.array([r[2] for r in rows], dtype=np.int64),
        labels=labels,
        n_classes=len(classes),
        class_names=classes.names,
    )


def review_counts(*, project: Project) -> dict[str, Any]:
    """The review's figures: items flagged now (by reason), decided (kept, changed, ambiguous),
    and when the last scan finished. One aggregate query."""
    flagged = Q(review_status=ReviewStatus.FLAGGED)
    reviewed = Q(review_status=ReviewStatus.REVIEWED)
    counts = Item.objects.filter(project=project).aggregate(
        flagged=Count("id", filter=flagged),
        label_issue=Count("id", filter=flagged & Q(review_reason=ReviewReason.LABEL_ISSUE)),
        disagreement=Count("id", filter=flagged & Q(review_reason=ReviewReason.DISAGREEMENT)),
        reviewed=Count("id", filter=reviewed | Q(review_status=ReviewStatus.AMBIGUOUS)),
        kept=Count("id", filter=reviewed & Q(review_action=ReviewAction.KEEP)),
        changed=Count("id", filter=reviewed & Q(review_action=ReviewAction.CHANGE)),
        ambiguous=Count("id", filter=Q(review_status=ReviewStatus.AMBIGUOUS)),
    )
    scanned = Project.objects.filter(id=project.id).values_list("review_scanned_at", flat=True).first()
    return {**counts, "scanned_at": scanned}


def _review_names() -> dict[str, F]:
    return {"label_name": F("label__name"), "suggested_name": F("review_suggested__name")}


def review_next(*, project: Project, exclude: Sequence[int] = ()) -> Item | None:
    """The flagged item most likely mislabeled (lowest label quality first), not in ``exclude``,
    with ``label_name`` and ``suggested_name`` set; ``None`` when nothing is flagged."""
    items = Item.objects.filter(project=project, review_status=ReviewStatus.FLAGGED).exclude(id__in=list(exclude))
    return items.annotate(**_review_names()).order_by("review_score", "id").first()


def review_item(*, item_id: int) -> Item:
    """An item with the names the review page shows (``label_name``, ``suggested_name``)."""
    return Item.objects.annotate(**_review_names()).get(id=item_id)


def item_votes(*, item: Item) -> list[dict[str, Any]]:
    """The active annotations of an item per class, most votes first: ``{"label", "n"}`` (on
    multi-label projects, how many chose each class)."""
    if item.labels is not None:
        sets = Annotation.objects.filter(item=item, active=True, labels__isnull=False).values_list("labels", flat=True)
        chosen = Counter(name for names in sets for name in names)
        return [{"label": name, "n": n} for name, n in sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows = (
        Annotation.objects.filter(item=item, active=True, label__isnull=False)
        .values("label__name")
        .annotate(n=Count("id"))
        .order_by("-n", "label__name")
    )
    return [{"label": row["label__name"], "n": row["n"]} for row in rows]


def job_get_for_user(*, user: AbstractBaseUser, job_id: int) -> Any:
    """A background job of a project ``user`` may see; 404 otherwise."""
    from annotator.models import Job

    job = Job.objects.select_related("project").filter(id=job_id).first()
    if job is None or not project_list_for_user(user=user).filter(id=job.project_id).exists():
        raise Http404("No such job.")
    return job


def job_list(*, project: Project, limit: int = 20) -> list[Any]:
    """The project's latest background jobs, newest first."""
    from annotator.models import Job

    return list(Job.objects.filter(project=project).order_by("-id")[:limit])


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
    votes, and each annotator's agreement with the consensus label. One query."""
    rows = list(
        Annotation.objects.filter(
            item__project=project,
            item__n_annotations__gte=2,
            active=True,
            source=Annotation.Source.HUMAN,
            label__isnull=False,
        ).values_list("item_id", "user__username", "label_id", "item__label_id")
    )
    position = class_order(project_id=project.id).position_of_id
    votes: dict[int, np.ndarray] = {}
    per_user: dict[str, list[int]] = {}
    for item_id, username, label_id, consensus in rows:
        votes.setdefault(item_id, np.zeros(len(position), dtype=np.int64))[position[label_id]] += 1
        per_user.setdefault(username or "(deleted)", []).append(int(label_id == consensus))
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
