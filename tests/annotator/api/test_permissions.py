"""The authorization matrix: every endpoint × every role (admin, manager, annotator, a logged-in
outsider, anonymous), with the exact status code expected, and nothing changed by a refused call."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient
from rest_framework.views import APIView

from annotator import paths
from annotator.models import Annotation, Item, Job, LabelClass, Membership, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.jobs import job_export_request, job_run
from annotator.services.members import membership_add
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

ROLES = ["admin", "manager", "annotator", "outsider", "anonymous"]


@dataclass
class World:
    project: Project
    item: Item
    labeled: Item
    job: Job
    folder: str
    users: dict


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.IMPORT_ROOTS = [str(tmp_path)]
    manager = make_user("manager", can_create_projects=True)
    project = make_project(manager)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(900 + i))) for i in range(3)], user=manager
    )
    annotator = make_user("annotator")
    membership_add(project=project, user=annotator)
    users = {
        "admin": make_user("admin", superuser=True),
        "manager": manager,
        "annotator": annotator,
        "outsider": make_user("outsider"),
        "anonymous": None,
    }
    make_user("newcomer")
    items = list(Item.objects.filter(project=project).order_by("id"))
    labeler = make_user("labeler")  # the labeled item's annotator, so that nobody in ROLES has a label to undo
    membership_add(project=project, user=labeler)
    annotation_create(item=items[2], user=labeler, label="dog")
    folder = paths.import_roots()[0] / "matrix"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.png").write_bytes(png_bytes(1234))
    job = job_export_request(project=project, user=manager, fmt="csv")
    job_run(job_id=job.id)
    return World(project=project, item=items[0], labeled=items[2], job=job, folder=str(folder), users=users)


def upload():
    f = io.BytesIO(png_bytes(777))
    f.name = "new.png"
    return {"files": [f]}


# (method, path, body, codes in ROLES order). {p}: project id, {i}: an unlabeled item's id, {l}: a labeled
# item's id, {a}: the annotator's user id, {j}: a finished export job's id, {f}: a folder under IMPORT_ROOTS.
MEMBER_READ = (200, 200, 200, 404, 401)
MANAGERS = (200, 200, 403, 404, 401)
QUEUED = (202, 202, 403, 404, 401)
API = [
    ("get", "/api/projects/", None, (200, 200, 200, 200, 401)),
    # Creating a project needs the permission an admin grants (the manager here has it)
    ("post", "/api/projects/", {"name": "New", "labels": ["a", "b"]}, (201, 201, 403, 403, 401)),
    ("get", "/api/projects/{p}/", None, MEMBER_READ),
    ("patch", "/api/projects/{p}/", {"retrain_every": 7}, MANAGERS),
    ("get", "/api/projects/{p}/labels/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/labels/", {"name": "bird"}, (201, 201, 403, 404, 401)),
    ("get", "/api/projects/{p}/items/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/items/", upload, (201, 201, 403, 404, 401)),
    ("get", "/api/projects/{p}/members/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/members/", {"username": "newcomer"}, (201, 201, 403, 404, 401)),
    ("delete", "/api/projects/{p}/members/{a}/", None, (204, 204, 403, 404, 401)),
    ("post", "/api/projects/{p}/invitations/", {"email": "new@example.com"}, (201, 201, 403, 404, 401)),
    ("get", "/api/users/?q=ann", None, (200, 200, 403, 403, 401)),  # managers of some project, and admins
    ("get", "/api/projects/{p}/annotations/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/next/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/undo/", None, (204, 204, 204, 404, 401)),
    ("get", "/api/projects/{p}/stats/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/model-versions/", None, MEMBER_READ),
    ("get", "/api/projects/{p}/model-versions/1/", None, (404, 404, 404, 404, 401)),  # no version yet
    ("post", "/api/projects/{p}/train/", None, (202, 202, 403, 404, 401)),
    ("get", "/api/projects/{p}/export/?format=csv", None, (200, 200, 403, 404, 401)),
    ("get", "/api/projects/{p}/dashboard/", None, (200, 200, 403, 404, 401)),
    ("get", "/api/projects/{p}/model/", None, (404, 404, 403, 404, 401)),  # no model version yet
    ("get", "/api/projects/{p}/agreement/", None, MANAGERS),
    ("get", "/api/projects/{p}/review/", None, MANAGERS),
    ("post", "/api/projects/{p}/review/scan/", None, QUEUED),
    ("get", "/api/projects/{p}/review/next/", None, (204, 204, 403, 404, 401)),  # nothing flagged
    ("post", "/api/items/{l}/review/", {"action": "keep"}, MANAGERS),
    ("post", "/api/projects/{p}/imports/", {"folder": "{f}"}, QUEUED),
    ("post", "/api/projects/{p}/exports/", {"format": "csv"}, QUEUED),
    ("get", "/api/projects/{p}/jobs/", None, MANAGERS),
    ("get", "/api/jobs/{j}/", None, MANAGERS),
    ("get", "/api/jobs/{j}/download/", None, MANAGERS),
    ("get", "/api/schema/", None, (200, 200, 200, 200, 200)),
    ("get", "/api/docs/", None, (200, 200, 200, 200, 200)),
    ("get", "/api/items/{i}/", None, MEMBER_READ),
    ("get", "/api/items/{i}/image/", None, MEMBER_READ),
    ("get", "/api/items/{i}/thumbnail/", None, MEMBER_READ),
    ("post", "/api/items/{i}/annotations/", {"label": "cat"}, (201, 201, 201, 404, 401)),
    ("post", "/api/items/{i}/annotations/?next=1", {"label": "cat"}, (201, 201, 201, 404, 401)),
    ("post", "/api/items/{i}/skip/", None, MEMBER_READ),
    ("post", "/api/items/{i}/skip/?next=1", None, MEMBER_READ),
    ("post", "/api/items/{i}/release/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/release/", {"ids": [1]}, MEMBER_READ),
    ("get", "/api/items/{l}/history/", None, MEMBER_READ),
    ("post", "/api/projects/{p}/items/bulk/", {"items": ["{l}"], "action": "ambiguous"}, MANAGERS),
]
PAGES = [
    ("get", "/", None, (200, 200, 200, 200, 302)),
    (
        "post",
        "/",
        {"name": "New", "labels": "a, b", "strategy": "margin", "retrain_every": 5, "input_size": 32},
        (302, 302, 403, 403, 302),
    ),
    ("get", "/account/", None, (200, 200, 200, 200, 302)),
    ("get", "/projects/{p}/", None, (200, 200, 200, 404, 302)),
    ("get", "/projects/{p}/label/", None, (200, 200, 200, 404, 302)),
    ("get", "/projects/{p}/?partial=learning-curve", None, (200, 200, 403, 404, 302)),
    ("get", "/projects/{p}/review/", None, (200, 200, 403, 404, 302)),
    ("get", "/projects/{p}/items/", None, (200, 200, 200, 404, 302)),
    ("post", "/projects/{p}/members/", {"username": "newcomer", "role": "annotator"}, (302, 302, 403, 404, 302)),
    ("post", "/projects/{p}/classes/", {"name": "bird"}, (302, 302, 403, 404, 302)),
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
    ("get", "/health/", None, (200, 200, 200, 200, 200)),
    ("get", "/accounts/login/", None, (200, 200, 200, 200, 200)),
    ("post", "/accounts/logout/", None, (302, 302, 302, 302, 302)),
    ("get", "/accounts/password/change/", None, (200, 200, 200, 200, 302)),
    ("get", "/accounts/password/change/done/", None, (200, 200, 200, 200, 302)),
    ("get", "/accounts/password/reset/", None, (200, 200, 200, 200, 200)),
    ("get", "/accounts/password/reset/done/", None, (200, 200, 200, 200, 200)),
    ("get", "/accounts/reset/MQ/not-a-token/", None, (200, 200, 200, 200, 200)),  # "this link is invalid"
    ("get", "/accounts/reset/done/", None, (200, 200, 200, 200, 200)),
    ("get", "/accounts/invitation/MQ/not-a-token/", None, (200, 200, 200, 200, 200)),
]
#: Routes outside the matrix, and why.
NOT_IN_MATRIX = {
    "health-workers": "public like /health/, but it waits for Celery workers to answer; tests/annotator/test_health.py",
}


def snapshot(world: World) -> tuple:
    """What a refused call must leave untouched."""
    project = Project.objects.get(id=world.project.id)
    return (
        Project.objects.count(),
        Item.objects.filter(project=world.project).count(),
        Annotation.objects.count(),
        project.name,
        LabelClass.objects.filter(project=world.project).count(),
        Job.objects.count(),
        list(Item.objects.filter(project=world.project).order_by("id").values_list("review_status", flat=True)),
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
    ids = {"p": world.project.id, "i": world.item.id, "l": world.labeled.id, "j": world.job.id}
    path = path.format(a=world.users["annotator"].id, **ids)
    if isinstance(body, dict):
        body = {key: value.format(f=world.folder) if isinstance(value, str) else value for key, value in body.items()}
        if body.get("items") == ["{l}"]:  # the bulk action's items: the labeled item
            body["items"] = [world.labeled.id]
    before = snapshot(world)

    # When they call the endpoint
    response = call(client, method, path, body, api=api)

    # Then the status is exactly the expected one, and a refused call changed nothing
    assert response.status_code == expected, getattr(response, "content", b"")[:300]
    if expected in (401, 403, 404) or (not api and expected == 302 and role == "anonymous"):
        assert snapshot(world) == before
    if api and expected in (401, 403, 404):
        assert "detail" in response.json()


def _routes(patterns, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if getattr(entry, "namespace", None) == "admin":
                continue
            found += _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            found.append((prefix + str(entry.pattern), entry))
    return found


def test_the_matrix_covers_every_route_and_every_api_method():
    # Given every named route of the app (the admin console's own routes aside) and the HTTP
    # methods its API view answers
    covered = set()
    for method, path, _, _ in API + PAGES:
        match = resolve(path.split("?")[0].format(p=1, i=1, l=1, a=1, j=1))
        covered.add((match.url_name, method))
    missing = []
    for route, pattern in _routes(get_resolver().url_patterns):
        if pattern.name in NOT_IN_MATRIX or route == "admin/":
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is not None and issubclass(view_class, APIView):
            methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)}
        else:
            methods = {next((m for n, m in covered if n == pattern.name), "any")}
        missing += [f"{method.upper()} {route}" for method in methods if (pattern.name, method) not in covered]
    # Then each is in the matrix
    assert not missing, missing
