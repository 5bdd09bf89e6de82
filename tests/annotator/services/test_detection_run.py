"""A box project's retrain: the detector trained by the worker's path on the stored boxes, pre-boxes
for every unlabeled image with the version and calibrated confidences, the pool re-ranked, and
the version's mAP on held-out images shown where accuracy is for classification projects."""

from __future__ import annotations

import pytest

from annotator.models import BoxRole, Item, ItemBox, ModelVersion, Project
from annotator.selectors.model_versions import learning_curve
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_folder
from annotator.tasks import train_project_task
from annotator.templatetags.figures import accuracy_text
from ml.evaluation.scenes import write_scenes
from ml.evaluation.shapes import CLASSES as SHAPES
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_a_box_project_trains_a_detector_and_serves_its_pre_boxes(user, tmp_path, settings):
    # Given generated scenes imported as a box project: 24 with their boxes, 8 left to label
    settings.DETECTOR_INPUT_SIZE, settings.DETECTOR_EPOCHS = 64, 4  # a fast round; figures are bench_ml's
    settings.DETECTOR_MIN_STEPS = 0
    write_scenes(tmp_path / "labeled", n_images=24, size=64, seed=5)
    write_scenes(tmp_path / "pool", n_images=8, size=64, seed=6)
    (tmp_path / "pool" / "annotations.json").unlink()  # these come in unlabeled
    project = make_project(user, name="Scenes", labels=list(SHAPES), kind="boxes", retrain_every=4)
    items_import_folder(project=project, root=tmp_path / "labeled", user=user)
    items_import_folder(project=project, root=tmp_path / "pool", user=user)
    pool = Item.objects.filter(project=project, status="unlabeled")
    assert pool.count() == 8

    # When the worker's retrain runs
    Project.objects.filter(id=project.id).update(training_requested=True)
    assert train_project_task(project.id) == 1

    # Then the version is ready with its mAP on the held-out images (5 of 24), by pycocotools
    version = ModelVersion.objects.get(project=project)
    assert version.status == "ready", version.error
    assert version.metrics["val_n"] == 5 and 0 <= version.metrics["val_map50"] <= 1
    assert accuracy_text(version.metrics).startswith("mAP@0.5 ") and "5 held-out images" in accuracy_text(
        version.metrics
    )
    assert learning_curve(project=project)[0]["val_accuracy"] == version.metrics["val_map50"]
    # And every unlabeled image has the version's pre-boxes with confidences in 0..1
    boxes = ItemBox.objects.filter(item__in=pool, role=BoxRole.PREDICTED)
    assert boxes.exists() and set(boxes.values_list("version_id", flat=True)) == {version.id}
    assert all(0 <= c <= 1 for c in boxes.values_list("confidence", flat=True))
    # And the pool carries the image-level guess and a priority for the queue
    assert not pool.filter(pred_version__isnull=True).exists()
    assert len(set(pool.values_list("priority", flat=True))) == 8

    # When one more image is labeled and the project retrains, the maps are not computed again
    item = Item.objects.select_related("project").filter(project=project, status="unlabeled").first()
    annotation_create(item=item, user=user, boxes=[])
    Project.objects.filter(id=project.id).update(training_requested=True, training_lock_until=None)
    assert train_project_task(project.id) == 2
    assert ModelVersion.objects.get(project=project, number=2).metrics["n_train"] == 25
