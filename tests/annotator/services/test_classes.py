"""A project's classes after they exist (issue 13): deleting and renaming one keeps every stored answer
valid, and training and the review scan number classes the same way."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.db.models import RestrictedError

from annotator.models import Annotation, Item, LabelClass, Project, ReviewStatus
from annotator.selectors.classes import class_order
from annotator.selectors.review import review_data
from annotator.selectors.training_data import training_data
from annotator.services.annotations import annotation_create
from annotator.services.classes import label_class_add, label_class_update, project_class_names
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_uploads
from tests.factories import (
    annotation_label,
    annotation_names,
    answer_names,
    label_of,
    make_project,
    png_bytes,
    store_answer,
)

pytestmark = pytest.mark.django_db


def labeled(project, user, labels: list) -> list[Item]:
    """One imported item per entry of ``labels`` (a class name, or a list of them on multi-label
    projects), labeled with it."""
    files = [(f"{i}.png", io.BytesIO(png_bytes(900 + i))) for i in range(len(labels))]
    items_import_uploads(project=project, files=files, user=user)
    items = list(Item.objects.select_related("project").filter(project=project).order_by("id"))
    for item, label in zip(items, labels, strict=True):
        if project.multi_label:
            annotation_create(item=item, user=user, labels=label)
        else:
            annotation_create(item=item, user=user, label=label)
    return items


def class_named(project, name: str) -> LabelClass:
    return LabelClass.objects.get(project=project, name=name)


def admin_url(label_class: LabelClass, action: str) -> str:
    return f"/admin/annotator/labelclass/{label_class.id}/{action}/"


# Deleting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multi_label", [False, True])
def test_a_class_with_labels_cannot_be_deleted_in_the_admin(admin_client, admin_user, multi_label):
    project = make_project(admin_user, labels=["cat", "dog", "bird"], multi_label=multi_label)
    labeled(project, admin_user, [["cat"], ["dog"]] if multi_label else ["cat", "dog"])
    cat = class_named(project, "cat")
    before = annotation_rows()
    # The delete page says why not, and confirming it deletes nothing
    page = admin_client.get(admin_url(cat, "delete"))
    assert page.status_code == 200
    assert "Cannot delete" in page.content.decode() and "1 item" in page.content.decode()
    response = admin_client.post(admin_url(cat, "delete"), {"post": "yes"})
    assert response.status_code == 200 and "Cannot delete" in response.content.decode()
    # And so does the list's delete action
    data = {"action": "delete_selected", "_selected_action": [cat.id], "post": "yes"}
    response = admin_client.post("/admin/annotator/labelclass/", data)
    assert response.status_code == 200 and "Cannot delete" in response.content.decode()
    assert LabelClass.objects.filter(id=cat.id).exists()
    assert annotation_rows() == before and before


def test_the_database_refuses_to_delete_a_labeled_class_but_a_project_goes_whole(user):
    project = make_project(user)
    items = labeled(project, user, ["cat"])
    with pytest.raises(RestrictedError):
        class_named(project, "cat").delete()
    assert Annotation.objects.filter(item=items[0]).exists()
    project.delete()
    assert not Project.objects.exists() and not LabelClass.objects.exists() and not Annotation.objects.exists()


def test_an_unused_class_can_be_deleted_and_indices_stay_one_numbering(admin_client, admin_user):
    project = make_project(admin_user, labels=["cat", "dog", "bird"])
    items = labeled(project, admin_user, ["cat", "bird", "bird"])
    dog = class_named(project, "dog")
    # When the class nobody used is deleted in the admin
    response = admin_client.post(admin_url(dog, "delete"), {"post": "yes"})
    assert response.status_code == 302 and not LabelClass.objects.filter(id=dog.id).exists()
    # Then training and the review scan number the classes alike, without the gap the index has
    assert list(project.classes.order_by("index").values_list("index", flat=True)) == [0, 2]
    training = training_data(project=project)
    review = review_data(project=project)
    assert training.n_classes == review.n_classes == 2
    assert training.labels.tolist() == review.labels.tolist() == [0, 1, 1]
    assert training.labeled_ids.tolist() == review.item_ids.tolist() == [i.id for i in items]
    assert review.class_ids == [class_named(project, "cat").id, class_named(project, "bird").id]
    # And a class added afterwards goes after the last one
    fish = label_class_add(project=project, name="fish")
    assert fish.index == 3 and training_data(project=project).n_classes == 3


def test_class_order_is_one_helper(user):
    project = make_project(user, labels=["a", "b", "c"])
    LabelClass.objects.filter(project=project, name="b").delete()
    a, c = class_named(project, "a"), class_named(project, "c")
    order = class_order(project_id=project.id)
    assert (order.ids, order.names, len(order)) == ([a.id, c.id], ["a", "c"], 2)
    assert order.position_of_id == {a.id: 0, c.id: 1} and order.position_of_name == {"a": 0, "c": 1}


# Renaming -------------------------------------------------------------------------------------------------


def multi_label_history(user):
    """A multi-label project whose answers name "dog" everywhere they can: items, active and
    inactive annotations, a manager's review and the scan's suggestion."""
    project = make_project(user, labels=["cat", "dog", "bird"], multi_label=True)
    first, second = labeled(project, user, [["cat", "dog"], ["dog"]])
    annotation_create(item=second, user=user, labels=["bird", "dog"])  # the first answer becomes history
    Item.objects.filter(id=first.id).update(review_status=ReviewStatus.REVIEWED, review_confidence=0.8)
    store_answer(first, ["cat", "dog"], "reviewed")
    store_answer(first, ["dog"], "suggested")
    return project


def annotation_rows() -> list:
    return [(a.id, annotation_names(a), a.active) for a in Annotation.objects.order_by("id")]


def stored_names(project) -> list:
    """Every stored answer of the project as class names: each item's per role, each annotation's."""
    items = Item.objects.filter(project=project).order_by("id")
    roles = ["consensus", "reviewed", "suggested"]
    return [[[answer_names(item, role) for role in roles] for item in items], annotation_rows()]


def test_renaming_a_class_in_the_admin_renames_it_in_every_stored_answer(admin_client, admin_user):
    project = multi_label_history(admin_user)
    dog = class_named(project, "dog")
    training_before = training_data(project=project).labels.tolist()
    before = stored_names(project)
    # When a manager renames dog to hound
    response = admin_client.post(admin_url(dog, "change"), {"name": "hound", "hotkey": dog.hotkey})
    assert response.status_code == 302, response.content.decode()[:2000]
    # Then every answer that said dog says hound
    assert "dog" in str(before) and stored_names(project) == eval(str(before).replace("'dog'", "'hound'"))
    # And training sees the same labels as before
    assert training_data(project=project).labels.tolist() == training_before
    assert project_class_names(project_id=project.id) == ["cat", "hound", "bird"]


def test_a_rename_keeps_single_label_answers_and_the_hotkey(admin_user):
    project = make_project(admin_user)
    item = labeled(project, admin_user, ["dog"])[0]
    renamed = label_class_update(label_class=class_named(project, "dog"), name="  Hound ")
    assert (renamed.name, renamed.hotkey, renamed.index) == ("Hound", "2", 1)
    assert label_of(item) == "Hound" and annotation_label(Annotation.objects.get(item=item)) == "Hound"
    assert label_class_update(label_class=renamed, name="hound").name == "hound"  # only the case changes


@pytest.mark.parametrize(("name", "message"), [("Cat", "already"), ("do\x07g", "control character"), ("", "")])
def test_a_bad_rename_is_a_form_error_and_changes_nothing(admin_client, admin_user, name, message):
    project = multi_label_history(admin_user)
    dog = class_named(project, "dog")
    before = stored_names(project)
    response = admin_client.post(admin_url(dog, "change"), {"name": name, "hotkey": dog.hotkey})
    assert response.status_code == 200 and message in response.content.decode()
    assert response.context["adminform"].form.errors
    assert class_named(project, "dog") and stored_names(project) == before
    with pytest.raises(ServiceError, match=message or "empty"):
        label_class_update(label_class=dog, name=name)


# Adding in the admin --------------------------------------------------------------------------------------


def test_the_admin_adds_a_class_through_the_same_rule(admin_client, admin_user):
    project = make_project(admin_user)
    response = admin_client.post("/admin/annotator/labelclass/add/", {"project": project.id, "name": "b\x01ird"})
    assert response.status_code == 200 and "control character" in response.content.decode()
    response = admin_client.post("/admin/annotator/labelclass/add/", {"project": project.id, "name": "DOG"})
    assert response.status_code == 200 and "already" in response.content.decode()
    response = admin_client.post("/admin/annotator/labelclass/add/", {"project": project.id, "name": " bird "})
    assert response.status_code == 302
    assert list(project.classes.order_by("index").values_list("name", "index", "hotkey")) == [
        ("cat", 0, "1"),
        ("dog", 1, "2"),
        ("bird", 2, "3"),
    ]


def test_the_project_page_of_the_admin_shows_classes_without_editing_them(admin_client, admin_user):
    project = make_project(admin_user)
    page = admin_client.get(f"/admin/annotator/project/{project.id}/change/").content.decode()
    assert "cat" in page and 'name="classes-0-name"' not in page and 'name="classes-0-DELETE"' not in page


def test_training_data_labels_are_positions_even_with_a_gap(user):
    project = make_project(user, labels=["a", "b", "c"])
    LabelClass.objects.filter(project=project, name="b").delete()
    labeled(project, user, ["a", "c"])
    data = training_data(project=project)
    assert data.n_classes == 2 and np.all(data.labels < data.n_classes)
