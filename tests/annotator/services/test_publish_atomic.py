"""The database rejecting a write in the middle of publishing predictions: no half-published
version; the previous version keeps serving. The rejection is real: a trigger in the database."""

from __future__ import annotations

import io

import pytest
from django.db import connection

from annotator.models import Item, ModelVersion, Project
from annotator.selectors.model_versions import model_version_current
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.tasks import train_project_task
from tests.factories import digits_pngs, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def reject_updates_of(item_id: int) -> None:
    """Make the database refuse any update of one item row."""
    table = Item._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION reject_item_write() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'rejected by the test'; END; $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER reject_item BEFORE UPDATE ON {table} FOR EACH ROW "
                f"WHEN (OLD.id = {int(item_id)}) EXECUTE FUNCTION reject_item_write()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER reject_item BEFORE UPDATE ON {table} FOR EACH ROW "
                f"WHEN OLD.id = {int(item_id)} BEGIN SELECT RAISE(ABORT, 'rejected by the test'); END"
            )


def drop_rejection() -> None:
    table = Item._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER IF EXISTS reject_item ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS reject_item_write()")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS reject_item")


def test_a_rejected_write_mid_publish_publishes_nothing():
    # Given a project serving version 1
    user = make_user("manager")
    project = make_project(user, labels=[str(d) for d in range(10)], retrain_every=10_000)
    # (Atomicity does not depend on size: 60 images, 20 labeled, keep the two training runs short.)
    images, truth = digits_pngs(60)
    items_import_uploads(project=project, files=[(f"{i}.png", io.BytesIO(d)) for i, d in enumerate(images)], user=user)
    for item, label in zip(Item.objects.select_related("project").filter(project=project)[:20], truth, strict=False):
        annotation_create(item=item, user=user, label=str(label))
    Project.objects.filter(id=project.id).update(training_requested=True)
    assert train_project_task(project.id) == 1
    v1 = ModelVersion.objects.get(project=project, number=1)
    before = dict(Item.objects.filter(project=project).values_list("id", "priority"))

    # When the database rejects the write of one item's prediction, late in the bulk update
    unlabeled = Item.objects.filter(project=project, status="unlabeled").order_by("id")
    reject_updates_of(unlabeled.values_list("id", flat=True).last())
    try:
        Project.objects.filter(id=project.id).update(training_requested=True)
        assert train_project_task(project.id) is None
    finally:
        drop_rejection()

    # Then version 2 failed with the reason, no item points at it, priorities are untouched,
    # and version 1 still serves
    v2 = ModelVersion.objects.get(project=project, number=2)
    assert v2.status == "failed" and "rejected by the test" in v2.error
    assert not Item.objects.filter(pred_version=v2).exists()
    assert dict(Item.objects.filter(project=project).values_list("id", "priority")) == before
    assert model_version_current(project=project) == v1
