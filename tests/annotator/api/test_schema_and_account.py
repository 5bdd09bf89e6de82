"""The OpenAPI schema and Swagger UI, and the account page where users manage their API token."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_and_documents_every_api_route():
    from annotator.api.urls import urlpatterns as api

    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    documented = set(schema["paths"])
    for route in api:
        path = "/api/" + str(route.pattern).replace("<int:", "{").replace(">", "}")
        assert path in documented, f"{path} is missing from the schema"
    next_item = schema["paths"]["/api/projects/{project_id}/next/"]["get"]
    assert {"200", "204", "404"} <= set(next_item["responses"])
    create = schema["paths"]["/api/items/{item_id}/annotations/"]["post"]
    assert "requestBody" in create


def test_swagger_ui_is_served_without_a_cdn():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_account_page_creates_replaces_and_revokes_the_token():
    user = make_user("alice")
    client = Client()
    client.force_login(user)
    assert client.get("/account/").status_code == 200
    assert not Token.objects.filter(user=user).exists()

    client.post("/account/", {"action": "rotate"})
    first = Token.objects.get(user=user).key
    assert first in client.get("/account/").content.decode()
    api = APIClient(HTTP_AUTHORIZATION=f"Token {first}")
    assert api.get("/api/projects/").status_code == 200

    client.post("/account/", {"action": "rotate"})
    second = Token.objects.get(user=user).key
    assert second != first
    assert api.get("/api/projects/").status_code in (401, 403)

    client.post("/account/", {"action": "revoke"})
    assert not Token.objects.filter(user=user).exists()
    assert client.post("/account/", {"action": "steal"}).status_code == 400


def test_account_page_needs_login_and_csrf():
    assert Client().get("/account/").status_code == 302
    user = make_user("bob")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/account/", {"action": "rotate"}).status_code == 403
    assert not Token.objects.filter(user=user).exists()
