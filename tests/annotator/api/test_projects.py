"""``annotator/api/projects.py``: login and token auth, creating projects, the project detail (retrain status)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator.models import DEFAULT_STRATEGY, ModelVersion, Project
from annotator.selectors.model_versions import retrain_status
from annotator.services.training import training_begin
from tests.annotator.helpers import label, make_items
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def test_retrain_status_counts_labels_since_the_latest_version(
    user, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    project = make_project(user, retrain_every=3)
    items = make_items(project, 6)

    def status():
        with django_assert_max_num_queries(2):
            return retrain_status(project=project)

    # Given no model yet: the first comes after 3 labels
    assert status() == {"labels_until_next": 3, "training": False}
    with django_capture_on_commit_callbacks(execute=True):  # each label's retrain check, as after a commit
        label(items[0], user, "cat")
        label(items[1], user, "dog")
    assert status() == {"labels_until_next": 1, "training": False}
    # When the third label requests a retrain, and while it runs: no count, training
    with django_capture_on_commit_callbacks(execute=True):
        label(items[2], user, "cat")
    assert Project.objects.get(id=project.id).training_requested
    assert status() == {"labels_until_next": 0, "training": True}
    version = training_begin(project_id=project.id)
    assert not Project.objects.get(id=project.id).training_requested
    assert status() == {"labels_until_next": 0, "training": True}
    # When the version is ready, only labels after it began count
    ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.READY)
    assert status() == {"labels_until_next": 3, "training": False}
    label(items[3], user, "dog")
    assert status() == {"labels_until_next": 2, "training": False}
    # And the project's API carries it, with the classes under-covered (none: too few labels yet)
    api = APIClient()
    api.force_authenticate(user)
    body = api.get(f"/api/projects/{project.id}/").json()
    assert body["retrain"] == {"labels_until_next": 2, "training": False} and body["under_covered"] == []


def test_the_projects_api_names_classes_with_too_few_labels(user):
    # Given 2 classes and 20 labels, 19 cats and 1 dog
    project = make_project(user, retrain_every=1000)
    items = make_items(project, 20)
    for item in items[:19]:
        label(item, user, "cat")
    label(items[19], user, "dog")
    api = APIClient()
    api.force_authenticate(user)
    # Then the project names dog with its one label
    assert api.get(f"/api/projects/{project.id}/").json()["under_covered"] == [{"name": "dog", "n": 1}]


def test_every_endpoint_needs_login():
    client = APIClient()
    for path in ["/api/projects/", "/api/projects/1/next/", "/api/projects/1/model-versions/", "/api/items/1/"]:
        assert client.get(path).status_code in (401, 403)
    assert client.post("/api/projects/", {"name": "x", "labels": ["a"]}, format="json").status_code in (401, 403)


def test_creating_a_project_needs_the_permission():
    # Given a logged-in user that no admin gave the permission to create projects
    client = APIClient()
    client.force_authenticate(make_user("bob"))
    # When they create a project
    response = client.post("/api/projects/", {"name": "Mine", "labels": ["a", "b"]}, format="json")
    # Then they get 403 with a reason in "detail", and no project is made
    assert response.status_code == 403
    assert "permission to create projects" in response.json()["detail"]
    assert not Project.objects.exists()
    # And they can still list theirs
    assert client.get("/api/projects/").status_code == 200


def test_token_auth_works(user):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/projects/").status_code == 200


def test_create_project(project):
    assert project["name"] == "Pets"
    assert project["labels"] == ["cat", "dog"]
    assert isinstance(project["id"], int)
    assert project["retrain_every"] == 10 and project["strategy"] == DEFAULT_STRATEGY == "margin"


def test_create_project_with_options(api):
    body = {"name": "Photos", "labels": ["a", "b", "c"], "model_family": "pretrained", "allow_flips": True}
    body |= {"multi_label": True, "labels_per_item": 3, "show_prelabels": False, "lease_seconds": 60}
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["model_family"] == "pretrained" and data["allow_flips"] and data["multi_label"]
    assert data["labels_per_item"] == 3 and data["show_prelabels"] is False and data["lease_seconds"] == 60


@pytest.mark.parametrize(
    ("asked", "kind"),
    [
        ({}, "classification"),
        ({"kind": "multi_label"}, "multi_label"),
        ({"multi_label": True}, "multi_label"),
        ({"multi_label": False}, "classification"),
        ({"kind": "multi_label", "multi_label": True}, "multi_label"),
        ({"kind": "classification"}, "classification"),
    ],
)
def test_a_project_has_the_task_kind_asked_for_and_multi_label_is_its_alias(api, asked, kind):
    response = api.post("/api/projects/", {"name": "Scenes", "labels": ["cat", "dog"], **asked}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["multi_label"]) == (kind, kind == "multi_label")
    assert Project.objects.get(id=response.json()["id"]).kind == kind


def test_a_contradicting_alias_says_so(api):
    body = {"name": "x", "labels": ["a", "b"], "kind": "classification", "multi_label": True}
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 400 and "contradicts kind 'classification'" in response.json()["detail"]


def test_create_project_with_torchscript_backbone(api, settings, tmp_path):
    (tmp_path / "net.pt").write_bytes(b"not checked until training")
    settings.IMPORT_ROOTS = [str(tmp_path)]
    body = {"name": "Own", "labels": ["a", "b"], "model_family": "torchscript"}
    body["backbone_path"] = str(tmp_path / "net.pt")
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["model_family"] == "torchscript"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "x", "labels": []},
        {"name": "x", "labels": ["a", "a"]},
        {"labels": ["a"]},
        {"name": "x", "labels": ["a"], "strategy": "psychic"},
        {"name": "x", "labels": [3]},
        {"name": "x", "labels": ["a"], "model_family": "vit-huge"},
        {"name": "x", "labels": ["a"], "model_family": "torchscript"},
        {"name": "x", "labels": ["a"], "model_family": "torchscript", "backbone_path": "/etc/passwd"},
        {"name": "x", "labels": ["a"], "backbone_path": "net.pt"},
        {"name": "x", "labels": ["a", "b"], "labels_per_item": 0},
        {"name": "x", "labels": ["a"], "multi_label": True},
        {"name": "x", "labels": ["a", "b"], "kind": "boxes-someday"},
        {"name": "x", "labels": ["a", "b"], "kind": "classification", "multi_label": True},
        {"name": "x", "labels": ["a", "b"], "kind": "multi_label", "multi_label": False},
        {"name": "x", "labels": ["a" * 101]},
    ],
)
def test_create_project_rejects_bad_input(api, body):
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert response.json()
