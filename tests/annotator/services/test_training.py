"""``annotator/services/training.py``: requesting, locking, resending, reconciling retrains; publishing a version."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services import annotations
from annotator.services.annotations import annotation_create
from annotator.services.leasing import item_lease_next
from annotator.services.training import (
    model_version_publish,
    training_begin,
    training_end,
    training_label_counted,
    training_reconcile,
    training_request,
    training_resend,
)
from tests.annotator.helpers import label, make_items
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_training_requested_after_retrain_every_labels(user, django_capture_on_commit_callbacks):
    project = make_project(user, retrain_every=3)
    items = make_items(project, 5)
    with django_capture_on_commit_callbacks(execute=True):
        for item in items[:2]:
            annotation_create(item=item, user=user, label="cat")
    project.refresh_from_db()
    assert not project.training_requested
    with django_capture_on_commit_callbacks(execute=True):
        annotation_create(item=items[2], user=user, label="dog")
    project.refresh_from_db()
    assert project.training_requested


def labeled_now(project, n):
    items = make_items(project, n)
    Item.objects.filter(id__in=[i.id for i in items]).update(status=Item.Status.LABELED, labeled_at=timezone.now())


def test_the_retrain_check_counts_in_the_cache_and_asks_the_database_only_when_due(user):
    project = make_project(user, retrain_every=3)
    cache.delete(f"annotator:labels-since-request:{project.id}")
    labeled_now(project, 3)
    # The first two labels: one INCR each, no query
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert not training_label_counted(project_id=project.id, retrain_every=3)
        assert len(queries) == 0
    # The third: the exact check, which finds three labels since the last version and asks
    assert training_label_counted(project_id=project.id, retrain_every=3)
    assert Project.objects.get(id=project.id).training_requested
    assert cache.get(f"annotator:labels-since-request:{project.id}") == 0  # counting again from the request


def test_without_the_cache_the_retrain_check_asks_the_database(user, monkeypatch):
    project = make_project(user, retrain_every=2)
    labeled_now(project, 2)

    def down(*_args, **_kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(cache, "incr", down)
    assert training_label_counted(project_id=project.id, retrain_every=2)
    assert Project.objects.get(id=project.id).training_requested


def test_a_failed_retrain_request_after_commit_does_not_fail_the_stored_label(
    user, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a label that completes a retrain batch, and a database that refuses the request after commit
    project = make_project(user, retrain_every=1)
    item = make_items(project, 1)[0]

    def refused(**_kwargs):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(annotations, "training_label_counted", refused)
    # When the label is stored
    with django_capture_on_commit_callbacks(execute=True):
        annotation, created = annotation_create(item=item, user=user, label="cat")
    # Then the caller gets it, and it is stored, with no retrain requested yet
    assert created and Annotation.objects.filter(id=annotation.id, active=True).exists()
    assert not Project.objects.get(id=project.id).training_requested
    # And the workers' next reconciliation requests the retrain the label should have asked for
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert training_reconcile() == [project.id]
    assert Project.objects.get(id=project.id).training_requested and len(enqueued) == 1
    assert training_reconcile() == []  # requested now: nothing more to do


@pytest.mark.django_db(transaction=True)
def test_a_lost_request_is_resent_once_per_period_and_never_waits_on_a_locked_project(user):
    # Given a retrain requested an hour ago that no worker took up
    project = make_project(user)
    old = timezone.now() - timedelta(hours=1)
    Project.objects.filter(id=project.id).update(training_requested=True, training_requested_at=old)
    if connection.vendor == "postgresql":
        # When another connection holds the project's row (for 10 s at most)
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            try:
                with transaction.atomic():
                    Project.objects.select_for_update().filter(id=project.id).first()
                    held.set()
                    release.wait(10)
            finally:
                connection.close()

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(10)
        try:
            # Then a resend leaves it to the next caller instead of queueing on the row (had it
            # waited, it would have won once the holder gave up)
            assert training_resend(project_id=project.id) is False
        finally:
            release.set()
            holder.join()
    # And once the row is free one caller resends, and no other within the period
    assert training_resend(project_id=project.id) is True
    assert training_resend(project_id=project.id) is False
    project.refresh_from_db()
    assert project.training_requested and project.training_requested_at > old


def test_training_lock_allows_one_run_and_coalesces_requests(user):
    project = make_project(user)
    assert training_begin(project_id=project.id) is None  # nothing requested
    training_request(project_id=project.id)
    version = training_begin(project_id=project.id)
    assert version.number == 1 and version.status == "training"
    training_request(project_id=project.id)
    training_request(project_id=project.id)
    assert training_begin(project_id=project.id) is None  # locked
    training_end(project_id=project.id)
    second = training_begin(project_id=project.id)
    assert second.number == 2
    version.refresh_from_db()
    assert version.status == "failed" and "interrupted" in version.error


def test_stale_training_lock_is_taken_over(user):
    project = make_project(user)
    training_request(project_id=project.id)
    training_begin(project_id=project.id)
    Project.objects.filter(id=project.id).update(training_lock_until=timezone.now() - timedelta(seconds=1))
    training_request(project_id=project.id)
    assert training_begin(project_id=project.id).number == 2


def test_publish_writes_prelabels_and_priorities_then_marks_ready(user):
    project = make_project(user)
    items = make_items(project, 3)
    training_request(project_id=project.id)
    version = training_begin(project_id=project.id)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    model_version_publish(
        version=version,
        item_ids=[i.id for i in items],
        probs=probs,
        scores=np.array([0.1, 0.3, 0.7]),
        priorities=np.array([0.1, 0.3, 0.7]),
        metrics={"val_accuracy": 0.5},
        weights="models/x.pt",
    )
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.READY and version.finished is not None
    rows = list(Item.objects.order_by("id").values_list("pred_label__name", "pred_confidence", "priority"))
    assert rows == [("cat", 0.9, 0.1), ("dog", 0.8, 0.3), ("cat", 0.5, 0.7)]
    assert item_lease_next(project=project, user=user).id == items[2].id


def test_reconciliation_requests_only_projects_with_enough_labels_since_their_last_version(user):
    # Given two projects that each had version 1 trained after one label, then got one more label (retrain_every 1),
    # and a third project whose only label came before its version
    def project_with(n_after: int) -> Project:
        project = make_project(user, retrain_every=1)
        first, *rest = make_items(project, 1 + n_after)
        annotation_create(item=first, user=user, label="cat")
        Project.objects.filter(id=project.id).update(training_requested=False)
        ModelVersion.objects.create(project=project, number=1, status="ready", strategy=project.strategy, n_labels=1)
        for item in rest:
            annotation_create(item=item, user=user, label="dog")
        Project.objects.filter(id=project.id).update(training_requested=False)  # as if the request failed
        return project

    behind, also_behind, up_to_date = project_with(1), project_with(1), project_with(0)
    # When the workers reconcile, Then the two with a new label are requested, and only them
    assert sorted(training_reconcile()) == sorted([behind.id, also_behind.id])
    assert not Project.objects.get(id=up_to_date.id).training_requested


def test_training_request_counts_only_labels_since_the_last_version(user, django_capture_on_commit_callbacks):
    project = make_project(user, retrain_every=2)
    items = make_items(project, 5)
    with django_capture_on_commit_callbacks(execute=True):
        label(items[0], user, "cat")
        label(items[1], user, "cat")
    assert Project.objects.get(id=project.id).training_requested
    training_begin(project_id=project.id)  # a version begins after two labels
    with django_capture_on_commit_callbacks(execute=True):
        label(items[2], user, "cat")
    assert not Project.objects.get(id=project.id).training_requested
    with django_capture_on_commit_callbacks(execute=True):
        label(items[3], user, "cat")
    assert Project.objects.get(id=project.id).training_requested
