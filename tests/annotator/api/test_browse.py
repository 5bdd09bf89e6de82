"""The data browser's API: the items list's filters, orders and pages (``GET /api/projects/{id}/items/``),
an item's history with each version's guess, thumbnails, and the managers' actions on several items at once."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotator.models import Item, Project, ReviewReason, ReviewStatus
from annotator.selectors.review import review_next
from annotator.services.members import membership_add
from annotator.services.review import review_flags_publish
from annotator.services.training import model_version_publish, training_begin, training_request
from tests.annotator.helpers import label, upload
from tests.factories import answer_names, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def publish(project, items, probs, scores, number_weights: str) -> None:
    """A ready version whose (N, C) ``probs`` and (N,) ``scores`` are the items' predictions."""
    training_request(project_id=project.id)
    version = training_begin(project_id=project.id)
    model_version_publish(
        version=version,
        item_ids=[i.id for i in items],
        probs=np.array(probs),
        scores=np.array(scores),
        priorities=np.array(scores),
        metrics={"val_accuracy": 0.5},
        weights=number_weights,
    )
    Project.objects.filter(id=project.id).update(training_lock_until=None)


@pytest.fixture
def pets(user):
    """Six items in two imports: 0-3 (first), 4-5 (second); 0 and 1 labeled cat by alice, 2 dog by
    bob; version 1 predicts cat, dog, dog, cat, dog, cat with rising confidence and scores."""
    project = make_project(user)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    first = upload(project, [(f"{i}.png", png_bytes(500 + i)) for i in range(4)])
    second = upload(project, [(f"{i}.png", png_bytes(500 + i)) for i in range(4, 6)])
    assert (first.batch, second.batch) == (1, 2)
    items = list(Item.objects.filter(project=project).order_by("id"))
    label(items[0], user, "cat")
    label(items[1], user, "cat")
    label(items[2], bob, "dog")
    probs = [[0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1], [0.05, 0.95], [0.55, 0.45]]
    publish(project, items, probs, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "models/pets/v1.pt")
    return project, items, bob


def ids(body) -> list[int]:
    return [row["id"] for row in body["results"]]


def test_filters_pick_the_items_they_name(api, pets):
    project, items, bob = pets
    url = f"/api/projects/{project.id}/items/"
    i = [item.id for item in items]

    def get(**params):
        response = api.get(url, params)
        assert response.status_code == 200, response.json()
        return response.json()

    assert ids(get()) == i and get()["count"] == 6
    assert ids(get(status="labeled")) == i[:3]
    assert ids(get(label="cat")) == i[:2]
    assert ids(get(predicted="dog")) == [i[1], i[2], i[4]]
    # given cat, predicted dog: the confusion matrix's cell (cat, dog)
    assert ids(get(label="cat", predicted="dog")) == [i[1]]
    assert ids(get(conf_min=0.6, conf_max=0.8)) == [i[0], i[1], i[2]]
    assert ids(get(order="-score", min_score=0.35)) == [i[5], i[4], i[3]]
    assert ids(get(order="confidence", status="unlabeled")) == [i[5], i[3], i[4]]
    assert ids(get(annotator=bob.id)) == [i[2]]
    assert ids(get(batch=2)) == i[4:]
    assert ids(get(order="-id")) == i[::-1]
    # And pages carry the count of every page and the next page's number
    first, last = get(page_size=4), get(page_size=4, page=2)
    assert (ids(first), ids(last), last["next"]) == (i[:4], i[4:], None) and "page=2" in first["next"]
    assert first["count"] == last["count"] == 6
    # And each tile carries what the grid shows
    row = get()["results"][1]
    assert row["label"] == "cat" and row["prelabel"]["label"] == "dog" and row["batch"] == 1
    assert row["thumbnail_url"].startswith(f"/api/items/{i[1]}/thumbnail/?v=") and row["score"] == 0.2


def test_disagreement_and_flagged_filters(user):
    project = make_project(user, labels_per_item=2)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    upload(project, [(f"{i}.png", png_bytes(600 + i)) for i in range(3)])
    a, b, c = Item.objects.filter(project=project).order_by("id")
    label(a, user, "cat")
    label(a, bob, "dog")
    label(b, user, "cat")
    label(b, bob, "cat")
    Item.objects.filter(id=c.id).update(review_status=ReviewStatus.FLAGGED)
    api = client_for(user)
    url = f"/api/projects/{project.id}/items/"
    assert ids(api.get(url, {"disagreement": "true"}).json()) == [a.id]
    assert ids(api.get(url, {"flagged": "true"}).json()) == [c.id]


def test_bad_filters_are_400s_that_say_why(api, pets):
    project, _, _ = pets
    url = f"/api/projects/{project.id}/items/"
    body = api.get(url, {"label": "horse"}).json()
    assert "No class 'horse'" in body["label"][0] and "cat, dog" in body["label"][0]
    assert "above conf_max" in api.get(url, {"conf_min": 0.9, "conf_max": 0.1}).json()["conf_min"][0]
    assert "above max_score" in api.get(url, {"min_score": 2, "max_score": 1}).json()["min_score"][0]
    assert api.get(url, {"order": "random"}).status_code == 400
    assert api.get(url, {"batch": "first"}).status_code == 400
    assert api.get(url, {"status": "gone"}).status_code == 400


def test_annotators_of_a_project_that_hides_predictions_see_none(pets):
    project, items, bob = pets
    Project.objects.filter(id=project.id).update(show_prelabels=False)
    api = client_for(bob)
    url = f"/api/projects/{project.id}/items/"
    body = api.get(url).json()
    assert body["count"] == 6 and all(r["prelabel"] is None and r["score"] is None for r in body["results"])
    refused = api.get(url, {"predicted": "cat", "conf_min": 0.5, "order": "-confidence"})
    assert refused.status_code == 400 and set(refused.json()) == {"predicted", "conf_min", "order"}
    history = api.get(f"/api/items/{items[1].id}/history/").json()
    assert history["predictions"] == [] and history["item"]["prelabel"] is None
    # And the page offers no prediction filter or sort to them
    client = APIClient()
    client.force_login(bob)
    html = client.get(f"/projects/{project.id}/items/").content.decode()
    assert 'name="predicted"' not in html and "-confidence" not in html and 'name="batch"' in html


def test_history_lists_every_annotation_and_each_versions_guess(api, user, pets):
    project, items, bob = pets
    label(items[1], user, "dog")  # alice changes her mind: the cat label becomes history
    publish(project, items, [[0.2, 0.8]] * 6, [0.5] * 6, "models/pets/v2.pt")
    body = api.get(f"/api/items/{items[1].id}/history/").json()
    assert [(a["user"], a["labels"], a["active"]) for a in body["annotations"]] == [
        ("alice", ["cat"], False),
        ("alice", ["dog"], True),
    ]
    assert body["predictions"] == [
        {"version": 1, "label": "dog", "confidence": 0.7},
        {"version": 2, "label": "dog", "confidence": 0.8},
    ]
    assert body["item"]["label"] == "dog" and body["item"]["prelabel"]["model_version"] == 2
    other = make_project(user, name="Other")
    upload(other, [("x.png", png_bytes(900))])
    stranger = Item.objects.get(project=other)
    assert client_for(bob).get(f"/api/items/{stranger.id}/history/").status_code == 404


def test_a_bulk_relabel_is_each_items_new_label(api, pets):
    project, items, _ = pets
    url = f"/api/projects/{project.id}/items/bulk/"
    response = api.post(url, {"items": [items[0].id, items[3].id], "action": "relabel", "label": "dog"}, format="json")
    assert response.status_code == 200 and response.json() == {"action": "relabel", "changed": 2}
    assert answer_names(items[0]) == ["dog"] and answer_names(items[3]) == ["dog"]
    assert Item.objects.get(id=items[3].id).status == "labeled"
    export = api.get(f"/api/projects/{project.id}/export/?format=csv")
    text = b"".join(export.streaming_content).decode()
    assert "0.png,dog" in text and "3.png,dog" in text


def test_items_sent_to_review_come_first_and_survive_a_scan(api, user, pets):
    project, items, _ = pets
    url = f"/api/projects/{project.id}/items/bulk/"
    assert api.post(url, {"items": [items[1].id], "action": "review"}, format="json").status_code == 200
    item = Item.objects.get(id=items[1].id)
    assert (item.review_status, item.review_reason) == (ReviewStatus.FLAGGED, ReviewReason.MANUAL)
    assert review_next(project=project).id == items[1].id
    # A scan that judges the label fine keeps the manager's flag
    n = review_flags_publish(
        project_id=project.id,
        item_ids=[items[1].id],
        answers=[(items[1].project.classes.get(name="cat").id,)],
        quality=[0.99],
        suggested=[(items[1].project.classes.get(name="cat").id,)],
        confidence=[0.99],
    )
    assert n == 1 and Item.objects.get(id=items[1].id).review_reason == ReviewReason.MANUAL
    assert api.get(f"/api/projects/{project.id}/review/").json()["manual"] == 1


def test_a_bulk_action_is_all_or_nothing(api, user, pets):
    project, items, _ = pets
    url = f"/api/projects/{project.id}/items/bulk/"
    # An unlabeled item among them: neither is marked ambiguous
    body = api.post(url, {"items": [items[0].id, items[4].id], "action": "ambiguous"}, format="json")
    assert body.status_code == 400
    assert Item.objects.get(id=items[0].id).review_status == ReviewStatus.NONE
    refused = api.post(url, {"items": [items[0].id, items[5].id], "action": "review"}, format="json")
    assert refused.status_code == 400 and str(items[5].id) in refused.json()["items"][0]
    assert not Item.objects.filter(project=project, review_status=ReviewStatus.FLAGGED).exists()
    # An unknown class: nothing relabeled
    bad = api.post(url, {"items": [items[0].id, items[3].id], "action": "relabel", "label": "cow"}, format="json")
    assert bad.status_code == 400 and answer_names(items[0]) == ["cat"] and answer_names(items[3]) == []
    missing = api.post(url, {"items": [items[0].id], "action": "relabel"}, format="json")
    assert missing.status_code == 400 and "label" in missing.json()
    other = make_project(user, name="Other")
    upload(other, [("x.png", png_bytes(901))])
    theirs = Item.objects.get(project=other).id
    foreign = api.post(url, {"items": [items[0].id, theirs], "action": "ambiguous"}, format="json")
    assert foreign.status_code == 400 and str(theirs) in foreign.json()["items"][0]
    marked = api.post(url, {"items": [items[0].id, items[2].id], "action": "ambiguous"}, format="json")
    assert marked.json()["changed"] == 2
    assert set(Item.objects.filter(review_status=ReviewStatus.AMBIGUOUS).values_list("id", flat=True)) == {
        items[0].id,
        items[2].id,
    }


def test_a_page_of_items_costs_a_bounded_number_of_queries(api, user, django_assert_max_num_queries):
    project = make_project(user)
    upload(project, [(f"{i}.png", png_bytes(700 + i)) for i in range(40)])
    for item in Item.objects.filter(project=project)[:20]:
        label(item, user, "cat")
    with django_assert_max_num_queries(12):
        body = api.get(f"/api/projects/{project.id}/items/", {"page_size": 40, "status": "labeled"}).json()
    assert body["count"] == 20 and all(row["label"] == "cat" for row in body["results"])


def test_thumbnails_are_made_once_small_and_upright(api, user, settings):
    project = make_project(user)
    photo = Image.new("RGB", (600, 300), "red")
    photo.paste(Image.new("RGB", (300, 300), "blue"), (300, 0))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown rotated 90 degrees clockwise
    data = io.BytesIO()
    photo.save(data, format="JPEG", exif=exif)
    upload(project, [("photo.jpg", data.getvalue())])
    item = Item.objects.get(project=project)
    response = api.get(f"/api/items/{item.id}/thumbnail/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert thumb.size == (128, 256)  # upright: 300 x 600 as displayed, shrunk to 256 on its long side
    top, bottom = thumb.getpixel((64, 20)), thumb.getpixel((64, 236))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # red above, blue below
    storage = item.file.storage
    made = storage.path(item.file.name.rsplit(".", 1)[0] + ".thumb.jpg")
    stamp = os.stat(made).st_mtime_ns
    assert api.get(f"/api/items/{item.id}/thumbnail/").status_code == 200
    assert os.stat(made).st_mtime_ns == stamp  # not made again
