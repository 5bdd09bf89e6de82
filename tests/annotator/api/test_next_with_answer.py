"""One round trip per label: ``POST /api/items/{id}/annotations/?next=1`` and ``/skip/?next=1`` store
the answer and lease the caller's next item in the same response."""

from __future__ import annotations

import uuid

import pytest

from annotator.models import Annotation, Item
from annotator.services.members import membership_add
from tests.annotator.helpers import client_for, make_items
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def held_by(item_id: int):
    return Item.objects.get(id=item_id).lease_user


def test_a_label_with_next_returns_the_callers_next_item_leased(user):
    # Given a project of 4 items served in id order
    project = make_project(user)
    items = make_items(project, 4)
    api = client_for(user)
    first = api.get(f"/api/projects/{project.id}/next/").json()
    assert first["id"] == items[0].id
    # When the label is sent with ?next=1
    response = api.post(f"/api/items/{first['id']}/annotations/?next=1", {"label": "cat"}, format="json")
    # Then the answer is stored and the next item, leased to the caller, is in the same response
    assert response.status_code == 201
    body = response.json()
    assert body["item"] == items[0].id and body["label"] == "cat"
    assert body["next"]["id"] == items[1].id and body["next"]["image_url"]
    assert held_by(items[1].id) == user
    assert Item.objects.get(id=items[0].id).status == Item.Status.LABELED


def test_next_honours_exclude_and_never_hands_out_anothers_lease(user):
    project = make_project(user)
    make_items(project, 5)
    bob = make_user("bob")
    membership_add(project=project, user=bob, role="annotator")
    bobs = client_for(bob).get(f"/api/projects/{project.id}/next/").json()["id"]  # bob holds items[0]
    api = client_for(user)
    held = [api.get(f"/api/projects/{project.id}/next/?exclude=").json()["id"]]
    held.append(api.get(f"/api/projects/{project.id}/next/?exclude={held[0]}").json()["id"])
    assert bobs not in held
    # The page holds held[1] prefetched and labels held[0]: the next one is neither, nor bob's
    url = f"/api/items/{held[0]}/annotations/?next=1&exclude={held[1]}"
    following = api.post(url, {"label": "dog"}, format="json").json()["next"]["id"]
    assert following not in (bobs, *held)
    assert held_by(following) == user and held_by(bobs) == bob


def test_a_retried_label_returns_the_same_annotation_and_the_same_next_item(user):
    project = make_project(user)
    items = make_items(project, 4)
    api = client_for(user)
    body = {"label": "cat", "client_token": f"t-{uuid.uuid4()}"}
    url = f"/api/items/{items[0].id}/annotations/?next=1&exclude={items[1].id}"
    first = api.post(url, body, format="json")
    again = api.post(url, body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["next"]["id"] == first.json()["next"]["id"] == items[2].id
    assert Annotation.objects.filter(item=items[0]).count() == 1


def test_the_last_label_with_next_is_stored_and_answered_204(user):
    project = make_project(user)
    (item,) = make_items(project, 1)
    response = client_for(user).post(f"/api/items/{item.id}/annotations/?next=1", {"label": "cat"}, format="json")
    assert response.status_code == 204 and not response.content
    assert Annotation.objects.get(item=item).user == user


def test_a_bad_label_with_next_leases_nothing(user):
    project = make_project(user)
    items = make_items(project, 3)
    api = client_for(user)
    response = api.post(f"/api/items/{items[0].id}/annotations/?next=1", {"label": "zebra"}, format="json")
    assert response.status_code == 400
    assert not Item.objects.filter(project=project, lease_user=user).exists()
    # A malformed exclude= is refused before the answer is stored, so a 400 never hides a saved label
    bad = api.post(f"/api/items/{items[0].id}/annotations/?next=1&exclude=x", {"label": "cat"}, format="json")
    assert bad.status_code == 400 and "exclude" in str(bad.json())
    assert not Annotation.objects.filter(item=items[0]).exists()


def test_a_skip_with_next_returns_the_next_item_then_204(user):
    project = make_project(user)
    items = make_items(project, 2)
    api = client_for(user)
    response = api.post(f"/api/items/{items[0].id}/skip/?next=1")
    assert response.status_code == 200
    assert response.json()["status"] == "skipped" and response.json()["next"]["id"] == items[1].id
    assert Item.objects.get(id=items[0].id).status == Item.Status.SKIPPED
    # The skipped item comes back last, once nothing else is left; then nothing is.
    assert api.post(f"/api/items/{items[1].id}/skip/?next=1").json()["next"]["id"] == items[0].id
    assert api.post(f"/api/items/{items[0].id}/skip/?next=1&exclude={items[1].id}").status_code == 204
