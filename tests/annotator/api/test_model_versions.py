"""``annotator/api/model_versions.py``: listing versions and requesting a retrain, which annotators may not do."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotator.models import ModelVersion, Project
from annotator.services.members import membership_add
from annotator.services.training import model_version_fail, training_begin
from tests.annotator.helpers import files
from tests.factories import make_user, png_bytes

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
