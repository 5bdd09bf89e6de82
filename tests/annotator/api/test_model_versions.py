"""``annotator/api/model_versions.py``: listing versions and requesting a retrain, which annotators may not do."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from annotator.models import Item, ModelVersion, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from annotator.services.training import model_version_fail, training_begin
from annotator.tasks import train_project_task
from tests.annotator.helpers import files
from tests.factories import digits_pngs, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def test_model_versions_and_train(api, project):
    pid = project["id"]
    assert api.get(f"/api/projects/{pid}/model-versions/").json() == []
    assert api.post(f"/api/projects/{pid}/train/").status_code == 202
    version = training_begin(project_id=pid)
    model_version_fail(version=version, error="boom")
    versions = api.get(f"/api/projects/{pid}/model-versions/").json()
    assert versions[0]["number"] == 1 and versions[0]["status"] == "failed" and versions[0]["error"] == "boom"
    assert set(versions[0]) >= {"number", "status", "n_labels", "metrics", "created", "finished"}
    assert ModelVersion.objects.count() == 1


def test_annotator_cannot_train_import_or_export(project):
    bob = make_user("bob")
    membership_add(project=Project.objects.get(id=project["id"]), user=bob)
    client = APIClient()
    client.force_authenticate(bob)
    pid = project["id"]
    assert client.post(f"/api/projects/{pid}/train/").status_code == 403
    assert client.get(f"/api/projects/{pid}/export/?format=csv").status_code == 403
    assert (
        client.post(f"/api/projects/{pid}/items/", files(("a.png", png_bytes(1))), format="multipart").status_code
        == 403
    )
    assert client.get(f"/api/projects/{pid}/next/").status_code == 204


def test_a_version_says_where_it_goes_wrong_out_of_fold(monkeypatch):
    # Given a digits project (0, 1, 2) whose worker published version 1 from 24 labels
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 30)
    user = make_user("mia")
    project = make_project(user, labels=["0", "1", "2"])
    pngs, truth = digits_pngs(80)
    chosen = [i for i, t in enumerate(truth) if t < 3][:30]
    items_import_uploads(project=project, files=[(f"{i}.png", io.BytesIO(pngs[i])) for i in chosen], user=user)
    for item in list(Item.objects.filter(project=project).order_by("id"))[:24]:
        annotation_create(item=item, user=user, label=str(truth[int(item.original_name[:-4])]))
    Project.objects.filter(id=project.id).update(training_requested=True)
    assert train_project_task(project.id) == 1
    api = APIClient()
    api.force_authenticate(user)

    # When its detail is read
    body = api.get(f"/api/projects/{project.id}/model-versions/1/").json()

    # Then the confusion counts the labeled items out of fold, as the estimate does: the same n, and
    # the diagonal's share is the estimate's out-of-fold accuracy
    confusion, metrics = body["confusion"], body["metrics"]
    assert body["number"] == 1 and body["status"] == "ready"
    assert confusion["classes"] == ["0", "1", "2"] and confusion["n"] == metrics["val_n"] > 0
    assert sum(n for _, _, n in confusion["cells"]) == confusion["n"]
    diagonal = sum(n for given, predicted, n in confusion["cells"] if given == predicted)
    assert diagonal / confusion["n"] == pytest.approx(metrics["cv_accuracy"], abs=1e-4)
    # And each class has its precision, recall and the items given it
    assert [c["name"] for c in confusion["per_class"]] == ["0", "1", "2"]
    assert sum(c["support"] for c in confusion["per_class"]) == confusion["n"]
    assert all(c["recall"] is None or 0 <= c["recall"] <= 1 for c in confusion["per_class"])
    # And the labeled items' stored predictions are those out-of-fold ones: each cell counts the
    # labeled items given one class and predicted another, as the data browser filters them
    stored = {}
    for given, predicted in Item.objects.filter(
        project=project, status="labeled", pred_version__number=1, answer_classes__role="consensus"
    ).values_list("answer_classes__label_class__name", "pred_label__name"):
        stored[(given, predicted)] = stored.get((given, predicted), 0) + 1
    names = confusion["classes"]
    assert stored == {(names[given], names[predicted]): n for given, predicted, n in confusion["cells"]}
    # And a version that does not exist is a 404 that says so
    missing = api.get(f"/api/projects/{project.id}/model-versions/9/")
    assert missing.status_code == 404 and "no model version 9" in missing.json()["detail"]
