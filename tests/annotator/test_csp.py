"""The Content-Security-Policy: one strict policy on every response (every route of the URLconf, the
admin, the API docs, static files, errors), and no template that the policy would break."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotator.models import Item
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.jobs import job_export_request, job_run
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def routes(patterns, prefix: str = "") -> list[str]:
    """Every route of the URLconf but the admin's own (sampled below), as a path pattern."""
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern) != "admin/":
                found += routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.append(prefix + str(entry.pattern))
    return found


@pytest.fixture
def admin_client(settings) -> tuple[Client, dict[str, int]]:
    """A superuser managing a project with items, a label and a finished export; the ids routes take."""
    admin = make_user("root", superuser=True)
    project = make_project(admin)
    files = [(f"{i}.png", io.BytesIO(png_bytes(300 + i))) for i in range(2)]
    items_import_uploads(project=project, files=files, user=admin)
    item = Item.objects.filter(project=project).first()
    annotation_create(item=item, user=admin, label="cat")
    job = job_export_request(project=project, user=admin, fmt="csv")
    job_run(job_id=job.id)
    client = Client()
    client.force_login(admin)
    ids = {"project_id": project.id, "item_id": item.id, "user_id": admin.id, "job_id": job.id}
    # a model version's number (a 404 page here: none trained); a password link's user and token (invalid here)
    return client, ids | {"number": 1, "uidb64": "MQ", "token": "not-a-token"}


def test_every_response_carries_the_strict_policy(admin_client):
    # Given every route of the app with real ids, a sample of the admin, static files and errors
    client, ids = admin_client
    pattern = r"<(?:int:)?(\w+)>"
    with_ids = [re.sub(pattern, lambda m: str(ids[m.group(1)]), r) for r in routes(get_resolver().url_patterns)]
    paths = ["/" + path for path in with_ids]
    assert len(paths) > 40 and all("<" not in path for path in paths)
    paths += [
        "/api/docs/?script",
        "/admin/",
        "/admin/annotator/project/",
        f"/admin/annotator/project/{ids['project_id']}/change/",
        "/admin/auth/user/add/",
        "/static/css/app.css",
        "/no-such-page/",
        "/api/no-such-endpoint/",
    ]
    for path in paths:
        # When it is requested, logged in or not
        for who in (client, Client()):
            response = who.get(path)
            # Then the response carries the policy: the strict one, but for the API docs' images
            header = response.headers.get("Content-Security-Policy")
            assert header, f"{path} ({response.status_code}) has no Content-Security-Policy"
            expected = dict(STRICT)
            if path.startswith("/api/docs/"):
                expected["img-src"] = ["'self'", "data:"]
            assert directives(header) == expected, (path, header)


def test_the_policy_allows_nothing_inline_and_no_other_origin():
    # The setting itself: only 'self' and 'none' (and data: images for the API docs), never 'unsafe-*'
    for policy in (settings.CONTENT_SECURITY_POLICY, *settings.CONTENT_SECURITY_POLICY_PATHS.values()):
        for name, value in policy.items():
            assert set(value.split()) <= {"'self'", "'none'", "data:"}, (name, value)
            assert "data:" not in value or name == "img-src", name


def test_no_template_has_inline_script_style_or_event_handlers():
    # Given the policy refuses inline script and style, no template may rely on them
    offenders = []
    for path in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle=", r"\son[a-z]+=", r"javascript:"):
            offenders += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text, flags=re.IGNORECASE)]
    assert offenders == []
