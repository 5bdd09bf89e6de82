"""The API's output serializers are the responses: exact JSON bytes for an item with a pre-label, a
background job and the dashboard's run in progress; selectors answer ``None`` for what a user may
not see, and the permission classes leave ``OPTIONS`` and unanswered methods as DRF has them."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from annotator.models import Item, Job, LabelClass, ModelVersion, ReviewStatus, TaskKind
from annotator.selectors.items import item_get_for_user
from annotator.selectors.jobs import job_get_for_user
from annotator.selectors.projects import project_get_for_user
from annotator.services.imports import items_import_uploads
from annotator.services.jobs import job_export_request
from annotator.services.members import membership_add
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    manager = make_user("manager")
    annotator = make_user("annotator")
    project = make_project(manager, prelabel_threshold=0.7)
    membership_add(project=project, user=annotator)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(60 + i))) for i in range(2)], user=manager
    )
    return manager, annotator, project


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def as_json(value) -> bytes:
    """What DRF's JSON renderer writes for ``value`` (datetimes as ISO 8601 with ``Z``)."""
    return JSONRenderer().render(value)


def test_an_item_with_a_prelabel_is_exactly_these_bytes(team):
    # Given an item the model guessed "dog" for, less surely than the project's threshold
    manager, _, project = team
    item = Item.objects.filter(project=project).order_by("id").first()
    version = ModelVersion.objects.create(project=project, number=1, status="ready", n_labels=4)
    dog = LabelClass.objects.get(project=project, name="dog")
    Item.objects.filter(id=item.id).update(
        pred_label=dog, pred_version=version, pred_confidence=0.625, pred_probs=[0.375, 0.625], score=0.5
    )
    item.refresh_from_db()

    # When a manager reads it
    response = client_for(manager).get(f"/api/items/{item.id}/")

    # Then the body is exactly the documented fields, in order, numbers as stored
    expected = {
        "id": item.id,
        "image_url": f"/api/items/{item.id}/image/?v={item.sha256[:16]}",
        "filename": "0.png",
        "width": 24,
        "height": 24,
        "status": "unlabeled",
        "label": None,
        "labels": None,
        "prelabel": {"label": "dog", "confidence": 0.625, "model_version": 1, "probs": [0.375, 0.625], "unsure": True},
        "score": 0.5,
        "lease_until": None,
        "thumbnail_url": f"/api/items/{item.id}/thumbnail/?v={item.sha256[:16]}",
        "review_status": "none",
        "review_reason": "",
        "agreement": None,
        "batch": 1,
        "created": item.created,
        "boxes": None,
        "preboxes": None,
    }
    assert response.status_code == 200
    assert response.content == as_json(expected)


def test_a_job_is_exactly_these_bytes(team, settings, tmp_path):
    # Given a queued folder import
    manager, _, project = team
    settings.IMPORT_ROOTS = [str(tmp_path)]
    (tmp_path / "x.png").write_bytes(png_bytes(5))
    response = client_for(manager).post(f"/api/projects/{project.id}/imports/", {"folder": str(tmp_path)})
    job = Job.objects.get()

    # Then the answer names the folder but shows no kept file's path, and links to the job
    expected = {
        "id": job.id,
        "project": project.id,
        "kind": "import",
        "status": "queued",
        "progress": 0.0,
        "params": {"folder": str(tmp_path), "manifest": False},
        "summary": {},
        "error": "",
        "created": job.created,
        "finished": None,
        "url": f"/api/jobs/{job.id}/",
        "download_url": None,
    }
    assert response.status_code == 202
    assert response.content == as_json(expected)


def test_the_dashboards_run_in_progress_and_last_failure_are_exactly_these_bytes(team):
    # Given a failed run and one in progress
    manager, _, project = team
    failed = ModelVersion.objects.create(project=project, number=1, status="failed", n_labels=3, error="boom")
    running = ModelVersion.objects.create(project=project, number=2, status="training", n_labels=5, progress=0.25)

    # When a manager reads the dashboard
    body = json.loads(client_for(manager).get(f"/api/projects/{project.id}/dashboard/").content)

    # Then both are there with exactly these fields
    assert body["training"] == {
        "number": 2,
        "progress": 0.25,
        "n_labels": 5,
        "created": json.loads(as_json(running.created)),
    }
    assert body["last_error"] == {"number": 1, "error": "boom", "finished": failed.finished}


def test_selectors_answer_none_for_what_a_user_may_not_see(team):
    manager, _, project = team
    outsider = make_user("outsider")
    item = Item.objects.filter(project=project).first()
    job = job_export_request(project=project, user=manager, fmt="csv")
    assert project_get_for_user(user=manager, project_id=project.id) == project
    assert item_get_for_user(user=manager, item_id=item.id) == item
    assert job_get_for_user(user=manager, job_id=job.id) == job
    assert project_get_for_user(user=outsider, project_id=project.id) is None
    assert item_get_for_user(user=outsider, item_id=item.id) is None
    assert job_get_for_user(user=outsider, job_id=job.id) is None
    assert project_get_for_user(user=manager, project_id=10**9) is None


def test_selectors_never_import_http():
    # Selectors return objects or None; the API and the pages decide what a missing one means
    for path in (Path(__file__).resolve().parents[3] / "annotator" / "selectors").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [m for m in modules if m.startswith(("django.http", "rest_framework"))], path.name


def test_options_and_unanswered_methods_load_nothing(team):
    # Given someone outside the project
    _, _, project = team
    outsider = client_for(make_user("outsider"))
    # Then OPTIONS describes the view and a method it does not answer is a 405, as in DRF
    assert outsider.options(f"/api/projects/{project.id}/").status_code == 200
    assert outsider.put(f"/api/projects/{project.id}/", {}, format="json").status_code == 405
    # And a method it answers is a 404 for them, with the reason
    response = outsider.get(f"/api/projects/{project.id}/")
    assert (response.status_code, response.json()) == (404, {"detail": "No such project."})


def test_the_schema_names_each_kind_enum_after_its_choices():
    # Given the settings that name the choice sets sharing a field name (they cannot import the models)
    overrides = settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
    # Then they list exactly the choices the models have
    assert overrides == {
        "TaskKindEnum": TaskKind.values,
        "JobKindEnum": Job.Kind.values,
        "ItemStatusEnum": Item.Status.values,
        "ModelVersionStatusEnum": ModelVersion.Status.values,
        "JobStatusEnum": Job.Status.values,
        "ReviewStatusEnum": ReviewStatus.values,
    }
