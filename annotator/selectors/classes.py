"""A project's classes: their one numbering (``ClassOrder``), what refers to a class, labels per
class and the classes with too few."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from annotator.kinds import ClassOrder, kind_of
from annotator.models import AnnotationClass, AnswerRole, BoxRole, Item, ItemBox, ItemClass, LabelClass, Project
from ml.coverage import MIN_CLASS_LABELS


def project_classes(*, project: Project) -> list[LabelClass]:
    return list(LabelClass.objects.filter(project=project).order_by("index"))


def class_order(*, project_id: int) -> ClassOrder:
    """The one numbering of a project's classes, used by training, publishing, review and agreement."""
    rows = list(LabelClass.objects.filter(project_id=project_id).order_by("index").values_list("id", "name"))
    return ClassOrder(ids=[class_id for class_id, _ in rows], names=[name for _, name in rows])


def label_class_uses(*, label_class: LabelClass) -> dict[str, int]:
    """How many stored rows refer to a class, by kind (``labeled`` items, ``annotations`` with their
    history, ``predicted`` items, ``reviewed`` items: a decision or the scan's suggestion). Only a
    class with none of them may be deleted: the others would lose answers or shift model outputs."""
    answers = ItemClass.objects.filter(label_class=label_class)
    uses = {
        "labeled": answers.filter(role=AnswerRole.CONSENSUS).count(),
        "annotations": AnnotationClass.objects.filter(label_class=label_class).count(),
        "predicted": Item.objects.filter(project_id=label_class.project_id, pred_label=label_class).count(),
        "reviewed": answers.exclude(role=AnswerRole.CONSENSUS).values("item_id").distinct().count(),
    }
    return {kind: n for kind, n in uses.items() if n}


def labels_per_class(*, project: Project) -> list[dict[str, Any]]:
    """Labeled items per class (the item's final label: the consensus where several people label
    it; on multi-label projects an item counts once for each of its classes), every class in index
    order, zeros included: ``{"name", "n"}``; on box projects ``n`` counts the images holding the class
    and ``"boxes"`` its boxes. One grouped query over the answers' class index (two for boxes)."""
    classes = project_classes(project=project)
    counts = dict(
        ItemClass.objects.filter(
            label_class__project=project, role=AnswerRole.CONSENSUS, item__status=Item.Status.LABELED
        )
        .values("label_class_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("label_class_id", "n")
    )
    if not kind_of(project).boxes:
        return [{"name": c.name, "n": counts.get(c.id, 0)} for c in classes]
    boxes = dict(  # box projects: n is the images holding the class; boxes, its boxes
        ItemBox.objects.filter(label_class__project=project, role=BoxRole.CONSENSUS, item__status=Item.Status.LABELED)
        .values("label_class_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("label_class_id", "n")
    )
    return [{"name": c.name, "n": counts.get(c.id, 0), "boxes": boxes.get(c.id, 0)} for c in classes]


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
