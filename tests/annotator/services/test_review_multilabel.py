"""Reviewing multi-label projects: the scan judges each item's class set, and managers keep it,
change it to another set, or mark it ambiguous."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotator.models import Annotation, Item, LabelClass
from annotator.selectors.answers import item_answers
from annotator.selectors.review import review_counts, review_data
from annotator.selectors.training_data import training_data
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.review import item_review, review_flags_publish
from annotator.tasks import review_project_task
from ml.crossfit import torch_threads
from tests.factories import annotation_names, answer_names, digits_pngs, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

CLASSES = ["cat", "dog", "outdoor"]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def flag(project, flagged: list[Item], suggested: dict[int, list[str]]) -> int:
    """Store a scan's verdicts as the worker does: every labeled item judged with its current set."""
    labeled = list(Item.objects.filter(project=project, status="labeled").order_by("id"))
    answers = item_answers(item_ids=[item.id for item in labeled])
    ids = dict(LabelClass.objects.filter(project=project).values_list("name", "id"))
    given = [answers.get(item.id, ()) for item in labeled]
    return review_flags_publish(
        project_id=project.id,
        item_ids=[item.id for item in labeled],
        answers=given,
        quality=[0.1 if item in flagged else 0.9 for item in labeled],
        suggested=[
            tuple(ids[n] for n in suggested[item.id]) if item.id in suggested else answer
            for item, answer in zip(labeled, given, strict=True)
        ],
        confidence=[0.8] * len(labeled),
        flagged=[item.id for item in flagged],
    )


@pytest.fixture
def world():
    manager = make_user("mia")
    project = make_project(manager, labels=CLASSES, multi_label=True)
    files = [(f"{i}.png", io.BytesIO(png_bytes(700 + i))) for i in range(4)]
    items_import_uploads(project=project, files=files, user=manager)
    items = list(Item.objects.filter(project=project).order_by("id"))
    for item, labels in zip(items, [["cat"], ["cat", "outdoor"], ["dog"], []], strict=True):
        annotation_create(item=item, user=manager, labels=labels)
    items = list(Item.objects.filter(project=project).order_by("id"))
    assert flag(project, items[:2], {items[0].id: ["dog"], items[1].id: ["cat"]}) == 2
    return project, manager, items


def test_the_review_queue_shows_the_given_and_the_suggested_sets(world):
    project, manager, items = world
    body = client_for(manager).get(f"/api/projects/{project.id}/review/next/").json()
    assert body["id"] in {items[0].id, items[1].id}
    shown = Item.objects.get(id=body["id"])
    assert body["labels"] == answer_names(shown) and body["suggested_labels"] == answer_names(shown, "suggested")
    assert body["suggested_labels"] == {items[0].id: ["dog"], items[1].id: ["cat"]}[shown.id]
    assert body["label"] is None and body["reason"] == "label_issue"
    assert {v["label"] for v in body["votes"]} == set(answer_names(shown))


def test_a_manager_changes_the_set_and_it_is_trained_on_and_not_flagged_again(world):
    project, manager, items = world
    api = client_for(manager)
    # When the manager changes item 1's set from {cat, outdoor} to {cat}
    response = api.post(f"/api/items/{items[1].id}/review/", {"action": "change", "labels": ["cat"]}, format="json")
    # Then the item has the new set, stored as a review annotation, and counts as changed
    assert response.status_code == 200, response.content
    assert response.json()["labels"] == ["cat"] and response.json()["action"] == "change"
    item = Item.objects.get(id=items[1].id)
    assert (answer_names(item), item.review_status, answer_names(item, "reviewed")) == (["cat"], "reviewed", ["cat"])
    assert annotation_names(Annotation.objects.get(item=item, active=True, source="review")) == ["cat"]
    assert review_counts(project=project)["changed"] == 1
    # And training uses the reviewed set
    data = training_data(project=project)
    row = list(Item.objects.filter(project=project, status="labeled").order_by("id")).index(item)
    assert data.labels[row].tolist() == [1.0, 0.0, 0.0]
    # And a later scan that flags it again with the same set leaves it reviewed
    flag(project, [item], {})
    assert Item.objects.get(id=item.id).review_status == "reviewed"
    # And a second change replaces the reviewer's first one, which stays as history
    item_review(item=item, user=manager, action="change", labels=["cat", "dog"])
    assert answer_names(item) == ["cat", "dog"]
    reviews = Annotation.objects.filter(item=item, source="review").order_by("id")
    assert [(annotation_names(a), a.active) for a in reviews] == [(["cat"], False), (["cat", "dog"], True)]


def test_keep_and_ambiguous_on_multi_label_items(world):
    project, manager, items = world
    api = client_for(manager)
    kept = api.post(f"/api/items/{items[0].id}/review/", {"action": "keep"}, format="json")
    same = api.post(f"/api/items/{items[2].id}/review/", {"action": "change", "labels": ["dog"]}, format="json")
    odd = api.post(f"/api/items/{items[1].id}/review/", {"action": "ambiguous"}, format="json")
    assert kept.json()["action"] == "keep" and same.json()["action"] == "keep"  # "changed" to its own set
    assert odd.json()["status"] == "ambiguous"
    assert answer_names(items[0], "reviewed") == ["cat"]
    # The ambiguous item leaves training (3 labeled items left) and the scan's data
    assert len(training_data(project=project).labels) == 3
    assert items[1].id not in review_data(project=project).item_ids.tolist()
    assert review_counts(project=project)["flagged"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"action": "change"}, "'labels'"),
        ({"action": "change", "labels": ["cat", "bird"]}, "Unknown labels"),
    ],
)
def test_bad_multi_label_review_input_is_a_400(world, body, reason):
    _, manager, items = world
    response = client_for(manager).post(f"/api/items/{items[0].id}/review/", body, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert answer_names(items[0]) == ["cat"]


def test_the_worker_scan_judges_class_sets_with_out_of_fold_sigmoid_models():
    # Given 60 digits labeled with the classes "even" and "big" (5 or more), three of them wrongly
    manager = make_user("mia")
    project = make_project(manager, labels=["even", "big"], multi_label=True)
    images, truth = digits_pngs(60)
    files = [(f"{i}.png", io.BytesIO(data)) for i, data in enumerate(images)]
    items_import_uploads(project=project, files=files, user=manager)
    wrong = {3, 17, 41}
    for item in Item.objects.filter(project=project):
        digit = truth[int(item.original_name[:-4])]
        labels = [name for name, yes in [("even", digit % 2 == 0), ("big", digit >= 5)] if yes]
        if int(item.original_name[:-4]) in wrong:
            labels = [] if labels else ["even", "big"]
        annotation_create(item=item, user=manager, labels=labels)
    # When the worker's scan task runs (here, in this process)
    with torch_threads(1):
        n_flagged = review_project_task(project.id)
    # Then every item was judged: a label quality and the model's set on each, and a few flagged
    items = list(Item.objects.filter(project=project))
    assert all(item.review_score is not None and item.review_confidence is not None for item in items)
    suggested = [set(answer_names(item, "suggested")) for item in items]
    assert all(names <= {"even", "big"} for names in suggested) and any(suggested)
    assert 0 < n_flagged <= 20
    quality = np.array([item.review_score for item in items])
    planted = np.array([int(item.original_name[:-4]) in wrong for item in items])
    assert quality[planted].mean() < quality[~planted].mean()
