"""``annotator/services/consensus.py``: overlap serves an item to k people and stores their agreement."""

from __future__ import annotations

import pytest

from annotator.models import Project
from annotator.services.leasing import item_lease_next
from tests.annotator.helpers import label, make_items
from tests.factories import label_of, make_project, make_user

pytestmark = pytest.mark.django_db


def test_overlap_serves_an_item_to_k_different_people_and_stores_agreement(user):
    # Given a project where every item needs 3 labels
    project = make_project(user)
    Project.objects.filter(id=project.id).update(labels_per_item=3)
    project.refresh_from_db()
    a, b = make_items(project, 2)
    bob, carol = make_user("bob"), make_user("carol")

    # When alice labels the first item, it goes back to the queue, but never to her
    assert item_lease_next(project=project, user=user).id == a.id
    label(a, user, "cat")
    a.refresh_from_db()
    assert (a.status, a.n_annotations, a.lease_user_id) == ("unlabeled", 1, None)
    assert item_lease_next(project=project, user=user).id == b.id
    # Then bob and carol get it, one at a time
    assert item_lease_next(project=project, user=bob).id == a.id
    assert item_lease_next(project=project, user=carol) is None  # a held by bob, b by alice
    label(a, bob, "cat")
    assert item_lease_next(project=project, user=carol).id == a.id
    label(a, carol, "dog")
    a.refresh_from_db()
    assert (a.status, a.n_annotations, label_of(a)) == ("labeled", 3, "cat")
    assert a.agreement == pytest.approx(2 / 3)
    # And a labeled item is served to nobody again
    assert item_lease_next(project=project, user=bob, exclude=[b.id]) is None


def test_relabel_by_the_same_person_does_not_count_twice(user):
    project = make_project(user)
    Project.objects.filter(id=project.id).update(labels_per_item=2)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    label(item, user, "dog")
    item.refresh_from_db()
    assert (item.status, item.n_annotations, label_of(item), item.agreement) == ("unlabeled", 1, "dog", 1.0)


def test_single_label_item_counts_its_annotation(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    item.refresh_from_db()
    assert (item.status, item.n_annotations) == ("labeled", 1)
