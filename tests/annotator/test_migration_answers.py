"""Migration 0010 (answers as sets of classes): a database filled in the old shape (class foreign keys
on single-label projects, JSON lists of names on multi-label ones) keeps every answer, consensus and
review decision, and the project's kind."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotator.models import Annotation, Item, Project
from tests.factories import annotation_names, answer_names

BEFORE = [("annotator", "0009_class_restrict_and_ranges")]
AFTER = [("annotator", "0010_answers_as_classes")]


def _latest():
    """The app's newest migrations: where the checks through today's models must run."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes("annotator")


@pytest.fixture(autouse=True)
def _back_to_latest():
    """Later tests share this database: leave it migrated to the newest state, pass or fail."""
    yield
    _migrate(_latest())


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def _fill_old_shape(apps) -> dict[str, int]:
    """Two projects in the pre-0010 shape; returns the ids the checks look up."""
    User = apps.get_model("auth", "User")
    Project = apps.get_model("annotator", "Project")
    LabelClass = apps.get_model("annotator", "LabelClass")
    Item = apps.get_model("annotator", "Item")
    Annotation = apps.get_model("annotator", "Annotation")
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")

    def item(project, n, **fields):
        return Item.objects.create(
            project=project, original_name=f"{n}.png", width=8, height=8, sha256=f"{project.id}-{n}", **fields
        )

    single = Project.objects.create(name="Pets", multi_label=False)
    cat, dog = (LabelClass.objects.create(project=single, name=n, index=i) for i, n in enumerate(["cat", "dog"]))
    voted = item(single, 1, status="labeled", label=dog, n_annotations=2, agreement=0.5)
    Annotation.objects.create(item=voted, user=ann, label=cat)
    Annotation.objects.create(item=voted, user=bob, label=dog, active=False)
    Annotation.objects.create(item=voted, user=bob, label=dog)
    reviewed = item(
        single,
        2,
        status="labeled",
        label=dog,
        review_status="reviewed",
        review_action="change",
        review_label=dog,
        review_suggested=dog,
        review_confidence=0.9,
        review_score=0.1,
    )
    Annotation.objects.create(item=reviewed, user=ann, label=cat)
    Annotation.objects.create(item=reviewed, user=bob, label=dog, source="review")
    fresh = item(single, 3)

    multi = Project.objects.create(name="Scenes", multi_label=True)
    for i, n in enumerate(["cat", "dog", "outdoor"]):
        LabelClass.objects.create(project=multi, name=n, index=i)
    scene = item(
        multi,
        1,
        status="labeled",
        labels=["outdoor", "cat"],
        review_status="ambiguous",
        review_labels=["cat", "outdoor"],
        review_suggested_labels=["dog"],
        review_confidence=0.7,
    )
    Annotation.objects.create(item=scene, user=ann, labels=["cat", "outdoor"])
    nothing = item(multi, 2, status="labeled", labels=[])
    Annotation.objects.create(item=nothing, user=ann, labels=[])
    # A name no class has (renamed before renames rewrote lists), and one differing only in case.
    stale = item(multi, 3, status="labeled", labels=["Dog", "ghost"])
    return {
        "single": single.id,
        "multi": multi.id,
        "voted": voted.id,
        "reviewed": reviewed.id,
        "fresh": fresh.id,
        "scene": scene.id,
        "nothing": nothing.id,
        "stale": stale.id,
    }


@pytest.mark.django_db(transaction=True)
def test_every_answer_survives_the_migration():
    ids = _fill_old_shape(_migrate(BEFORE))
    _migrate(_latest())  # through 0010, and on to what today's models read

    assert Project.objects.get(id=ids["single"]).kind == "classification"
    assert Project.objects.get(id=ids["multi"]).kind == "multi_label"
    assert Project.objects.get(id=ids["multi"]).multi_label

    assert answer_names(ids["voted"]) == ["dog"]
    votes = Annotation.objects.filter(item_id=ids["voted"]).order_by("id")
    assert [(annotation_names(a), a.active) for a in votes] == [(["cat"], True), (["dog"], False), (["dog"], True)]
    assert (answer_names(ids["reviewed"]), answer_names(ids["reviewed"], "reviewed")) == (["dog"], ["dog"])
    assert answer_names(ids["reviewed"], "suggested") == ["dog"]
    review = Annotation.objects.get(item_id=ids["reviewed"], source="review")
    assert annotation_names(review) == ["dog"]
    assert answer_names(ids["fresh"]) == [] and Item.objects.get(id=ids["fresh"]).status == "unlabeled"

    assert answer_names(ids["scene"]) == ["cat", "outdoor"]  # in class order
    assert answer_names(ids["scene"], "reviewed") == ["cat", "outdoor"]
    assert answer_names(ids["scene"], "suggested") == ["dog"]
    assert Item.objects.get(id=ids["scene"]).review_status == "ambiguous"
    assert annotation_names(Annotation.objects.get(item_id=ids["scene"])) == ["cat", "outdoor"]
    nothing = Item.objects.get(id=ids["nothing"])
    assert (nothing.status, answer_names(nothing)) == ("labeled", [])
    assert annotation_names(Annotation.objects.get(item_id=ids["nothing"])) == []
    assert answer_names(ids["stale"]) == ["dog"]  # matched whatever its case; the unknown name left out


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_to_the_old_shape():
    apps = _migrate(BEFORE)
    ids = _fill_old_shape(apps)
    _migrate(AFTER)
    old = _migrate(BEFORE)
    OldItem, OldAnnotation = old.get_model("annotator", "Item"), old.get_model("annotator", "Annotation")
    voted = OldItem.objects.select_related("label").get(id=ids["voted"])
    assert voted.label.name == "dog"
    reviewed = OldItem.objects.select_related("review_label", "review_suggested").get(id=ids["reviewed"])
    assert (reviewed.review_label.name, reviewed.review_suggested.name) == ("dog", "dog")
    scene = OldItem.objects.get(id=ids["scene"])
    assert (scene.labels, scene.review_labels, scene.review_suggested_labels) == (
        ["cat", "outdoor"],
        ["cat", "outdoor"],
        ["dog"],
    )
    assert OldItem.objects.get(id=ids["fresh"]).labels is None
    assert OldAnnotation.objects.get(item_id=ids["nothing"]).labels == []
    assert old.get_model("annotator", "Project").objects.get(id=ids["multi"]).multi_label
    _migrate(AFTER)
