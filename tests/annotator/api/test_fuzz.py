"""API fuzzing: schemathesis generates requests for every operation in ``/api/schema/`` and sends
them to the app on a live test server, as a member of a real project; no response may be a 5xx and
every documented response must match its schema."""

from __future__ import annotations

import io
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from annotator.models import Item
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from tests.factories import make_project, make_user, png_bytes


def published_schema() -> dict:
    """The schema exactly as ``GET /api/schema/`` serves it."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def member_token(transactional_db) -> str:
    """A manager of a small project with items and one label, so that generated ids sometimes exist."""
    manager = make_user("fuzzer")
    project = make_project(manager, name="Fuzz")
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(40 + i))) for i in range(4)], user=manager
    )
    item = Item.objects.select_related("project").filter(project=project).first()
    annotation_create(item=item, user=manager, label="cat")
    return Token.objects.create(user=manager).key


schema = schemathesis.openapi.from_dict(json.loads(json.dumps(published_schema(), default=str)))


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_and_matches_its_schema(case, live_server, member_token):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Token {member_token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
