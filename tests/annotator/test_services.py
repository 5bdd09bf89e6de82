"""Services: project creation, import, leasing, annotations, and the training lifecycle."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from annotator import services
from annotator.models import Annotation, Item, ModelVersion, Project
from tests.factories import make_project, make_user, png_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def upload(project, files, user=None):
    return services.items_import_uploads(
        project=project, files=[(name, io.BytesIO(data)) for name, data in files], user=user
    )


def test_project_create_assigns_hotkeys_in_order(user):
    project = make_project(user, labels=["cat", "dog", {"name": "bird", "hotkey": "b"}])
    classes = list(project.classes.order_by("index").values_list("name", "hotkey", "index"))
    assert classes == [("cat", "1", 0), ("dog", "2", 1), ("bird", "b", 2)]
    assert project.memberships.get().role == "manager"


def test_project_create_hotkeys_skip_reserved_letters(user):
    project = make_project(user, labels=[f"c{i}" for i in range(30)])
    hotkeys = list(project.classes.order_by("index").values_list("hotkey", flat=True))
    assert hotkeys[:10] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "a"]
    assert "s" not in hotkeys and "z" not in hotkeys
    assert len(set(hotkeys)) == 30


@pytest.mark.parametrize(
    ("labels", "message"),
    [([], "at least one"), (["a", "a"], "twice"), (["a/b"], "slashes"), ([{"name": "x", "hotkey": "s"}], "Hotkey")],
)
def test_project_create_rejects_bad_labels(user, labels, message):
    with pytest.raises(services.ServiceError, match=message):
        make_project(user, labels=labels)
    assert not Project.objects.exists()


def test_import_counts_duplicates_and_rejects_bad_files_but_keeps_the_rest(user):
    project = make_project(user)
    summary = upload(
        project,
        [("a.png", png_bytes(1)), ("b.png", png_bytes(2)), ("a-again.png", png_bytes(1)), ("notes.jpg", b"hello")],
    )
    assert (summary.imported, summary.duplicates) == (2, 1)
    assert summary.rejected == [{"name": "notes.jpg", "error": "not a readable image (unknown or unsupported format)"}]
    items = list(Item.objects.filter(project=project).order_by("original_name"))
    assert [i.original_name for i in items] == ["a.png", "b.png"]
    assert all(i.width == 24 and i.height == 24 and len(i.sha256) == 64 for i in items)
    assert all(i.cache_row is not None for i in items)
    # A second upload of the same file is a duplicate too.
    assert upload(project, [("c.png", png_bytes(2))]).duplicates == 1


def test_import_zip_takes_labels_from_class_folders(user):
    project = make_project(user)
    archive = zip_bytes({"cat/1.png": png_bytes(1), "dog/2.png": png_bytes(2), "other/3.png": png_bytes(3)})
    summary = upload(project, [("pets.zip", archive)], user)
    assert (summary.imported, summary.labeled) == (3, 2)
    labels = dict(Item.objects.filter(project=project).values_list("original_name", "label__name"))
    assert labels == {"cat/1.png": "cat", "dog/2.png": "dog", "other/3.png": None}
    assert Annotation.objects.filter(source="import").count() == 2


def test_import_folder(user, tmp_path):
    project = make_project(user)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "x.png").write_bytes(png_bytes(5))
    (tmp_path / "y.png").write_bytes(png_bytes(6))
    (tmp_path / "readme.txt").write_text("not an image")
    summary = services.items_import_folder(project=project, root=tmp_path, user=None)
    assert (summary.imported, summary.labeled) == (2, 1)
    assert summary.rejected[0]["name"] == "readme.txt"


def make_items(project, n):
    upload(project, [(f"{i}.png", png_bytes(100 + i)) for i in range(n)])
    return list(Item.objects.filter(project=project).order_by("id"))


def test_lease_serves_highest_priority_and_never_the_same_item_twice(user):
    project = make_project(user)
    items = make_items(project, 4)
    for rank, item in enumerate(items):
        Item.objects.filter(id=item.id).update(priority=rank)
    other = make_user("bob")
    first = services.item_lease_next(project=project, user=user)
    second = services.item_lease_next(project=project, user=other)
    third = services.item_lease_next(project=project, user=user, exclude=[first.id])
    assert [first.id, second.id, third.id] == [items[3].id, items[2].id, items[1].id]


def test_lease_resumes_own_item_and_expired_lease_returns_to_queue(user):
    project = make_project(user)
    items = make_items(project, 2)
    Item.objects.filter(id=items[0].id).update(priority=10)
    first = services.item_lease_next(project=project, user=user)
    assert services.item_lease_next(project=project, user=user).id == first.id  # a reload resumes it
    bob = make_user("bob")
    assert services.item_lease_next(project=project, user=bob).id == items[1].id
    Item.objects.filter(id=first.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    carol = make_user("carol")
    assert services.item_lease_next(project=project, user=carol).id == first.id


def test_skip_moves_item_behind_unlabeled_ones(user):
    project = make_project(user)
    items = make_items(project, 2)
    Item.objects.filter(id=items[0].id).update(priority=10)
    first = services.item_lease_next(project=project, user=user)
    services.item_skip(item=first, user=user)
    assert services.item_lease_next(project=project, user=user, exclude=[]).id == items[1].id
    # Once nothing unlabeled is free, skipped items come back.
    assert services.item_lease_next(project=project, user=user, exclude=[items[1].id]).id == items[0].id


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
                item = services.item_lease_next(project=project, user=u)
                if item is not None:
                    with lock:
                        got.append(item.id)
                    services.annotation_create(item=item, user=u, label="cat")
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


def test_annotation_is_idempotent_on_client_token(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    first, created = services.annotation_create(item=item, user=user, label="cat", client_token="t1")
    again, created_again = services.annotation_create(item=item, user=user, label="dog", client_token="t1")
    assert created and not created_again and again.id == first.id
    assert Annotation.objects.count() == 1
    item.refresh_from_db()
    assert (item.status, item.label.name, item.lease_user) == ("labeled", "cat", None)


def test_changing_a_label_keeps_history_and_one_active_annotation(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    services.annotation_create(item=item, user=user, label="cat", client_token="a")
    services.annotation_create(item=item, user=user, label="dog", client_token="b")
    assert list(Annotation.objects.order_by("id").values_list("label__name", "active")) == [
        ("cat", False),
        ("dog", True),
    ]
    item.refresh_from_db()
    assert item.label.name == "dog"


def test_unknown_label_names_the_valid_ones(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    with pytest.raises(services.ServiceError, match="valid labels: cat, dog"):
        services.annotation_create(item=item, user=user, label="cow")
    assert not Annotation.objects.exists()


def test_annotation_records_whether_the_prelabel_was_accepted(user):
    project = make_project(user)
    a, b = make_items(project, 2)
    cat = project.classes.get(name="cat")
    Item.objects.filter(id__in=[a.id, b.id]).update(pred_label=cat)
    a.refresh_from_db()
    b.refresh_from_db()
    assert services.annotation_create(item=a, user=user, label="cat")[0].prelabel == "accepted"
    assert services.annotation_create(item=b, user=user, label="dog")[0].prelabel == "corrected"


def test_label_after_lease_expired_is_still_accepted(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    Item.objects.filter(id=item.id).update(lease_user=user, lease_until=timezone.now() - timedelta(hours=1))
    annotation, created = services.annotation_create(item=item, user=user, label="dog")
    assert created and annotation.label.name == "dog"


def test_training_requested_after_retrain_every_labels(user, django_capture_on_commit_callbacks):
    project = make_project(user, retrain_every=3)
    items = make_items(project, 5)
    with django_capture_on_commit_callbacks(execute=True):
        for item in items[:2]:
            services.annotation_create(item=item, user=user, label="cat")
    project.refresh_from_db()
    assert not project.training_requested
    with django_capture_on_commit_callbacks(execute=True):
        services.annotation_create(item=items[2], user=user, label="dog")
    project.refresh_from_db()
    assert project.training_requested


def test_a_failed_retrain_request_after_commit_does_not_fail_the_stored_label(
    user, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a label that completes a retrain batch, and a database that refuses the request after commit
    project = make_project(user, retrain_every=1)
    item = make_items(project, 1)[0]

    def refused(**_kwargs):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(services, "training_maybe_request", refused)
    # When the label is stored
    with django_capture_on_commit_callbacks(execute=True):
        annotation, created = services.annotation_create(item=item, user=user, label="cat")
    # Then the caller gets it, and it is stored, with no retrain requested yet
    assert created and Annotation.objects.filter(id=annotation.id, active=True).exists()
    assert not Project.objects.get(id=project.id).training_requested
    # And the workers' next reconciliation requests the retrain the label should have asked for
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert services.training_reconcile() == [project.id]
    assert Project.objects.get(id=project.id).training_requested and len(enqueued) == 1
    assert services.training_reconcile() == []  # requested now: nothing more to do


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
            assert services.training_resend(project_id=project.id) is False
        finally:
            release.set()
            holder.join()
    # And once the row is free one caller resends, and no other within the period
    assert services.training_resend(project_id=project.id) is True
    assert services.training_resend(project_id=project.id) is False
    project.refresh_from_db()
    assert project.training_requested and project.training_requested_at > old


def test_training_lock_allows_one_run_and_coalesces_requests(user):
    project = make_project(user)
    assert services.training_begin(project_id=project.id) is None  # nothing requested
    services.training_request(project_id=project.id)
    version = services.training_begin(project_id=project.id)
    assert version.number == 1 and version.status == "training"
    services.training_request(project_id=project.id)
    services.training_request(project_id=project.id)
    assert services.training_begin(project_id=project.id) is None  # locked
    services.training_end(project_id=project.id)
    second = services.training_begin(project_id=project.id)
    assert second.number == 2
    version.refresh_from_db()
    assert version.status == "failed" and "interrupted" in version.error


def test_stale_training_lock_is_taken_over(user):
    project = make_project(user)
    services.training_request(project_id=project.id)
    services.training_begin(project_id=project.id)
    Project.objects.filter(id=project.id).update(training_lock_until=timezone.now() - timedelta(seconds=1))
    services.training_request(project_id=project.id)
    assert services.training_begin(project_id=project.id).number == 2


def test_publish_writes_prelabels_and_priorities_then_marks_ready(user):
    project = make_project(user)
    items = make_items(project, 3)
    services.training_request(project_id=project.id)
    version = services.training_begin(project_id=project.id)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    services.model_version_publish(
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
    assert services.item_lease_next(project=project, user=user).id == items[2].id


def test_reconciliation_requests_only_projects_with_enough_labels_since_their_last_version(user):
    # Given two projects that each had version 1 trained after one label, then got one more label (retrain_every 1),
    # and a third project whose only label came before its version
    def project_with(n_after: int) -> Project:
        project = make_project(user, retrain_every=1)
        first, *rest = make_items(project, 1 + n_after)
        services.annotation_create(item=first, user=user, label="cat")
        Project.objects.filter(id=project.id).update(training_requested=False)
        ModelVersion.objects.create(project=project, number=1, status="ready", strategy=project.strategy, n_labels=1)
        for item in rest:
            services.annotation_create(item=item, user=user, label="dog")
        Project.objects.filter(id=project.id).update(training_requested=False)  # as if the request failed
        return project

    behind, also_behind, up_to_date = project_with(1), project_with(1), project_with(0)
    # When the workers reconcile, Then the two with a new label are requested, and only them
    assert sorted(services.training_reconcile()) == sorted([behind.id, also_behind.id])
    assert not Project.objects.get(id=up_to_date.id).training_requested
