"""A project's classes: their one numbering (``ClassOrder``), what refers to a class, labels per
class and the classes with too few."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.db import connection
from django.db.models import Count, Q

from annotator.models import Annotation, Item, LabelClass, Project
from ml.coverage import MIN_CLASS_LABELS


def project_classes(*, project: Project) -> list[LabelClass]:
    return list(LabelClass.objects.filter(project=project).order_by("index"))


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
    chosen = named.values_list("labels", flat=True).iterator(2000)
    uses["annotations"] += sum(name in cast(list[str], names) for names in chosen)
    return {kind: n for kind, n in uses.items() if n}


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
