"""Reviewing likely label errors: the scan that flags them, the review API and page, and what
training and export make of the decisions."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import numpy as np
import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotator.models import Annotation, Item, LabelClass, Membership, Project
from annotator.selectors.answers import item_answers
from annotator.selectors.exports import export_rows
from annotator.selectors.training_data import training_data
from annotator.services.annotations import annotation_create, annotation_undo
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from annotator.services.review import review_flags_publish
from annotator.tasks import review_project_task
from ml.crossfit import torch_threads
from tests.factories import (
    annotation_label,
    digits_pngs,
    label_of,
    make_project,
    make_user,
    png_bytes,
    wait_for,
    zip_bytes,
)


def import_labeled(project: Project, user, labels: list[str], images: list[bytes] | None = None) -> list[Item]:
    """Import one image per label, inside a folder named after it (so it arrives labeled)."""
    images = images or [png_bytes(i) for i in range(len(labels))]
    members = {f"{label}/{i}.png": data for i, (label, data) in enumerate(zip(labels, images, strict=True))}
    items_import_uploads(project=project, files=[("set.zip", io.BytesIO(zip_bytes(members)))], user=user)
    return sorted(Item.objects.filter(project=project), key=number)


def number(item: Item) -> int:
    """The position of an imported image in its list (its file is named after it)."""
    return int(PurePosixPath(item.original_name).stem)


def flag(project: Project, items: list[Item], flagged: list[Item], *, quality: list[float] | None = None) -> int:
    """Store a scan's verdicts as the worker does: every item judged with its current label."""
    items = [Item.objects.get(id=item.id) for item in items]
    answers = item_answers(item_ids=[item.id for item in items])
    cat, dog = LabelClass.objects.filter(project=project).order_by("index").values_list("id", flat=True)[:2]
    return review_flags_publish(
        project_id=project.id,
        item_ids=[item.id for item in items],
        answers=[answers[item.id] for item in items],
        quality=quality or [0.9 - 0.1 * (item in flagged) for item in items],
        suggested=[(dog,) if answers[item.id] == (cat,) else (cat,) for item in items],
        confidence=[0.8] * len(items),
        flagged=[item.id for item in flagged],
    )


@pytest.fixture
def manager(db):
    return make_user("mia")


@pytest.fixture
def pets(manager):
    """A cat/dog project with four labeled images, the first two flagged as likely mislabeled."""
    project = make_project(manager)
    items = import_labeled(project, manager, ["cat", "cat", "dog", "dog"])
    flag(project, items, items[:2], quality=[0.2, 0.1, 0.9, 0.8])
    return project, [Item.objects.get(id=item.id) for item in items]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# The scan -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_planted_label_flips_are_flagged_by_the_scan(manager):
    # Given 120 digits in a pretrained-family project, imported labeled, 6 of them with a wrong label
    project = make_project(manager, labels=[str(d) for d in range(10)])
    Project.objects.filter(id=project.id).update(model_family="pretrained")
    images, truth = digits_pngs(120)
    flipped = {4, 31, 36, 59, 73, 97}
    given = [str((t + 3) % 10) if i in flipped else str(t) for i, t in enumerate(truth)]
    items = import_labeled(project, manager, given, images)

    # When the review scan runs (the worker's task, called in-process)
    n_flagged = review_project_task(project.id)

    # Then most flips are flagged as likely label errors, with the true class suggested, and few others
    flagged = {number(i) for i in Item.objects.filter(project=project, review_status="flagged")}
    assert n_flagged == len(flagged)
    assert len(flagged & flipped) >= 5 and len(flagged) <= 20
    for i in flagged & flipped:
        item = Item.objects.get(id=items[i].id)
        assert item.review_reason == "label_issue" and 0 <= item.review_score < 0.5
    suggested = {items[i].id: label_of(items[i], "suggested") for i in flipped}
    by_id = {item.id: str(truth[n]) for n, item in enumerate(items)}
    assert sum(name == by_id[item_id] for item_id, name in suggested.items()) >= 5
    assert Project.objects.get(id=project.id).review_scanned_at is not None


@pytest.mark.django_db
def test_a_disagreement_between_two_annotators_is_flagged(manager):
    # Given a project with two labels per item, where two annotators disagree on one item and agree on another
    project = make_project(manager, labels_per_item=2)
    first, second = import_labeled_unlabeled(project, manager, 2)
    ann, bob = make_user("ann"), make_user("bob")
    for person in (ann, bob):
        membership_add(project=project, user=person)
    annotation_create(item=second, user=ann, label="dog")
    annotation_create(item=second, user=bob, label="dog")
    annotation_create(item=first, user=ann, label="cat")
    annotation_create(item=first, user=bob, label="dog")

    # When a scan runs (too few labels for a model: disagreements only)
    assert review_project_task(project.id) == 1

    # Then the disputed item is flagged for disagreement, with the votes shown to the reviewer
    first.refresh_from_db()
    assert (first.review_status, first.review_reason, first.agreement) == ("flagged", "disagreement", 0.5)
    assert Item.objects.get(id=second.id).review_status == "none"
    shown = client_for(manager).get(f"/api/projects/{project.id}/review/next/").json()
    assert shown["id"] == first.id and shown["reason"] == "disagreement"
    assert sorted(v["label"] for v in shown["votes"]) == ["cat", "dog"]

    # And a change by the manager outvotes the annotators, also when one of them undoes a label later
    assert label_of(first) == "cat"  # the tie went to the first vote
    client_for(manager).post(f"/api/items/{first.id}/review/", {"action": "change", "label": "dog"}, format="json")
    assert annotation_undo(project=project, user=bob).id == first.id
    first.refresh_from_db()
    assert label_of(first) == "dog" and first.status == "labeled"


def import_labeled_unlabeled(project: Project, user, n: int) -> list[Item]:
    files = [(f"{i}.png", io.BytesIO(png_bytes(100 + i))) for i in range(n)]
    items_import_uploads(project=project, files=files, user=user)
    return list(Item.objects.filter(project=project).order_by("id"))


@pytest.mark.django_db
def test_reviewed_items_are_not_flagged_again_unless_their_label_changes(pets, manager):
    project, items = pets
    api = client_for(manager)
    # Given the first flagged item was kept and the second marked ambiguous
    api.post(f"/api/items/{items[0].id}/review/", {"action": "keep"}, format="json")
    api.post(f"/api/items/{items[1].id}/review/", {"action": "ambiguous"}, format="json")

    # When a later scan flags them again with the same labels
    assert flag(project, items, items[:2]) == 0

    # Then the decisions stand
    assert Item.objects.get(id=items[0].id).review_status == "reviewed"
    assert Item.objects.get(id=items[1].id).review_status == "ambiguous"

    # But once an annotator changes the kept item's label, the next scan may flag it again
    annotation_create(item=Item.objects.get(id=items[0].id), user=manager, label="dog")
    assert flag(project, items, items[:2]) == 1
    again = Item.objects.get(id=items[0].id)
    assert (again.review_status, again.review_reason, again.review_action) == ("flagged", "label_issue", "")

    # And an item no scan flags any more loses its flag
    flag(project, items, [])
    assert not Item.objects.filter(project=project, review_status="flagged").exists()


# The review API -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_review_next_serves_the_worst_flagged_item_first(pets, manager):
    project, items = pets
    api = client_for(manager)
    first = api.get(f"/api/projects/{project.id}/review/next/")
    assert first.status_code == 200
    body = first.json()
    assert (body["id"], body["label"], body["suggested"], body["reason"]) == (items[1].id, "cat", "dog", "label_issue")
    assert body["confidence"] == pytest.approx(0.8) and f"/items/{items[1].id}/image/?v=" in body["image_url"]
    assert api.get(f"/api/projects/{project.id}/review/next/?exclude={items[1].id}").json()["id"] == items[0].id
    assert api.get(f"/api/projects/{project.id}/review/next/?exclude={items[0].id},{items[1].id}").status_code == 204


@pytest.mark.django_db
def test_keep_change_and_ambiguous_through_the_api(pets, manager):
    project, items = pets
    api = client_for(manager)

    kept = api.post(f"/api/items/{items[0].id}/review/", {"action": "keep"}, format="json")
    assert kept.status_code == 200 and kept.json()["status"] == "reviewed" and kept.json()["action"] == "keep"

    changed = api.post(f"/api/items/{items[1].id}/review/", {"action": "change", "label": "dog"}, format="json")
    assert changed.status_code == 200 and changed.json()["label"] == "dog" and changed.json()["action"] == "change"
    item = Item.objects.get(id=items[1].id)
    assert label_of(item) == label_of(item, "reviewed") == "dog" and item.reviewed_by == manager
    review = Annotation.objects.get(item=item, active=True, source="review")
    assert review.user == manager and annotation_label(review) == "dog"

    ambiguous = api.post(f"/api/items/{items[2].id}/review/", {"action": "ambiguous"}, format="json")
    assert ambiguous.status_code == 200 and ambiguous.json()["status"] == "ambiguous"

    assert api.get(f"/api/projects/{project.id}/review/next/").status_code == 204
    counts = api.get(f"/api/projects/{project.id}/review/").json()
    assert {k: counts[k] for k in ("flagged", "reviewed", "kept", "changed", "ambiguous")} == {
        "flagged": 0,
        "reviewed": 3,
        "kept": 1,
        "changed": 1,
        "ambiguous": 1,
    }
    assert counts["scanned_at"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"action": "delete"}, "Unknown action"),
        ({"action": "change"}, "needs 'label'"),
        ({"action": "change", "label": "horse"}, "Unknown label 'horse'"),
        ({}, "action"),
    ],
)
def test_bad_review_input_is_a_400_with_a_reason(pets, manager, body, reason):
    _, items = pets
    response = client_for(manager).post(f"/api/items/{items[0].id}/review/", body, format="json")
    assert response.status_code == 400 and reason in str(response.json())
    assert Item.objects.get(id=items[0].id).review_status == "flagged"


@pytest.mark.django_db
def test_an_unlabeled_item_cannot_be_reviewed(manager):
    project = make_project(manager)
    (item,) = import_labeled_unlabeled(project, manager, 1)
    response = client_for(manager).post(f"/api/items/{item.id}/review/", {"action": "keep"}, format="json")
    assert response.status_code == 400 and "Only labeled items" in response.json()["detail"]


@pytest.mark.django_db
def test_annotators_may_not_review_and_outsiders_do_not_see_the_project(pets):
    project, items = pets
    annotator, outsider = make_user("ann"), make_user("olaf")
    membership_add(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    calls = [
        ("get", f"/api/projects/{project.id}/review/"),
        ("get", f"/api/projects/{project.id}/review/next/"),
        ("post", f"/api/projects/{project.id}/review/scan/"),
        ("post", f"/api/items/{items[0].id}/review/"),
    ]
    for method, path in calls:
        for person, expected in ((annotator, 403), (outsider, 404)):
            client = client_for(person)
            response = client.get(path) if method == "get" else client.post(path, {"action": "keep"}, format="json")
            assert response.status_code == expected, (person, path)
    assert Item.objects.get(id=items[0].id).review_status == "flagged"


# Training and export ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ambiguous_items_leave_training_and_export_and_changes_are_trained_on(pets, manager):
    project, items = pets
    api = client_for(manager)
    api.post(f"/api/items/{items[0].id}/review/", {"action": "ambiguous"}, format="json")
    api.post(f"/api/items/{items[1].id}/review/", {"action": "change", "label": "dog"}, format="json")

    data = training_data(project=project)
    rows = {item.cache_row: item for item in items}
    assert items[0].cache_row not in data.labeled_rows.tolist() and len(data.labels) == 3
    trained = {rows[row].id: label for row, label in zip(data.labeled_rows.tolist(), data.labels.tolist(), strict=True)}
    assert trained[items[1].id] == 1  # dog

    exported = [row["filename"] for row in export_rows(project=project)]
    assert exported == ["cat/1.png", "dog/2.png", "dog/3.png"]
    assert len(list(export_rows(project=project, include_ambiguous=True))) == 4
    csv = b"".join(api.get(f"/api/projects/{project.id}/export/?format=csv").streaming_content).decode()
    assert "0.png" not in csv and "cat/1.png,dog" in csv
    everything = api.get(f"/api/projects/{project.id}/export/?format=csv&include_ambiguous=1")
    assert "cat/0.png,cat" in b"".join(everything.streaming_content).decode()


# The page -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_review_page_for_managers_only(pets, manager):
    project, _ = pets
    annotator, outsider = make_user("ann"), make_user("olaf")
    membership_add(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    browser = Client()
    browser.force_login(manager)
    page = browser.get(f"/projects/{project.id}/review/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "js/review.js" in html and "js/keymap.js" in html and 'data-action="change"' in html
    assert 'data-hotkey="a"' in html and 'data-hotkey="Enter"' in html and '<b id="count-flagged">2</b>' in html
    detail = browser.get(f"/projects/{project.id}/").content.decode()
    assert f'href="/projects/{project.id}/review/"' in detail and '<b data-review="flagged">2</b>' in detail
    for person, expected in ((annotator, 403), (outsider, 404)):
        browser.force_login(person)
        assert browser.get(f"/projects/{project.id}/review/").status_code == expected
    browser.force_login(annotator)
    assert f'href="/projects/{project.id}/review/"' not in browser.get(f"/projects/{project.id}/").content.decode()


@pytest.mark.django_db
def test_the_ambiguous_key_moves_off_a_class_hotkey(manager):
    project = make_project(manager, labels=[str(d) for d in range(10)])  # hotkeys 1..9, then a
    browser = Client()
    browser.force_login(manager)
    html = browser.get(f"/projects/{project.id}/review/").content.decode()
    assert 'data-action="ambiguous" data-hotkey="x"' in html


# With the real broker and worker ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_scan_on_demand_runs_on_a_real_worker(celery_worker, manager):
    # Given a project with two labels per item and a disagreement
    project = make_project(manager, labels_per_item=2)
    (item,) = import_labeled_unlabeled(project, manager, 1)
    ann = make_user("ann")
    membership_add(project=project, user=ann)
    annotation_create(item=item, user=ann, label="cat")
    annotation_create(item=item, user=manager, label="dog")

    # When the manager asks for a scan
    response = client_for(manager).post(f"/api/projects/{project.id}/review/scan/")
    assert response.status_code == 202

    # Then the worker flags the disagreement
    wait_for(lambda: Item.objects.filter(id=item.id, review_status="flagged").exists(), 60, "the review scan")
    assert np.isclose(Item.objects.get(id=item.id).agreement, 0.5)


@pytest.mark.django_db(transaction=True)
def test_each_retrain_is_followed_by_a_scan_on_the_worker(celery_worker, manager):
    # Given a pretrained-family project whose import brings 12 labeled digits
    project = make_project(manager, labels=[str(d) for d in range(10)], retrain_every=10)
    Project.objects.filter(id=project.id).update(model_family="pretrained")
    images, truth = digits_pngs(12)

    # When the import's labels trigger a retrain on the worker (a thread of this process: one torch
    # thread is much faster than two on a busy 2-core machine)
    with torch_threads(1):
        import_labeled(project, manager, [str(t) for t in truth], images)
        version = wait_for(lambda: project.model_versions.filter(status="ready").first(), 180, "a ready version")

    # Then a review scan of the project follows the new version
    scanned = wait_for(
        lambda: Project.objects.filter(id=project.id, review_scanned_at__gte=version.finished).first(), 60, "a scan"
    )
    assert scanned.review_scanned_at >= version.finished
