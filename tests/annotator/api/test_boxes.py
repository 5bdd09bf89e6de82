"""Box projects through the API: boxes validated and cut to the displayed image, stored with how
each came to be, read back on items and ``/next`` with the model's pre-boxes, and several people's
boxes matched into one answer."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotator.models import AnnotationBox, BoxRole, Item, ItemBox, Project
from annotator.services.members import membership_add
from tests.annotator.helpers import upload
from tests.factories import make_user, png_bytes

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def rotated_jpeg() -> bytes:
    """A 60 x 30 JPEG whose EXIF says to show it turned a quarter: displayed 30 wide, 60 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = io.BytesIO()
    Image.new("RGB", (60, 30), "gray").save(data, format="JPEG", exif=exif)
    return data.getvalue()


@pytest.fixture
def street(api, user):
    response = api.post(
        "/api/projects/", {"name": "Street", "labels": ["car", "person"], "kind": "boxes"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "boxes"
    project = Project.objects.get(id=response.json()["id"])
    upload(
        project, [("turned.jpg", rotated_jpeg()), ("b.png", png_bytes(1, size=40)), ("c.png", png_bytes(2, size=40))]
    )
    return project, list(Item.objects.filter(project=project).order_by("id"))


def post(api, item, body):
    return api.post(f"/api/items/{item.id}/annotations/", body, format="json")


def test_boxes_are_cut_to_the_displayed_image_and_kept_with_their_outcomes(api, street):
    _, (turned, _, _) = street
    assert (turned.width, turned.height) == (30, 60)  # as displayed, after the EXIF turn
    body = {
        "boxes": [
            {"label": "car", "x": 20, "y": 50, "w": 20, "h": 20},  # sticks out: cut to 10 x 10
            {"label": "person", "x": 1, "y": 2, "w": 3, "h": 4, "outcome": "accepted", "confidence": 0.8},
            {"label": "car", "x": 5, "y": 5, "w": 5, "h": 5, "outcome": "rejected", "confidence": 0.4},
        ],
        "client_token": "t-1",
        "duration_ms": 4200,
    }
    response = post(api, turned, body)
    assert response.status_code == 201, response.json()
    saved = response.json()
    assert saved["prelabel"] == "corrected" and saved["duration_ms"] == 4200
    assert [(b["label"], b["x"], b["y"], b["w"], b["h"], b["outcome"]) for b in saved["boxes"]] == [
        ("car", 20.0, 50.0, 10.0, 10.0, "drawn"),
        ("person", 1.0, 2.0, 3.0, 4.0, "accepted"),
        ("car", 5.0, 5.0, 5.0, 5.0, "rejected"),
    ]
    # The item's boxes are the kept ones; as a set of classes, its answer is the classes present
    item = api.get(f"/api/items/{turned.id}/").json()
    assert item["status"] == "labeled" and item["labels"] == ["car", "person"]
    assert item["boxes"] == [
        {"label": "car", "x": 20.0, "y": 50.0, "w": 10.0, "h": 10.0},
        {"label": "person", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
    ]
    # A retry with the same token stores nothing more
    again = post(api, turned, body)
    assert again.status_code == 200 and again.json()["id"] == saved["id"]
    assert AnnotationBox.objects.count() == 3


def test_nothing_here_is_an_answer_and_an_indexed_query(api, street):
    project, (turned, empty, unlabeled) = street
    assert post(api, turned, {"boxes": [{"label": "car", "x": 1, "y": 1, "w": 5, "h": 5}]}).status_code == 201
    assert post(api, empty, {"boxes": []}).status_code == 201
    item = api.get(f"/api/items/{empty.id}/").json()
    assert (item["status"], item["boxes"], item["labels"]) == ("labeled", [], [])
    assert api.get(f"/api/items/{unlabeled.id}/").json()["boxes"] is None
    listed = api.get(f"/api/projects/{project.id}/items/", {"label": "car"}).json()
    assert [row["id"] for row in listed["results"]] == [turned.id]
    assert listed["results"][0]["boxes"] == [{"label": "car", "x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0}]
    nothing = api.get(f"/api/projects/{project.id}/items/", {"boxes": "none"}).json()
    assert [row["id"] for row in nothing["results"]] == [empty.id]
    some = api.get(f"/api/projects/{project.id}/items/", {"boxes": "some"}).json()
    assert [row["id"] for row in some["results"]] == [turned.id]
    ranged = api.get(f"/api/projects/{project.id}/items/", {"min_boxes": 1, "max_boxes": 1}).json()
    assert [row["id"] for row in ranged["results"]] == [turned.id]
    assert api.get(f"/api/projects/{project.id}/items/", {"max_boxes": 0}).json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"boxes": [{"label": "bus", "x": 1, "y": 1, "w": 2, "h": 2}]}, "unknown class 'bus'; classes: car, person"),
        ({"boxes": [{"label": "car", "x": 31, "y": 1, "w": 2, "h": 2}]}, "outside the 30x60 image"),
        ({"boxes": [{"label": "car", "x": 1, "y": 1, "w": -2, "h": 2}]}, "has no size"),
        ({"boxes": [{"label": "car", "x": 1, "y": 1, "w": 2}]}, "missing h"),
        ({"label": "car"}, "This project labels boxes: send 'boxes'"),
    ],
)
def test_boxes_that_cannot_be_stored_are_400s_that_say_why_and_store_nothing(api, street, body, reason):
    _, (turned, _, _) = street
    response = post(api, turned, body)
    assert response.status_code == 400 and reason in str(response.json()), response.json()
    assert not AnnotationBox.objects.exists() and Item.objects.get(id=turned.id).status == "unlabeled"


def test_a_project_of_classes_refuses_boxes(api, user):
    project = api.post("/api/projects/", {"name": "Pets", "labels": ["cat", "dog"]}, format="json").json()
    upload(Project.objects.get(id=project["id"]), [("a.png", png_bytes(3))])
    item = Item.objects.get(project_id=project["id"])
    response = post(api, item, {"boxes": []})
    assert response.status_code == 400 and "not boxes" in response.json()["detail"]


def test_next_serves_the_models_pre_boxes_above_the_threshold(api, street):
    project, (turned, _, _) = street
    car = project.classes.get(name="car")
    Item.objects.filter(project=project).exclude(id=turned.id).update(status="skipped")
    for confidence in (0.9, 0.3):
        ItemBox.objects.create(
            item=turned, role=BoxRole.PREDICTED, label_class=car, x=1, y=1, w=5, h=5, confidence=confidence
        )
    served = api.get(f"/api/projects/{project.id}/next/").json()
    assert served["id"] == turned.id and served["boxes"] is None
    assert served["preboxes"] == [{"label": "car", "x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0, "confidence": 0.9}]
    # Accepting every pre-box as it was is an accepted pre-label
    accepted = post(api, turned, {"boxes": [{**served["preboxes"][0], "outcome": "accepted"}]})
    assert accepted.json()["prelabel"] == "accepted"


def test_two_peoples_boxes_add_up_by_matching_them(user, street):
    project, (_, item, _) = street
    Project.objects.filter(id=project.id).update(labels_per_item=2)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    alice_api, bob_api = client_for(user), client_for(bob)
    car = {"label": "car", "x": 10, "y": 10, "w": 20, "h": 20}
    person = {"label": "person", "x": 1, "y": 1, "w": 5, "h": 8}
    assert post(alice_api, item, {"boxes": [car, person]}).status_code == 201
    assert Item.objects.get(id=item.id).status == "unlabeled"  # one of two people so far
    assert post(bob_api, item, {"boxes": [{**car, "x": 11}]}).status_code == 201
    stored = Item.objects.get(id=item.id)
    assert stored.status == "labeled" and stored.n_annotations == 2
    assert stored.agreement == pytest.approx(2 / 3)  # one box matched of two and one
    assert ItemBox.objects.filter(item=item, role=BoxRole.CONSENSUS).count() in (1, 2)


def test_undo_takes_the_items_boxes_away(api, street):
    project, (turned, _, _) = street
    post(api, turned, {"boxes": [{"label": "car", "x": 1, "y": 1, "w": 5, "h": 5}]})
    undone = api.post(f"/api/projects/{project.id}/undo/", {}, format="json")
    assert undone.status_code == 200  # with the boxes taken back, for the page to show them again
    assert undone.json()["boxes"] == [{"label": "car", "x": 1.0, "y": 1.0, "w": 5.0, "h": 5.0}]
    assert not ItemBox.objects.filter(item=turned).exists()
    assert api.get(f"/api/items/{turned.id}/").json()["boxes"] is None


def test_box_projects_keep_n_a_and_x_for_the_labeling_page(api):
    refused = api.post(
        "/api/projects/", {"name": "S", "labels": [{"name": "car", "hotkey": "n"}], "kind": "boxes"}, format="json"
    )
    assert refused.status_code == 400 and "other than a, n, s, x and z" in str(refused.json())
    letters = [f"c{i}" for i in range(14)]  # past the digits 1-9, into the letters
    made = api.post("/api/projects/", {"name": "S", "labels": letters, "kind": "boxes"}, format="json").json()
    keys = [c["hotkey"] for c in api.get(f"/api/projects/{made['id']}/labels/").json()]
    assert keys[9:] == ["b", "c", "d", "e", "f"] and not {"a", "n", "x"} & set(keys)


def test_a_review_shows_each_persons_boxes_and_can_set_others(user, street):
    project, (_, item, _) = street
    Project.objects.filter(id=project.id).update(labels_per_item=2)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    car = {"label": "car", "x": 10, "y": 10, "w": 20, "h": 20}
    post(client_for(user), item, {"boxes": [car]})
    post(client_for(bob), item, {"boxes": []})
    Item.objects.filter(id=item.id).update(review_status="flagged", review_reason="disagreement")
    api = client_for(user)
    shown = api.get(f"/api/projects/{project.id}/review/next/").json()
    assert shown["id"] == item.id and shown["reason"] == "disagreement"
    assert [(p["user"], len(p["boxes"])) for p in shown["annotations"]] == [("alice", 1), ("bob", 0)]
    # The manager keeps bob's answer (nothing here) by sending it as the change
    person = {"label": "person", "x": 2, "y": 3, "w": 4, "h": 5}
    decided = api.post(f"/api/items/{item.id}/review/", {"action": "change", "boxes": [person]}, format="json")
    assert decided.status_code == 200, decided.json()
    assert decided.json()["boxes"] == [{"label": "person", "x": 2.0, "y": 3.0, "w": 4.0, "h": 5.0}]
    assert api.get(f"/api/items/{item.id}/").json()["labels"] == ["person"]
    missing = api.post(f"/api/items/{item.id}/review/", {"action": "change"}, format="json")
    assert missing.status_code == 400 and "needs 'boxes'" in missing.json()["detail"]


def test_the_dashboard_counts_images_and_boxes_per_class(api, street):
    project, (turned, empty, _) = street
    car = {"label": "car", "x": 1, "y": 1, "w": 5, "h": 5}
    post(api, turned, {"boxes": [car, {**car, "x": 10}, {**car, "label": "person"}]})
    post(api, empty, {"boxes": []})
    classes = api.get(f"/api/projects/{project.id}/dashboard/").json()["classes"]
    assert classes == [{"name": "car", "n": 1, "boxes": 2}, {"name": "person", "n": 1, "boxes": 1}]
