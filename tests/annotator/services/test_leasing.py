"""``annotator/services/leasing.py``: who gets which item next, leases that expire, skips, and concurrent leases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotator.models import Annotation, Item, Project
from annotator.services.annotations import annotation_create
from annotator.services.leasing import item_lease_next, item_skip
from tests.annotator.helpers import make_items
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def test_lease_serves_highest_priority_and_never_the_same_item_twice(user):
    project = make_project(user)
    items = make_items(project, 4)
    for rank, item in enumerate(items):
        Item.objects.filter(id=item.id).update(priority=rank)
    other = make_user("bob")
    first = item_lease_next(project=project, user=user)
    second = item_lease_next(project=project, user=other)
    third = item_lease_next(project=project, user=user, exclude=[first.id])
    assert [first.id, second.id, third.id] == [items[3].id, items[2].id, items[1].id]


def test_lease_resumes_own_item_and_expired_lease_returns_to_queue(user):
    project = make_project(user)
    items = make_items(project, 2)
    Item.objects.filter(id=items[0].id).update(priority=10)
    first = item_lease_next(project=project, user=user)
    assert item_lease_next(project=project, user=user).id == first.id  # a reload resumes it
    bob = make_user("bob")
    assert item_lease_next(project=project, user=bob).id == items[1].id
    Item.objects.filter(id=first.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    carol = make_user("carol")
    assert item_lease_next(project=project, user=carol).id == first.id


def test_skip_moves_item_behind_unlabeled_ones(user):
    project = make_project(user)
    items = make_items(project, 2)
    Item.objects.filter(id=items[0].id).update(priority=10)
    first = item_lease_next(project=project, user=user)
    item_skip(item=first, user=user)
    assert item_lease_next(project=project, user=user, exclude=[]).id == items[1].id
    # Once nothing unlabeled is free, skipped items come back.
    assert item_lease_next(project=project, user=user, exclude=[items[1].id]).id == items[0].id


@pytest.mark.django_db(transaction=True)
def test_concurrent_leases_never_hand_out_one_item_twice():
    owner = make_user("owner")
    project = make_project(owner)
    make_items(project, 12)
    users = [make_user(f"u{i}") for i in range(6)]
    got: list[int] = []
    lock = threading.Lock()

    def worker(u):
        try:
            for _ in range(2):
                item = item_lease_next(project=project, user=u)
                if item is not None:
                    with lock:
                        got.append(item.id)
                    annotation_create(item=item, user=u, label="cat")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 12
    assert len(set(got)) == 12
    assert Annotation.objects.filter(active=True).count() == 12


def test_lease_uses_the_projects_lease_seconds(user):
    project = make_project(user)
    Project.objects.filter(id=project.id).update(lease_seconds=42)
    project.refresh_from_db()
    make_items(project, 1)
    item = item_lease_next(project=project, user=user)
    remaining = (item.lease_until - timezone.now()).total_seconds()
    assert 40 <= remaining <= 42
