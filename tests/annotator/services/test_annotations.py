"""``annotator/services/annotations.py``: storing a label (idempotent, history kept) and undoing one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.models import Annotation, Item
from annotator.services.annotations import annotation_create, annotation_undo
from annotator.services.errors import ServiceError
from annotator.services.leasing import item_lease_next
from tests.annotator.helpers import label, make_items
from tests.factories import annotation_label, label_of, make_project, make_user

pytestmark = pytest.mark.django_db


def test_annotation_is_idempotent_on_client_token(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    first, created = annotation_create(item=item, user=user, label="cat", client_token="t1")
    again, created_again = annotation_create(item=item, user=user, label="dog", client_token="t1")
    assert created and not created_again and again.id == first.id
    assert Annotation.objects.count() == 1
    item.refresh_from_db()
    assert (item.status, label_of(item), item.lease_user) == ("labeled", "cat", None)


def test_changing_a_label_keeps_history_and_one_active_annotation(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    annotation_create(item=item, user=user, label="cat", client_token="a")
    annotation_create(item=item, user=user, label="dog", client_token="b")
    assert [(annotation_label(a), a.active) for a in Annotation.objects.order_by("id")] == [
        ("cat", False),
        ("dog", True),
    ]
    assert label_of(item) == "dog"


def test_unknown_label_names_the_valid_ones(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    with pytest.raises(ServiceError, match="valid labels: cat, dog"):
        annotation_create(item=item, user=user, label="cow")
    assert not Annotation.objects.exists()


def test_annotation_records_whether_the_prelabel_was_accepted(user):
    project = make_project(user)
    a, b = make_items(project, 2)
    cat = project.classes.get(name="cat")
    Item.objects.filter(id__in=[a.id, b.id]).update(pred_label=cat)
    a.refresh_from_db()
    b.refresh_from_db()
    assert annotation_create(item=a, user=user, label="cat")[0].prelabel == "accepted"
    assert annotation_create(item=b, user=user, label="dog")[0].prelabel == "corrected"


def test_label_after_lease_expired_is_still_accepted(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    Item.objects.filter(id=item.id).update(lease_user=user, lease_until=timezone.now() - timedelta(hours=1))
    annotation, created = annotation_create(item=item, user=user, label="dog")
    assert created and annotation_label(annotation) == "dog"


def test_undo_deactivates_the_latest_label_and_returns_the_item_to_the_caller(user):
    # Given two labels by alice
    project = make_project(user)
    first, second = make_items(project, 2)
    label(first, user, "cat")
    label(second, user, "dog")

    # When she undoes
    item = annotation_undo(project=project, user=user)

    # Then the latest label is inactive history and its item is back in the queue, leased to her
    assert item.id == second.id
    assert list(Annotation.objects.order_by("id").values_list("item_id", "active")) == [
        (first.id, True),
        (second.id, False),
    ]
    item.refresh_from_db()
    assert (item.status, label_of(item), item.n_annotations, item.labeled_at) == ("unlabeled", None, 0, None)
    assert item.lease_user_id == user.id
    assert item_lease_next(project=project, user=user).id == second.id
    assert item_lease_next(project=project, user=make_user("bob")) is None
    # A second undo takes the one before; a third finds nothing
    assert annotation_undo(project=project, user=user).id == first.id
    assert annotation_undo(project=project, user=user) is None


def test_undo_touches_only_the_callers_labels(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    assert annotation_undo(project=project, user=make_user("bob")) is None
    item.refresh_from_db()
    assert item.status == "labeled"
