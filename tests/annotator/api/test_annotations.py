"""``annotator/api/annotations.py``: posting a label and undoing one, idempotent when sent again."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from annotator.models import Annotation
from annotator.services.members import membership_add
from tests.annotator.helpers import files, make_items
from tests.factories import label_of, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def test_undo_api(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    api = APIClient()
    api.force_authenticate(user)
    assert api.post(f"/api/projects/{project.id}/undo/").status_code == 204
    api.post(f"/api/items/{item.id}/annotations/", {"label": "cat"}, format="json")
    response = api.post(f"/api/projects/{project.id}/undo/")
    assert response.status_code == 200 and response.json()["id"] == item.id
    assert response.json()["status"] == "unlabeled"


def test_an_undo_sent_again_with_its_token_undoes_once(user):
    # Given two labels by alice, the second one the latest
    project = make_project(user)
    first, second = make_items(project, 2)
    api = APIClient()
    api.force_authenticate(user)
    for item, name in [(first, "cat"), (second, "dog")]:
        api.post(f"/api/items/{item.id}/annotations/", {"label": name}, format="json")
    undo = f"/api/projects/{project.id}/undo/"
    token, later = f"undo-{uuid.uuid4()}", f"undo-{uuid.uuid4()}"

    # When her undo is sent twice with the same token (a retry after a lost response)
    answers = [api.post(undo, {"client_token": token}, format="json") for _ in range(2)]

    # Then only the latest label is undone, and both answers name its item
    assert [(r.status_code, r.json()["id"]) for r in answers] == [(200, second.id), (200, second.id)]
    assert list(Annotation.objects.order_by("id").values_list("item_id", "active")) == [
        (first.id, True),
        (second.id, False),
    ]
    first.refresh_from_db()
    assert first.status == "labeled"
    # And a new token undoes the label before; the same token from someone else is their own undo
    assert api.post(undo, {"client_token": later}, format="json").json()["id"] == first.id
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    other = APIClient()
    other.force_authenticate(bob)
    assert other.post(undo, {"client_token": token}, format="json").status_code == 204  # nothing of his
    # And an undo without a token still works as before
    api.post(f"/api/items/{second.id}/annotations/", {"label": "cat"}, format="json")
    assert api.post(undo).json()["id"] == second.id


def test_annotation_post_idempotent_and_validated(api, project):
    api.post(f"/api/projects/{project['id']}/items/", files(("a.png", png_bytes(1))), format="multipart")
    item_id = api.get(f"/api/projects/{project['id']}/next/").json()["id"]
    url = f"/api/items/{item_id}/annotations/"
    first = api.post(url, {"label": "cat", "client_token": "tok-1", "duration_ms": 1234}, format="json")
    assert first.status_code == 201 and "id" in first.json()
    again = api.post(url, {"label": "cat", "client_token": "tok-1", "duration_ms": 1234}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Annotation.objects.count() == 1
    bad = api.post(url, {"label": "cow"}, format="json")
    assert bad.status_code == 400
    assert "cat" in bad.json()["detail"] and "dog" in bad.json()["detail"]
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post("/api/items/999999/annotations/", {"label": "cat"}, format="json").status_code == 404
    assert label_of(item_id) == "cat"
