"""The training task as a plain function: publish a version, and survive a failed run."""

from __future__ import annotations

import io

import pytest

import ml.training
from annotator import paths
from annotator.models import Item, ModelVersion, Project
from annotator.selectors.model_versions import model_version_current
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.training import training_request
from annotator.tasks import train_project_task
from tests.factories import digits_pngs, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits_project(user):
    project = make_project(user, labels=[str(d) for d in range(10)], retrain_every=1000)
    images, truth = digits_pngs(60)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(data)) for i, data in enumerate(images)], user=user
    )
    items = list(Item.objects.filter(project=project).order_by("id"))[:20]
    for item in items:
        annotation_create(item=item, user=user, label=str(truth[int(item.original_name[:-4])]))
    return project


def test_task_publishes_a_ready_version_with_prelabels(digits_project):
    training_request(project_id=digits_project.id)
    assert train_project_task(digits_project.id) == 1
    version = ModelVersion.objects.get(project=digits_project)
    assert version.status == "ready" and version.n_labels == 20
    assert version.metrics["val_accuracy"] is not None
    assert paths.model_path(version.weights).exists()
    pool = Item.objects.filter(project=digits_project, status="unlabeled")
    assert pool.count() == 40 and not pool.filter(pred_version__isnull=True).exists()


def test_failed_run_is_recorded_and_the_previous_version_keeps_serving(digits_project):
    training_request(project_id=digits_project.id)
    train_project_task(digits_project.id)
    first = model_version_current(project=digits_project)
    # The decoded-image cache disappears: the next run cannot read its inputs.
    paths.cache_path(digits_project.id, digits_project.input_size).unlink()
    training_request(project_id=digits_project.id)
    assert train_project_task(digits_project.id) is None
    failed = ModelVersion.objects.get(project=digits_project, number=2)
    assert failed.status == "failed" and failed.error
    assert model_version_current(project=digits_project) == first
    assert not Item.objects.filter(project=digits_project, pred_version=failed).exists()
    digits_project.refresh_from_db()
    assert digits_project.training_lock_until is None


@pytest.mark.parametrize("allow_flips", [False, True])
def test_the_projects_flip_setting_reaches_training(digits_project, monkeypatch, allow_flips):
    # Given a project that does (or does not) allow mirrored images
    Project.objects.filter(id=digits_project.id).update(allow_flips=allow_flips)
    seen = set()
    real_augment = ml.training._augment

    def spy(x, rng, flips):
        seen.add(flips)
        return real_augment(x, rng, flips)

    monkeypatch.setattr(ml.training, "_augment", spy)
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 2)
    # When the worker trains it
    training_request(project_id=digits_project.id)
    assert train_project_task(digits_project.id) == 1
    # Then every training batch was augmented with the project's setting
    assert seen == {allow_flips}
