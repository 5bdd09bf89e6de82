"""Managing a project from the API and the page: settings, classes appended later, members."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotator.models import LabelClass, Membership, Project
from annotator.selectors.classes import project_classes
from annotator.selectors.training_data import training_data
from annotator.services.annotations import annotation_create
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from annotator.services.projects import project_create, project_settings_update
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def label_items(project, user, labels: list[str]) -> None:
    """Import one more image than ``labels`` and label the first ones with them."""
    files = [(f"{i}.png", io.BytesIO(png_bytes(500 + i))) for i in range(len(labels) + 1)]
    items_import_uploads(project=project, files=files, user=user)
    for item, label in zip(project.items.order_by("id"), labels, strict=False):
        annotation_create(item=item, user=user, label=label)


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def team():
    manager = make_user("manager", can_create_projects=True)
    annotator = make_user("annotator")
    project = make_project(manager)
    membership_add(project=project, user=annotator)
    return {"manager": manager, "annotator": annotator, "project": project}


def test_managers_change_settings_with_patch_and_the_rest_stays(team):
    project = team["project"]
    before = Project.objects.get(id=project.id)
    # When a manager changes two settings
    response = api_for(team["manager"]).patch(
        f"/api/projects/{project.id}/", {"name": "Renamed", "retrain_every": 25}, format="json"
    )
    # Then those two change and the others stay
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed" and response.json()["retrain_every"] == 25
    after = Project.objects.get(id=project.id)
    assert (after.name, after.retrain_every) == ("Renamed", 25)
    assert (after.strategy, after.lease_seconds, after.labels_per_item) == (
        before.strategy,
        before.lease_seconds,
        before.labels_per_item,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"retrain_every": 0}, "retrain_every"),
        ({"strategy": "coin"}, "strategy"),
        ({"lease_seconds": 5}, "lease_seconds"),
        ({"input_size": 64}, "input_size"),
        ({"name": "  "}, "name"),
        ({"prelabel_threshold": 1.5}, "prelabel_threshold"),
        ({"prelabel_threshold": -0.1}, "prelabel_threshold"),
        ({"prelabel_threshold": "sure"}, "prelabel_threshold"),
        ({"prelabel_threshold": None}, "prelabel_threshold"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field_and_change_nothing(team, body, field):
    project = team["project"]
    response = api_for(team["manager"]).patch(f"/api/projects/{project.id}/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    after = Project.objects.get(id=project.id)
    assert (after.name, after.retrain_every, after.input_size) == (project.name, project.retrain_every, 32)
    assert after.prelabel_threshold == 0.5


def test_the_prelabel_threshold_is_set_on_create_changed_with_patch_and_returned(team):
    api = api_for(team["manager"])
    # When a project is created with a threshold, and one without
    made = api.post(
        "/api/projects/", {"name": "Strict", "labels": ["a", "b"], "prelabel_threshold": 0.8}, format="json"
    )
    plain = api.post("/api/projects/", {"name": "Plain", "labels": ["a", "b"]}, format="json")
    # Then the first has it and the second the default, stored and returned
    assert (made.status_code, made.json()["prelabel_threshold"]) == (201, 0.8), made.content
    assert (plain.status_code, plain.json()["prelabel_threshold"]) == (201, 0.5)
    assert Project.objects.get(id=made.json()["id"]).prelabel_threshold == 0.8
    # When a manager changes it with PATCH, the project says so and keeps its other settings
    project = team["project"]
    response = api.patch(f"/api/projects/{project.id}/", {"prelabel_threshold": 0.25}, format="json")
    assert response.status_code == 200 and response.json()["prelabel_threshold"] == 0.25
    after = Project.objects.get(id=project.id)
    assert (after.prelabel_threshold, after.name, after.retrain_every) == (0.25, project.name, project.retrain_every)
    assert api.get(f"/api/projects/{project.id}/").json()["prelabel_threshold"] == 0.25


@pytest.mark.parametrize("threshold", [-0.01, 1.01, float("nan"), float("inf")])
def test_bad_thresholds_are_refused_by_the_services_and_the_api(team, threshold):
    project = team["project"]
    with pytest.raises(ServiceError, match="prelabel_threshold must be between 0 and 1"):
        project_settings_update(project=project, prelabel_threshold=threshold)
    with pytest.raises(ServiceError, match="prelabel_threshold must be between 0 and 1"):
        project_create(name="X", labels=["a"], user=team["manager"], prelabel_threshold=threshold)
    assert Project.objects.get(id=project.id).prelabel_threshold == 0.5 and not Project.objects.filter(name="X")
    # A form post (the JSON parser refuses NaN and infinity outright)
    response = api_for(team["manager"]).post(
        "/api/projects/", {"name": "X", "labels": "a", "prelabel_threshold": str(threshold)}, format="multipart"
    )
    assert response.status_code == 400 and "prelabel_threshold" in response.json()
    assert not Project.objects.filter(name="X").exists()


def test_the_settings_form_shows_and_changes_the_threshold(team):
    project = team["project"]
    page = page_for(team["manager"])
    settings = {
        "show_prelabels": "on",
        "labels_per_item": 1,
        "lease_seconds": 300,
        "retrain_every": 10,
        "strategy": "entropy",
    }
    # Given the settings form, with the threshold's current value
    body = page.get(f"/projects/{project.id}/").content.decode()
    assert 'name="prelabel_threshold" value="0.5"' in body and "as unsure below 50% confidence" in body
    # When the manager sets 0.35, it is saved, and the page says so
    response = page.post(f"/projects/{project.id}/settings/", {**settings, "prelabel_threshold": "0.35"}, follow=True)
    assert "Settings saved." in response.content.decode()
    assert Project.objects.get(id=project.id).prelabel_threshold == 0.35
    assert "as unsure below 35% confidence" in response.content.decode()
    # When it is out of range, the page names the field and nothing changes
    response = page.post(f"/projects/{project.id}/settings/", {**settings, "prelabel_threshold": "2"}, follow=True)
    assert "prelabel_threshold: Ensure this value is less than or equal to 1.0." in response.content.decode()
    # And a post without it (an older form) leaves it as it is
    page.post(f"/projects/{project.id}/settings/", {**settings, "retrain_every": 12})
    assert Project.objects.get(id=project.id).prelabel_threshold == 0.35
    assert Project.objects.get(id=project.id).retrain_every == 12


def test_annotators_may_not_change_settings(team):
    response = api_for(team["annotator"]).patch(f"/api/projects/{team['project'].id}/", {"name": "X"}, format="json")
    assert response.status_code == 403
    assert Project.objects.get(id=team["project"].id).name == team["project"].name
    threshold = {"prelabel_threshold": 0.9}
    response = api_for(team["annotator"]).patch(f"/api/projects/{team['project'].id}/", threshold, format="json")
    assert response.status_code == 403
    assert Project.objects.get(id=team["project"].id).prelabel_threshold == 0.5


def test_classes_list_with_counts_and_a_class_is_appended(team):
    project = team["project"]
    label_items(project, team["annotator"], ["cat", "cat", "dog"])
    api = api_for(team["manager"])
    # When a manager adds a class without a key, then one with a key
    added = api.post(f"/api/projects/{project.id}/labels/", {"name": "bird"}, format="json")
    keyed = api.post(f"/api/projects/{project.id}/labels/", {"name": "fish", "hotkey": "F"}, format="json")
    # Then they come after the existing classes, with the next free key and the asked one
    assert added.status_code == 201 and keyed.status_code == 201, (added.content, keyed.content)
    rows = api.get(f"/api/projects/{project.id}/labels/").json()
    assert [(r["name"], r["index"], r["n_labeled"]) for r in rows] == [
        ("cat", 0, 2),
        ("dog", 1, 1),
        ("bird", 2, 0),
        ("fish", 3, 0),
    ]
    keys = [r["hotkey"] for r in rows]
    assert keys[3] == "f" and keys[2] not in {"", keys[0], keys[1], "f"}
    # And training sees one more class, and annotators may label with it
    assert training_data(project=project).n_classes == 4
    item = project.items.filter(status="unlabeled").first()
    response = api_for(team["annotator"]).post(f"/api/items/{item.id}/annotations/", {"label": "bird"}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "cat"}, "already has a class"),
        ({"name": "owl", "hotkey": "1"}, "already used"),
        ({"name": "a/b"}, "slashes"),
        ({"name": "owl", "hotkey": "s"}, "other than s and z"),
    ],
)
def test_a_bad_class_is_a_400_with_the_reason(team, body, reason):
    project = team["project"]
    response = api_for(team["manager"]).post(f"/api/projects/{project.id}/labels/", body, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert LabelClass.objects.filter(project=project).count() == 2


def test_annotators_read_classes_but_may_not_add_them(team):
    api = api_for(team["annotator"])
    assert api.get(f"/api/projects/{team['project'].id}/labels/").status_code == 200
    response = api.post(f"/api/projects/{team['project'].id}/labels/", {"name": "owl"}, format="json")
    assert response.status_code == 403
    assert LabelClass.objects.filter(project=team["project"]).count() == 2


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_manages_members(team):
    project = team["project"]
    newcomer = make_user("newcomer")
    page = page_for(team["manager"])
    url = f"/projects/{project.id}/members/"
    # Given the members card on the project page
    body = page.get(f"/projects/{project.id}/").content.decode()
    assert 'id="members"' in body and 'data-member="annotator"' in body
    # When the manager adds a user, makes them a manager, then removes the annotator
    page.post(url, {"username": "newcomer", "role": "annotator"})
    page.post(url, {"username": "newcomer", "role": "manager"})
    response = page.post(url, {"remove": str(team["annotator"].id)}, follow=True)
    # Then the memberships are so, and the page says what happened
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"manager": "manager", "newcomer": "manager"}
    assert "removed from the project" in response.content.decode()
    assert newcomer.is_active


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "nobody", "role": "annotator"}, "No user named"),
        ({"username": "manager", "role": "annotator"}, "at least one manager"),
        ({"username": "annotator", "role": "boss"}, "role:"),
        ({"remove": "999999"}, "not a member"),
    ],
)
def test_bad_member_changes_say_why_and_change_nothing(team, data, message):
    project = team["project"]
    before = sorted(Membership.objects.filter(project=project).values_list("user_id", "role"))
    response = page_for(team["manager"]).post(f"/projects/{project.id}/members/", data, follow=True)
    assert message in response.content.decode()
    assert sorted(Membership.objects.filter(project=project).values_list("user_id", "role")) == before


def test_annotators_get_no_members_card_and_may_not_post_to_it(team):
    project = team["project"]
    page = page_for(team["annotator"])
    assert 'id="members"' not in page.get(f"/projects/{project.id}/").content.decode()
    response = page.post(f"/projects/{project.id}/members/", {"username": "annotator", "role": "manager"})
    assert response.status_code == 403
    assert Membership.objects.get(project=project, user=team["annotator"]).role == "annotator"


def test_the_page_adds_a_class_and_renames_the_project(team):
    project = team["project"]
    page = page_for(team["manager"])
    response = page.post(f"/projects/{project.id}/classes/", {"name": "bird", "hotkey": ""}, follow=True)
    assert "Class “bird”" in response.content.decode()
    assert [c.name for c in project_classes(project=project)] == ["cat", "dog", "bird"]
    page.post(
        f"/projects/{project.id}/settings/",
        {
            "name": "Birds too",
            "labels_per_item": 1,
            "lease_seconds": 60,
            "retrain_every": 5,
            "strategy": "margin",
        },
    )
    assert Project.objects.get(id=project.id).name == "Birds too"
    duplicate = page.post(f"/projects/{project.id}/classes/", {"name": "bird"}, follow=True)
    assert "already has a class" in duplicate.content.decode()


def test_instructions_and_flips_are_set_at_creation_and_changed_with_patch(team):
    manager = team["manager"]
    api = api_for(manager)
    # When a project is created with instructions (surrounding space trimmed)
    created = api.post("/api/projects/", {"name": "Cats", "labels": ["cat", "dog"], "instructions": " # Rules \n"})
    assert created.status_code == 201, created.content
    project_id = created.json()["id"]
    assert created.json()["instructions"] == "# Rules"
    # When a manager changes them and allows flips
    response = api.patch(f"/api/projects/{project_id}/", {"instructions": "Only **cats**.", "allow_flips": True})
    assert response.status_code == 200, response.content
    project = Project.objects.get(id=project_id)
    assert (project.instructions, project.allow_flips) == ("Only **cats**.", True)
    # And too long instructions are a 400 naming the field, changing nothing
    too_long = api.patch(f"/api/projects/{project_id}/", {"instructions": "x" * 20_001})
    assert too_long.status_code == 400 and "instructions" in too_long.json()
    assert Project.objects.get(id=project_id).instructions == "Only **cats**."
    # And an annotator may not change them
    membership_add(project=project, user=team["annotator"])
    refused = api_for(team["annotator"]).patch(f"/api/projects/{project_id}/", {"instructions": ""})
    assert refused.status_code == 403
    assert Project.objects.get(id=project_id).instructions == "Only **cats**."
