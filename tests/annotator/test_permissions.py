"""The authorization matrix: every endpoint × every role (admin, manager, annotator, a logged-in
outsider, anonymous), with the exact status code expected, and nothing changed by a refused call."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotator import services
from annotator.models import Annotation, Item, Membership, Project
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

ROLES = ["admin", "manager", "annotator", "outsider", "anonymous"]


@dataclass
class World:
    project: Project
    item: Item
    users: dict


@pytest.fixture
def world() -> World:
    manager = make_user("manager")
    project = make_project(manager)
    services.items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(900 + i))) for i in range(3)], user=manager
    )
    annotator = make_user("annotator")
    services.membership_add(project=project, user=annotator)
    users = {
        "admin": make_user("admin", superuser=True),
        "manager": manager,
        "annotator": annotator,
        "outsider": make_user("outsider"),
        "anonymous": None,
    }
    make_user("newcomer")
    return World(project=project, item=Item.objects.filter(project=project).order_by("id").first(), users=users)


def upload():
    f = io.BytesIO(png_bytes(777))
    f.name = "new.png"
    return {"files": [f]}


# (method, path, body, {role: status}); codes in ROLES order. {p}: project id, {i}: item id, {a}: annotator id.
MEMBER_READ = (200, 200, 200, 404, 401)
API = [
    ("get", "/api/projects/", None, (200, 200, 200, 200, 401)),
    ("post", "/api/projects/", {"name": "New", "labels": ["a", "b"]}, (201, 201, 201, 201, 401)),
    ("get", "/api/projects/{p}/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/items/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/items/", upload, (201, 201, 403, 404, 401)),
    ("get", "/api/projects/{p}/members/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/members/", {"username": "newcomer"}, (201, 201, 403, 404, 401)),
    ("delete", "/api/projects/{p}/members/{a}/", None, (204, 204, 403, 404, 401)),
    ("get", "/api/projects/{p}/annotations/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/next/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/undo/", None, (204, 204, 204, 404, 401)),
    ("get", "/api/projects/{p}/stats/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/model-versions/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/train/", None, (202, 202, 403, 404, 401)),
    ("get", "/api/projects/{p}/export/?format=csv", None, (200, 200, 403, 404, 401)),
    ("get", "/api/projects/{p}/dashboard/", None, (200, 200, 403, 404, 401)),
    ("get", "/api/projects/{p}/model/", None, (404, 404, 403, 404, 401)),  # no model version yet
    ("get", "/api/items/{i}/", None, MEMBER_READ),
    ("get", "/api/items/{i}/image/", None, MEMBER_READ),
    ("post", "/api/items/{i}/annotations/", {"label": "cat"}, (201, 201, 201, 404, 401)),
    ("post", "/api/items/{i}/skip/", None, MEMBER_READ),
    ("post", "/api/items/{i}/release/", None, MEMBER_READ),
]
PAGES = [
    ("get", "/", None, (200, 200, 200, 200, 302)),
    ("get", "/account/", None, (200, 200, 200, 200, 302)),
    ("get", "/projects/{p}/", None, (200, 200, 200, 404, 302)),
    ("get", "/projects/{p}/label/", None, (200, 200, 200, 404, 302)),
    ("post", "/projects/{p}/upload/", upload, (302, 302, 403, 404, 302)),
    ("post", "/projects/{p}/train/", None, (302, 302, 403, 404, 302)),
    ("get", "/projects/{p}/export/?format=csv", None, (200, 200, 403, 404, 302)),
    (
        "post",
        "/projects/{p}/settings/",
        {"labels_per_item": 1, "lease_seconds": 60, "retrain_every": 5, "strategy": "margin"},
        (302, 302, 403, 404, 302),
    ),
    ("get", "/admin/", None, (200, 302, 302, 302, 302)),
]


def snapshot(world: World) -> tuple:
    """What a refused call must leave untouched."""
    project = Project.objects.get(id=world.project.id)
    return (
        Item.objects.filter(project=world.project).count(),
        Annotation.objects.count(),
        sorted(Membership.objects.filter(project=world.project).values_list("user_id", "role")),
        project.training_requested,
        project.retrain_every,
        list(Item.objects.filter(project=world.project).order_by("id").values_list("status", "lease_user_id")),
    )


def call(client, method: str, path: str, body, *, api: bool):
    data = body() if callable(body) else body
    if api:
        fmt = "multipart" if callable(body) else "json"
        return getattr(client, method)(path, data, format=fmt) if data is not None else getattr(client, method)(path)
    return getattr(client, method)(path, data) if data is not None else getattr(client, method)(path)


def cases(table, api: bool):
    for method, path, body, codes in table:
        for role, code in zip(ROLES, codes, strict=True):
            yield pytest.param(method, path, body, role, code, api, id=f"{method} {path} as {role}")


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "expected", "api"), [*cases(API, True), *cases(PAGES, False)]
)
def test_role_matrix(world, method, path, body, role, expected, api):
    # Given a user in a role (or nobody)
    user = world.users[role]
    client = APIClient() if api else Client()
    if user is not None:
        client.force_login(user)
    path = path.format(p=world.project.id, i=world.item.id, a=world.users["annotator"].id)
    before = snapshot(world)

    # When they call the endpoint
    response = call(client, method, path, body, api=api)

    # Then the status is exactly the expected one, and a refused call changed nothing
    assert response.status_code == expected, getattr(response, "content", b"")[:300]
    if expected in (401, 403, 404) or (not api and expected == 302 and role == "anonymous"):
        assert snapshot(world) == before
    if api and expected in (401, 403, 404):
        assert "detail" in response.json()
