"""Bad requests (issue 13): each gets a 4xx that says why, and nothing already saved is lost or changed.

Deeply nested JSON, ids past what the database holds, a client token reused for another item, class
names that could never be labeled, skipping someone else's item, and settings outside their range.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotator import models
from annotator.models import Annotation, Item, LabelClass, Project
from annotator.services.annotations import annotation_create
from annotator.services.classes import label_class_add
from annotator.services.errors import ConflictError, ServiceError
from annotator.services.imports import items_import_uploads
from annotator.services.leasing import item_lease_next, item_skip
from annotator.services.members import membership_add
from annotator.services.projects import project_create, project_settings_update
from ml.models.cnn import build_model
from tests.factories import annotation_label, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

TOO_BIG = str(2**63)


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_items(project, user, n: int = 2) -> list[Item]:
    files = [(f"{i}.png", io.BytesIO(png_bytes(700 + i))) for i in range(n)]
    items_import_uploads(project=project, files=files, user=user)
    return list(Item.objects.select_related("project").filter(project=project).order_by("id"))


@pytest.fixture
def team():
    manager = make_user("manager", can_create_projects=True)
    annotator = make_user("annotator")
    project = make_project(manager)
    membership_add(project=project, user=annotator)
    items = with_items(project, manager)
    return {"manager": manager, "annotator": annotator, "project": project, "items": items}


# 8. JSON nested too deeply -------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [40, 1_000, 100_000])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/projects/", '{{"name": "Deep", "labels": {deep}}}'),
        ("/api/projects/{p}/labels/", '{{"name": {deep}}}'),
        ("/api/items/{i}/annotations/", '{{"labels": {deep}}}'),
        ("/api/projects/{p}/", "{deep}"),
    ],
)
def test_deeply_nested_json_is_a_400_and_changes_nothing(team, depth, path, body):
    project, item = team["project"], team["items"][0]
    url = path.format(p=project.id, i=item.id)
    response = api_for(team["manager"]).generic(
        "PATCH" if path == "/api/projects/{p}/" else "POST",
        url,
        body.format(deep=nested(depth)),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["detail"]
    assert Project.objects.count() == 1 and LabelClass.objects.count() == 2 and not Annotation.objects.exists()


def test_json_nested_as_deep_as_a_real_request_still_parses(team):
    body = {"name": "Fine", "labels": [{"name": "a", "hotkey": "a"}, "b"]}
    assert api_for(team["manager"]).post("/api/projects/", body, format="json").status_code == 201


# 9. Ids beyond a 64-bit integer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/projects/{p}/next/?exclude=" + TOO_BIG, "exclude"),
        ("/api/projects/{p}/next/?exclude=1," + TOO_BIG, "exclude"),
        ("/api/projects/{p}/next/?exclude=-" + TOO_BIG + "0", "exclude"),
        ("/api/projects/{p}/next/?exclude=abc", "exclude"),
        ("/api/projects/{p}/review/next/?exclude=" + TOO_BIG, "exclude"),
        ("/api/projects/{p}/annotations/?user=" + TOO_BIG, "user"),
        ("/api/projects/{p}/annotations/?user=1,2", "user"),
    ],
)
def test_ids_a_database_cannot_hold_are_a_400_naming_the_parameter(team, path, parameter):
    project = team["project"]
    response = api_for(team["manager"]).get(path.format(p=project.id))
    assert response.status_code == 400, response.content[:300]
    assert parameter in response.json()
    assert "9223372036854775807" in str(response.json()[parameter])
    assert not Item.objects.filter(lease_user__isnull=False).exists()  # /next leased nothing


def test_ids_in_range_still_work(team):
    project, (first, second) = team["project"], team["items"]
    api = api_for(team["manager"])
    response = api.get(f"/api/projects/{project.id}/next/?exclude={first.id},{2**63 - 1}")
    assert response.status_code == 200 and response.json()["id"] == second.id
    assert api.get(f"/api/projects/{project.id}/annotations/?user={2**63 - 1}").status_code == 200


# 10. A client token reused for another item ---------------------------------------------------------


def test_a_client_token_reused_for_another_item_is_a_409_and_labels_nothing(team):
    (first, second), api = team["items"], api_for(team["annotator"])
    stored = api.post(f"/api/items/{first.id}/annotations/", {"label": "cat", "client_token": "t-1"}, format="json")
    assert stored.status_code == 201
    # When the same token comes with another item
    response = api.post(f"/api/items/{second.id}/annotations/", {"label": "dog", "client_token": "t-1"}, format="json")
    # Then it is a conflict that names the token and the item it was used for, and nothing changes
    assert response.status_code == 409, response.content
    assert "t-1" in response.json()["detail"] and str(first.id) in response.json()["detail"]
    assert Item.objects.get(id=second.id).status == Item.Status.UNLABELED
    assert [(a.item_id, annotation_label(a), a.active) for a in Annotation.objects.all()] == [(first.id, "cat", True)]
    # And a retry of the first post is still answered with its annotation
    again = api.post(f"/api/items/{first.id}/annotations/", {"label": "cat", "client_token": "t-1"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == stored.json()["id"]


def test_the_service_refuses_a_token_used_for_another_item(team):
    (first, second), user = team["items"], team["annotator"]
    annotation_create(item=first, user=user, label="cat", client_token="t-2")
    with pytest.raises(ConflictError, match="t-2"):
        annotation_create(item=second, user=user, label="dog", client_token="t-2")
    assert Annotation.objects.count() == 1


# 11. Class names --------------------------------------------------------------------------------------


BAD_NAMES = [
    ("ca\x00t", "control character"),
    ("ca\x01t", "control character"),
    ("two\nlines", "control character"),
    ("tab\there", "control character"),
    ("zero\u200bwidth", "control character"),
    ("\x7f", "control character"),
    ({"x": 1}, "must be text"),
    (5, "must be text"),
    ("   ", "empty"),
    ("x" * 101, "longer than 100"),
    ("a/b", "slashes"),
    ("..", "slashes"),
    ("CAT", "already|twice"),
    (" cat ", "already|twice"),
]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_the_class_name_rule_is_the_same_on_every_path(team, name, message):
    project, manager = team["project"], team["manager"]
    api = api_for(manager)
    # Project create through the API (the second class is the bad one, next to an existing "cat")
    response = api.post("/api/projects/", {"name": "New", "labels": ["cat", name]}, format="json")
    assert response.status_code == 400, response.content
    assert re.search(message, str(response.json()))
    assert not Project.objects.filter(name="New").exists()
    response = api.post("/api/projects/", {"name": "New", "labels": ["cat", {"name": name}]}, format="json")
    assert response.status_code == 400 and re.search(message, str(response.json()))
    # Class add through the API
    response = api.post(f"/api/projects/{project.id}/labels/", {"name": name}, format="json")
    assert response.status_code == 400 and re.search(message, str(response.json())), response.content
    # The pages (a form sends text only)
    if isinstance(name, str):
        page = page_for(manager)
        form = {"name": "New", "labels": f"cat,{name}", "strategy": "margin", "retrain_every": 5, "input_size": 32}
        if name.strip():  # (the create form drops empty names between commas)
            response = page.post("/", form)
            assert response.status_code == 200 and not Project.objects.filter(name="New").exists()
        response = page.post(f"/projects/{project.id}/classes/", {"name": name}, follow=True)
        assert response.status_code == 200
        assert any(m.level_tag == "error" for m in response.context["messages"])
    # The services say the same
    with pytest.raises(ServiceError, match=message):
        label_class_add(project=project, name=name)
    with pytest.raises(ServiceError, match=message):
        project_create(name="New", labels=["cat", name], user=manager)
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["cat", "dog"]


def test_a_class_name_of_none_is_refused(team):
    with pytest.raises(ServiceError, match="must be text"):
        label_class_add(project=team["project"], name=None)
    with pytest.raises(ServiceError, match="must be text"):
        project_create(name="New", labels=[{"hotkey": "a"}], user=team["manager"])


def test_class_names_are_trimmed_and_unique_whatever_their_case(team):
    project = team["project"]
    added = label_class_add(project=project, name="  Bird  ")
    assert added.name == "Bird"
    with pytest.raises(ServiceError, match="already"):
        label_class_add(project=project, name="bird")
    with pytest.raises(ServiceError, match="twice"):
        project_create(name="X", labels=["Cat", "cat"], user=team["manager"])
    # Names that differ only in case are refused because exports name folders after classes (and file
    # systems on macOS and Windows ignore case); emoji and other scripts are fine
    made = project_create(name="X", labels=["🐱", "chat noir", "Katze", "👩‍💻"], user=team["manager"])
    assert list(made.classes.values_list("name", flat=True)) == ["🐱", "chat noir", "Katze", "👩‍💻"]


def test_the_model_field_validates_the_same_rule(team):
    label_class = LabelClass(project=team["project"], name="ca\x01t", index=5)
    with pytest.raises(ValidationError, match="control character"):
        label_class.full_clean()


# 12. Skipping an item someone else holds -------------------------------------------------------------


def test_an_item_leased_to_someone_else_cannot_be_skipped(team):
    project, manager, annotator = team["project"], team["manager"], team["annotator"]
    held = item_lease_next(project=project, user=manager)
    # When another member skips the item the manager holds
    response = api_for(annotator).post(f"/api/items/{held.id}/skip/")
    # Then it is refused with the reason, and the item stays in the queue, leased to the manager
    assert response.status_code == 409, response.content
    assert "leased to another" in response.json()["detail"]
    after = Item.objects.get(id=held.id)
    assert (after.status, after.lease_user) == (Item.Status.UNLABELED, manager)
    with pytest.raises(ConflictError):
        item_skip(item=held, user=annotator)
    assert Item.objects.get(id=held.id).status == Item.Status.UNLABELED


def test_own_free_and_expired_items_can_be_skipped(team):
    project, manager, annotator = team["project"], team["manager"], team["annotator"]
    first, second = team["items"]
    mine = item_lease_next(project=project, user=annotator)
    assert api_for(annotator).post(f"/api/items/{mine.id}/skip/").status_code == 200
    other = second if mine.id == first.id else first
    Item.objects.filter(id=other.id).update(lease_user=manager, lease_until=timezone.now() - timedelta(seconds=1))
    assert api_for(annotator).post(f"/api/items/{other.id}/skip/").status_code == 200
    assert set(Item.objects.values_list("status", flat=True)) == {Item.Status.SKIPPED}


# 15. The ranges of the settings ------------------------------------------------------------------------


RANGES = {
    "retrain_every": (1, 100_000),
    "labels_per_item": (1, 20),
    "lease_seconds": (10, 86_400),
    "input_size": (16, 512),
}
OUT_OF_RANGE = [(field, value) for field, (low, high) in RANGES.items() for value in (low - 1, high + 1)]
OUT_OF_RANGE.append(("input_size", 8))


def test_each_range_is_defined_once_on_the_model():
    for field, (low, high) in RANGES.items():
        project = Project(name="X", **{field: low})
        project.full_clean(exclude=["created_by"])
        for value in (low - 1, high + 1):
            project = Project(name="X", **{field: value})
            with pytest.raises(ValidationError, match=f"between {low} and {high}"):
                project.full_clean(exclude=["created_by"])


def test_the_smallest_input_size_is_one_the_cnn_takes():
    low = models.INPUT_SIZE.low
    build_model(2, input_size=low)
    with pytest.raises(ValueError, match="at least"):
        build_model(2, input_size=low - 1)


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
def test_settings_out_of_range_are_refused_everywhere_with_the_range(team, field, value):
    project, manager = team["project"], team["manager"]
    low, high = RANGES[field]
    said = f"between {low} and {high}"
    before = Project.objects.values().get(id=project.id)
    # Services
    with pytest.raises(ServiceError, match=said):
        project_create(name="New", labels=["a"], user=manager, **{field: value})
    if field != "input_size":
        with pytest.raises(ServiceError, match=said):
            project_settings_update(project=project, **{field: value})
    # API: create, and change
    api = api_for(manager)
    response = api.post("/api/projects/", {"name": "New", "labels": ["a"], field: value}, format="json")
    assert response.status_code == 400 and said in str(response.json()[field]), response.content
    if field != "input_size":
        response = api.patch(f"/api/projects/{project.id}/", {field: value}, format="json")
        assert response.status_code == 400 and said in str(response.json()[field]), response.content
    # Pages: the create form (retrain_every, input_size) and the settings form (the others)
    page = page_for(manager)
    if field in ("retrain_every", "input_size"):
        form = {"name": "New", "labels": "a", "strategy": "margin", "retrain_every": 5, "input_size": 32}
        response = page.post("/", {**form, field: value})
        assert response.status_code == 200 and said in response.content.decode()
    if field != "input_size":
        form = {"labels_per_item": 1, "lease_seconds": 300, "retrain_every": 10, "strategy": "margin"}
        response = page.post(f"/projects/{project.id}/settings/", {**form, field: value}, follow=True)
        assert said in response.content.decode()
    assert not Project.objects.filter(name="New").exists()
    assert Project.objects.values().get(id=project.id) == before


def test_the_range_ends_are_accepted(team):
    manager = team["manager"]
    for field, (low, high) in RANGES.items():
        for value in (low, high):
            project_create(name=f"{field}={value}", labels=["a"], user=manager, **{field: value})
    assert Project.objects.get(name="input_size=16").input_size == 16
