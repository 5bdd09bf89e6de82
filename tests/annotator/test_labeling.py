"""Labeling for issue 4: per-project leases, overlap with agreement, undo, hidden pre-labels,
pre-label statistics, and the settings form."""

from __future__ import annotations

import io
import uuid

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotator import selectors, services
from annotator.models import Annotation, Item, ModelVersion, Project
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def make_items(project, n):
    services.items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(300 + i))) for i in range(n)], user=None
    )
    items = list(Item.objects.filter(project=project).order_by("id"))
    for rank, item in enumerate(items):
        Item.objects.filter(id=item.id).update(priority=-rank)  # served in id order
    return items


def label(item, user, name, **kwargs):
    item = Item.objects.select_related("project").get(id=item.id)
    return services.annotation_create(item=item, user=user, label=name, **kwargs)[0]


def test_lease_uses_the_projects_lease_seconds(user):
    project = make_project(user)
    Project.objects.filter(id=project.id).update(lease_seconds=42)
    project.refresh_from_db()
    make_items(project, 1)
    item = services.item_lease_next(project=project, user=user)
    remaining = (item.lease_until - timezone.now()).total_seconds()
    assert 40 <= remaining <= 42


def test_overlap_serves_an_item_to_k_different_people_and_stores_agreement(user):
    # Given a project where every item needs 3 labels
    project = make_project(user)
    Project.objects.filter(id=project.id).update(labels_per_item=3)
    project.refresh_from_db()
    a, b = make_items(project, 2)
    bob, carol = make_user("bob"), make_user("carol")

    # When alice labels the first item, it goes back to the queue, but never to her
    assert services.item_lease_next(project=project, user=user).id == a.id
    label(a, user, "cat")
    a.refresh_from_db()
    assert (a.status, a.n_annotations, a.lease_user_id) == ("unlabeled", 1, None)
    assert services.item_lease_next(project=project, user=user).id == b.id
    # Then bob and carol get it, one at a time
    assert services.item_lease_next(project=project, user=bob).id == a.id
    assert services.item_lease_next(project=project, user=carol) is None  # a held by bob, b by alice
    label(a, bob, "cat")
    assert services.item_lease_next(project=project, user=carol).id == a.id
    label(a, carol, "dog")
    a.refresh_from_db()
    assert (a.status, a.n_annotations, a.label.name) == ("labeled", 3, "cat")
    assert a.agreement == pytest.approx(2 / 3)
    # And a labeled item is served to nobody again
    assert services.item_lease_next(project=project, user=bob, exclude=[b.id]) is None


def test_relabel_by_the_same_person_does_not_count_twice(user):
    project = make_project(user)
    Project.objects.filter(id=project.id).update(labels_per_item=2)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    label(item, user, "dog")
    item.refresh_from_db()
    assert (item.status, item.n_annotations, item.label.name, item.agreement) == ("unlabeled", 1, "dog", 1.0)


def test_single_label_item_counts_its_annotation(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    item.refresh_from_db()
    assert (item.status, item.n_annotations) == ("labeled", 1)


def test_undo_deactivates_the_latest_label_and_returns_the_item_to_the_caller(user):
    # Given two labels by alice
    project = make_project(user)
    first, second = make_items(project, 2)
    label(first, user, "cat")
    label(second, user, "dog")

    # When she undoes
    item = services.annotation_undo(project=project, user=user)

    # Then the latest label is inactive history and its item is back in the queue, leased to her
    assert item.id == second.id
    assert list(Annotation.objects.order_by("id").values_list("item_id", "active")) == [
        (first.id, True),
        (second.id, False),
    ]
    item.refresh_from_db()
    assert (item.status, item.label, item.n_annotations, item.labeled_at) == ("unlabeled", None, 0, None)
    assert item.lease_user_id == user.id
    assert services.item_lease_next(project=project, user=user).id == second.id
    assert services.item_lease_next(project=project, user=make_user("bob")) is None
    # A second undo takes the one before; a third finds nothing
    assert services.annotation_undo(project=project, user=user).id == first.id
    assert services.annotation_undo(project=project, user=user) is None


def test_undo_touches_only_the_callers_labels(user):
    project = make_project(user)
    item = make_items(project, 1)[0]
    label(item, user, "cat")
    assert services.annotation_undo(project=project, user=make_user("bob")) is None
    item.refresh_from_db()
    assert item.status == "labeled"


def test_hidden_prelabels_are_not_served_and_count_as_none(user):
    # Given a project with a pre-label on its item, and pre-labels hidden
    project = make_project(user)
    item = make_items(project, 1)[0]
    cat = project.classes.get(name="cat")
    services.training_request(project_id=project.id)
    version = services.training_begin(project_id=project.id)
    Item.objects.filter(id=item.id).update(pred_label=cat, pred_confidence=0.9, pred_version=version)
    api = APIClient()
    api.force_authenticate(user)
    assert api.get(f"/api/projects/{project.id}/next/").json()["prelabel"]["label"] == "cat"
    Project.objects.filter(id=project.id).update(show_prelabels=False)

    # Then /next omits it, and the annotation records no pre-label
    assert api.get(f"/api/projects/{project.id}/next/").json()["prelabel"] is None
    response = api.post(f"/api/items/{item.id}/annotations/", {"label": "cat"}, format="json")
    assert response.json()["prelabel"] == "none"


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


def test_stats_split_acceptance_and_time_by_prelabel(user):
    project = make_project(user)
    items = make_items(project, 5)
    cat = project.classes.get(name="cat")
    Item.objects.filter(id__in=[i.id for i in items[:3]]).update(pred_label=cat)
    label(items[0], user, "cat", duration_ms=1000)
    label(items[1], user, "cat", duration_ms=3000)
    label(items[2], user, "dog", duration_ms=2000)
    label(items[3], user, "dog", duration_ms=4000)
    label(items[4], user, "dog", duration_ms=6000)
    stats = selectors.annotation_stats(project=project)
    assert (stats["accepted"], stats["corrected"], stats["none"]) == (2, 1, 2)
    assert stats["acceptance_rate"] == pytest.approx(2 / 3)
    assert stats["median_s_with_prelabel"] == 2.0
    assert stats["median_s_without_prelabel"] == 5.0


def test_training_request_counts_only_labels_since_the_last_version(user, django_capture_on_commit_callbacks):
    project = make_project(user, retrain_every=2)
    items = make_items(project, 5)
    with django_capture_on_commit_callbacks(execute=True):
        label(items[0], user, "cat")
        label(items[1], user, "cat")
    assert Project.objects.get(id=project.id).training_requested
    services.training_begin(project_id=project.id)  # a version begins after two labels
    with django_capture_on_commit_callbacks(execute=True):
        label(items[2], user, "cat")
    assert not Project.objects.get(id=project.id).training_requested
    with django_capture_on_commit_callbacks(execute=True):
        label(items[3], user, "cat")
    assert Project.objects.get(id=project.id).training_requested


def test_settings_form_for_managers_only(user):
    project = make_project(user)
    manager = Client()
    manager.force_login(user)
    body = {"labels_per_item": 2, "lease_seconds": 60, "retrain_every": 5, "strategy": "margin"}
    response = manager.post(f"/projects/{project.id}/settings/", body)
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.show_prelabels, project.labels_per_item, project.lease_seconds) == (False, 2, 60)
    assert (project.retrain_every, project.strategy) == (5, "margin")
    page = manager.get(f"/projects/{project.id}/").content.decode()
    assert "Median seconds per label" in page and 'id="settings-form"' in page

    bob = make_user("bob")
    services.membership_add(project=project, user=bob)
    other = Client()
    other.force_login(bob)
    other.post(f"/projects/{project.id}/settings/", {**body, "labels_per_item": 5, "show_prelabels": "on"})
    project.refresh_from_db()
    assert project.labels_per_item == 2
    assert 'id="settings-form"' not in other.get(f"/projects/{project.id}/").content.decode()


def test_label_page_has_keymap_hints_and_help(user):
    project = make_project(user)
    client = Client()
    client.force_login(user)
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    for key in ['data-hotkey="z"', 'data-hotkey="?"', 'data-hotkey="Enter"', 'data-hotkey="1"', 'id="help"']:
        assert key in page


def prelabel(item, version, name: str, confidence: float | None) -> None:
    label_class = item.project.classes.get(name=name)
    Item.objects.filter(id=item.id).update(pred_label=label_class, pred_confidence=confidence, pred_version=version)


def test_prelabels_under_the_projects_threshold_are_served_as_unsure(user):
    # Given a project whose threshold is 0.6, and pre-labels just under it, at it, and above it
    project = make_project(user, prelabel_threshold=0.6)
    under, at, above = make_items(project, 3)
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    prelabel(under, version, "dog", 0.59)
    prelabel(at, version, "cat", 0.6)
    prelabel(above, version, "cat", 0.95)
    api = APIClient()
    api.force_authenticate(user)

    # When they are served by /next (in id order) and read one by one
    served: list[dict] = []
    for _ in range(3):
        held = ",".join(str(s["id"]) for s in served)
        served.append(api.get(f"/api/projects/{project.id}/next/?exclude={held}").json())
    # Then only the one under the threshold is unsure, in /next and in the item read
    assert [(s["id"], s["prelabel"]["unsure"]) for s in served] == [(under.id, True), (at.id, False), (above.id, False)]
    assert api.get(f"/api/items/{under.id}/").json()["prelabel"]["unsure"] is True
    assert api.get(f"/api/items/{above.id}/").json()["prelabel"]["unsure"] is False
    # And an undone label brings its item back with its unsure flag
    api.post(f"/api/items/{under.id}/annotations/", {"label": "cat"}, format="json")
    undone = api.post(f"/api/projects/{project.id}/undo/")
    assert undone.status_code == 200 and undone.json()["prelabel"] == {
        "label": "dog",
        "confidence": 0.59,
        "model_version": 1,
        "probs": None,
        "unsure": True,
    }
    # And a lower threshold makes it a plain suggestion
    services.project_settings_update(project=project, prelabel_threshold=0.5)
    assert api.get(f"/api/items/{under.id}/").json()["prelabel"]["unsure"] is False


def test_retrain_status_counts_labels_since_the_latest_version(
    user, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    project = make_project(user, retrain_every=3)
    items = make_items(project, 6)

    def status():
        with django_assert_max_num_queries(2):
            return selectors.retrain_status(project=project)

    # Given no model yet: the first comes after 3 labels
    assert status() == {"labels_until_next": 3, "training": False}
    label(items[0], user, "cat")
    label(items[1], user, "dog")
    assert status() == {"labels_until_next": 1, "training": False}
    # When the third label requests a retrain, and while it runs: no count, training
    with django_capture_on_commit_callbacks(execute=True):
        label(items[2], user, "cat")
    assert Project.objects.get(id=project.id).training_requested
    assert status() == {"labels_until_next": 0, "training": True}
    version = services.training_begin(project_id=project.id)
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


def test_label_page_shows_the_accuracy_with_its_interval_and_has_the_new_lines(user):
    project = make_project(user)
    client = Client()
    client.force_login(user)
    # Given no model: no model, nothing to announce
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    assert '<div id="model-info">No model yet</div>' in page and '"model_version": null' in page
    # Given version 3 with an interval
    metrics = {"val_accuracy": 0.78, "val_accuracy_low": 0.69, "val_accuracy_high": 0.87, "val_n": 66}
    ModelVersion.objects.create(
        project=project, number=3, status="ready", strategy="entropy", n_labels=66, metrics=metrics
    )
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    # Then the page names it in one format, and has the lines the script fills
    assert '<div id="model-info">Model v3 · accuracy 0.78 ± 0.09 (66 labels)</div>' in page
    assert '"model_version": 3' in page and "js/figures.js" in page
    assert 'id="retrain-info"' in page and '<p id="under-covered" class="warn" hidden>' in page


def test_hidden_prelabels_reach_no_annotator_anywhere_but_managers_still_see_them(user):
    # Given a project with a model's guess, probabilities and score on every item, pre-labels hidden,
    # a manager (alice) and an annotator (bob)
    project = make_project(user)
    items = make_items(project, 3)
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    cat = project.classes.get(name="cat")
    Item.objects.filter(project=project).update(
        pred_label=cat, pred_confidence=0.9, pred_probs=[0.9, 0.1], pred_version=version, score=0.3
    )
    Project.objects.filter(id=project.id).update(show_prelabels=False)
    bob = make_user("bob")
    services.membership_add(project=project, user=bob)
    annotator, manager = APIClient(), APIClient()
    annotator.force_authenticate(bob)
    manager.force_authenticate(user)
    hidden = {"prelabel": None, "score": None}

    # Then the annotator's item list, item reads, /next and undo carry no prediction and no score
    listed = annotator.get(f"/api/projects/{project.id}/items/")
    assert listed.status_code == 200
    assert [{k: r[k] for k in hidden} for r in listed.json()["results"]] == [hidden] * 3
    assert {k: annotator.get(f"/api/items/{items[0].id}/").json()[k] for k in hidden} == hidden
    served = annotator.get(f"/api/projects/{project.id}/next/").json()
    assert {k: served[k] for k in hidden} == hidden
    annotator.post(f"/api/items/{served['id']}/annotations/", {"label": "dog"}, format="json")
    undone = annotator.post(f"/api/projects/{project.id}/undo/").json()
    assert undone["id"] == served["id"] and {k: undone[k] for k in hidden} == hidden
    # And no filter or order on the model's guess or score is open to them
    for query in ["predicted=cat", "predicted=dog", "min_score=0", "max_score=1", "order=-score"]:
        response = annotator.get(f"/api/projects/{project.id}/items/?{query}")
        assert response.status_code == 400, query
        assert "hides the model's pre-labels" in str(response.json()), query
    # And the review and the exports (which carry predictions) are the managers' only
    assert annotator.get(f"/api/projects/{project.id}/review/next/").status_code == 403
    assert annotator.get(f"/api/projects/{project.id}/export/?format=jsonl").status_code == 403

    # But a manager still sees and filters on them
    rows = manager.get(f"/api/projects/{project.id}/items/?predicted=cat&order=-score").json()["results"]
    assert len(rows) == 3 and rows[0]["prelabel"]["label"] == "cat" and rows[0]["score"] == 0.3
    assert manager.get(f"/api/items/{items[0].id}/").json()["prelabel"]["probs"] == [0.9, 0.1]
    assert manager.get(f"/api/projects/{project.id}/items/?predicted=dog").json()["count"] == 0
    # And with pre-labels shown, the annotator sees them too
    Project.objects.filter(id=project.id).update(show_prelabels=True)
    assert annotator.get(f"/api/items/{items[0].id}/").json()["prelabel"]["label"] == "cat"
    assert annotator.get(f"/api/projects/{project.id}/items/?predicted=cat").json()["count"] == 3


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
    services.membership_add(project=project, user=bob)
    other = APIClient()
    other.force_authenticate(bob)
    assert other.post(undo, {"client_token": token}, format="json").status_code == 204  # nothing of his
    # And an undo without a token still works as before
    api.post(f"/api/items/{second.id}/annotations/", {"label": "cat"}, format="json")
    assert api.post(undo).json()["id"] == second.id


def test_skip_and_release_sent_again_change_nothing_more(user):
    # Given alice's skip and release of items that bob leased in between (her retries arrive late)
    project = make_project(user)
    skipped, released = make_items(project, 2)
    bob = make_user("bob")
    services.membership_add(project=project, user=bob)
    api = APIClient()
    api.force_authenticate(user)
    assert services.item_lease_next(project=project, user=user).id == skipped.id
    assert api.post(f"/api/items/{skipped.id}/skip/").status_code == 200
    assert services.item_lease_next(project=project, user=user).id == released.id
    assert api.post(f"/api/items/{released.id}/release/").status_code == 200
    assert services.item_lease_next(project=project, user=bob).id == released.id

    # When both are sent again
    assert api.post(f"/api/items/{skipped.id}/skip/").status_code == 200
    assert api.post(f"/api/items/{released.id}/release/").status_code == 200

    # Then the skipped item is still skipped, and bob keeps his lease
    skipped.refresh_from_db()
    released.refresh_from_db()
    assert skipped.status == "skipped" and skipped.lease_user_id is None
    assert released.lease_user_id == bob.id and released.status == "unlabeled"
