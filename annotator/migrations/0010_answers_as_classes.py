"""One way to store an answer: a set of classes per annotation and per item (consensus, reviewed,
suggested) in two through-tables, instead of class foreign keys on single-label projects and JSON
lists of class names on multi-label ones; and the project's task ``kind`` instead of ``multi_label``.

The data migration reads the old columns in batches and writes one row per class. A name in an old
list that no class of the project has any more (a rename before renames rewrote lists) is matched
case-insensitively, else dropped, and the count is printed.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2000


def _name_index(LabelClass: Any) -> dict[int, dict[str, int]]:
    by_project: dict[int, dict[str, int]] = {}
    for class_id, project_id, name in LabelClass.objects.values_list("id", "project_id", "name").iterator(BATCH):
        names = by_project.setdefault(project_id, {})
        names[name] = class_id
        names.setdefault(name.casefold(), class_id)
    return by_project


def _ids(names: list[str] | None, index: dict[str, int], lost: list[int]) -> list[int]:
    found = []
    for name in names or []:
        class_id = index.get(name, index.get(str(name).casefold()))
        if class_id is None:
            lost[0] += 1
        elif class_id not in found:
            found.append(class_id)
    return found


def forward(apps: Any, schema_editor: Any) -> None:
    Project = apps.get_model("annotator", "Project")
    Item = apps.get_model("annotator", "Item")
    Annotation = apps.get_model("annotator", "Annotation")
    ItemClass = apps.get_model("annotator", "ItemClass")
    AnnotationClass = apps.get_model("annotator", "AnnotationClass")
    LabelClass = apps.get_model("annotator", "LabelClass")
    Project.objects.filter(multi_label=True).update(kind="multi_label")
    multi = set(Project.objects.filter(multi_label=True).values_list("id", flat=True))
    names = _name_index(LabelClass)
    lost = [0]

    rows: list[Any] = []
    columns = ["id", "project_id", "label_id", "labels", "review_label_id", "review_labels"]
    columns += ["review_suggested_id", "review_suggested_labels", "review_status", "review_confidence"]
    for item_id, project_id, label, labels, r_label, r_labels, s_label, s_labels, r_status, conf in (
        Item.objects.order_by("id").values_list(*columns).iterator(BATCH)
    ):
        if project_id in multi:
            index = names.get(project_id, {})
            answers = {
                "consensus": _ids(labels, index, lost),
                "reviewed": _ids(r_labels, index, lost),
                "suggested": _ids(s_labels, index, lost),
            }
        else:
            answers = {"consensus": [label], "reviewed": [r_label], "suggested": [s_label]}
        for role, class_ids in answers.items():
            rows += [ItemClass(item_id=item_id, role=role, label_class_id=c) for c in class_ids if c is not None]
        if len(rows) >= BATCH:
            ItemClass.objects.bulk_create(rows)
            rows = []
    ItemClass.objects.bulk_create(rows)

    rows = []
    annotations = Annotation.objects.order_by("id").values_list("id", "item__project_id", "label_id", "labels")
    for annotation_id, project_id, label, labels in annotations.iterator(BATCH):
        class_ids = _ids(labels, names.get(project_id, {}), lost) if project_id in multi else [label]
        rows += [AnnotationClass(annotation_id=annotation_id, label_class_id=c) for c in class_ids if c is not None]
        if len(rows) >= BATCH:
            AnnotationClass.objects.bulk_create(rows)
            rows = []
    AnnotationClass.objects.bulk_create(rows)
    if lost[0]:
        print(f"\n  {lost[0]} class names in stored answers named no class of their project; left out.")


def backward(apps: Any, schema_editor: Any) -> None:
    Project = apps.get_model("annotator", "Project")
    Item = apps.get_model("annotator", "Item")
    Annotation = apps.get_model("annotator", "Annotation")
    ItemClass = apps.get_model("annotator", "ItemClass")
    AnnotationClass = apps.get_model("annotator", "AnnotationClass")
    Project.objects.filter(kind="multi_label").update(multi_label=True)
    multi = set(Project.objects.filter(kind="multi_label").values_list("id", flat=True))
    item_answers: dict[int, dict[str, list[Any]]] = {}
    for item_id, role, class_id, name in ItemClass.objects.order_by("label_class__index").values_list(
        "item_id", "role", "label_class_id", "label_class__name"
    ):
        item_answers.setdefault(item_id, {}).setdefault(role, []).append((class_id, name))
    fields = {"consensus": ("label_id", "labels"), "reviewed": ("review_label_id", "review_labels")}
    fields["suggested"] = ("review_suggested_id", "review_suggested_labels")
    for item in Item.objects.order_by("id").iterator(BATCH):
        answers = item_answers.get(item.id, {})
        decided = item.review_status in ("reviewed", "ambiguous")
        present = {"consensus": item.status == "labeled", "reviewed": decided}
        present["suggested"] = item.review_confidence is not None
        for role, (fk, names) in fields.items():
            chosen = answers.get(role, [])
            if item.project_id in multi:
                setattr(item, names, [name for _, name in chosen] if present[role] else None)
            else:
                setattr(item, fk, chosen[0][0] if chosen else None)
        item.save()
    for annotation in Annotation.objects.select_related("item").order_by("id").iterator(BATCH):
        chosen = list(
            AnnotationClass.objects.filter(annotation_id=annotation.id)
            .order_by("label_class__index")
            .values_list("label_class_id", "label_class__name")
        )
        if annotation.item.project_id in multi:
            annotation.labels = [name for _, name in chosen]
        else:
            annotation.label_id = chosen[0][0] if chosen else None
        annotation.save()


class Migration(migrations.Migration):
    dependencies = [("annotator", "0009_class_restrict_and_ranges")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="kind",
            field=models.CharField(
                choices=[("classification", "One class per image"), ("multi_label", "Any number of classes per image")],
                default="classification",
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="AnnotationClass",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "annotation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answer_classes",
                        to="annotator.annotation",
                    ),
                ),
                (
                    "label_class",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.RESTRICT, related_name="+", to="annotator.labelclass"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("annotation", "label_class"), name="annotationclass_unique")
                ],
                "indexes": [models.Index(fields=["label_class"], name="annotationclass_class")],
            },
        ),
        migrations.CreateModel(
            name="ItemClass",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "role",
                    models.CharField(
                        choices=[
                            ("consensus", "The item's label (its annotations' consensus, or a review)"),
                            ("reviewed", "The label a manager reviewed"),
                            ("suggested", "The review scan's suggestion"),
                        ],
                        default="consensus",
                        max_length=16,
                    ),
                ),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="answer_classes", to="annotator.item"
                    ),
                ),
                (
                    "label_class",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.RESTRICT, related_name="+", to="annotator.labelclass"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("item", "role", "label_class"), name="itemclass_unique")
                ],
                "indexes": [models.Index(fields=["label_class", "role", "item"], name="itemclass_class")],
            },
        ),
        migrations.RunPython(forward, backward, elidable=False),
        migrations.RemoveField(model_name="project", name="multi_label"),
        migrations.RemoveField(model_name="item", name="label"),
        migrations.RemoveField(model_name="item", name="labels"),
        migrations.RemoveField(model_name="item", name="review_label"),
        migrations.RemoveField(model_name="item", name="review_labels"),
        migrations.RemoveField(model_name="item", name="review_suggested"),
        migrations.RemoveField(model_name="item", name="review_suggested_labels"),
        migrations.RemoveField(model_name="annotation", name="label"),
        migrations.RemoveField(model_name="annotation", name="labels"),
        migrations.AddField(
            model_name="annotation",
            name="classes",
            field=models.ManyToManyField(
                related_name="annotations", through="annotator.AnnotationClass", to="annotator.labelclass"
            ),
        ),
        migrations.AlterField(
            model_name="item",
            name="review_confidence",
            field=models.FloatField(
                blank=True, help_text="The model's probability of its suggestion; empty: no suggestion.", null=True
            ),
        ),
    ]
