"""Security: login rate limits, CSRF on forms, private media, and ``check --deploy`` under
production settings."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from annotator import services
from annotator.models import Item
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def login(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_failed_logins_are_rate_limited_per_username():
    # Given a user, and someone guessing their password
    make_user("alice")
    client = Client()
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert login(client, "alice", "wrong").status_code == 200
    # When they try again, even with the right password, from another address
    response = login(client, "alice", "pw-alice", address="10.0.0.2")
    # Then they are refused with a readable message, and not logged in
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_rate_limited_per_address():
    make_user("bob")
    client = Client()
    for i in range(settings.LOGIN_MAX_FAILURES):
        login(client, f"nobody{i}", "wrong", address="10.9.9.9")
    assert login(client, "bob", "pw-bob", address="10.9.9.9").status_code == 429
    assert login(client, "bob", "pw-bob", address="10.1.1.1").status_code == 302


def test_a_successful_login_clears_the_count():
    make_user("carol")
    client = Client()
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        login(client, "carol", "wrong")
    assert login(client, "carol", "pw-carol").status_code == 302
    Client().logout()
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        assert login(Client(), "carol", "wrong").status_code == 200


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/", {"name": "X", "labels": "a,b", "strategy": "entropy", "retrain_every": 5, "input_size": 32}),
        ("/projects/{p}/train/", {}),
        ("/projects/{p}/settings/", {"labels_per_item": 1, "lease_seconds": 60, "retrain_every": 5}),
        ("/account/", {"action": "rotate"}),
        ("/accounts/logout/", {}),
    ],
)
def test_every_form_needs_its_csrf_token(path, data):
    user = make_user("dave")
    project = make_project(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(path.format(p=project.id), data).status_code == 403


def test_api_session_writes_need_csrf_but_token_clients_do_not():
    from rest_framework.authtoken.models import Token

    user = make_user("erin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"name": "P", "labels": ["a", "b"]}
    assert client.post("/api/projects/", body, content_type="application/json").status_code == 403
    token = Token.objects.create(user=user).key
    response = Client(enforce_csrf_checks=True).post(
        "/api/projects/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert response.status_code == 201


def test_media_are_served_only_to_members_under_random_names():
    owner = make_user("frank")
    project = make_project(owner)
    services.items_import_uploads(project=project, files=[("holiday photo.png", io.BytesIO(png_bytes(3)))], user=owner)
    item = Item.objects.get(project=project)
    # Stored under a random name, not the uploaded one
    assert "holiday" not in item.file.name and len(os.path.basename(item.file.name)) >= 32
    # Not reachable as a public file
    assert Client().get(f"/media/{item.file.name}").status_code == 404
    outsider = Client()
    outsider.force_login(make_user("grace"))
    assert outsider.get(f"/api/items/{item.id}/image/").status_code == 404
    member = Client()
    member.force_login(owner)
    response = member.get(f"/api/items/{item.id}/image/")
    assert response.status_code == 200 and "private" in response["Cache-Control"]


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-0123456789",
        "ALLOWED_HOSTS": "label.example.com",
        "SECURE_COOKIES": "1",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "DATA_DIR": str(tmp_path),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PYTEST_CURRENT_TEST")}
    env |= {"DEBUG": "0", "DATA_DIR": str(tmp_path)}
    for command in (["-c", "import annotator.wsgi"], ["manage.py", "serve", "--help"]):
        result = subprocess.run(
            [sys.executable, *command], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
        )
        assert result.returncode != 0 and "SECRET_KEY" in result.stderr, command
    # Commands that serve nothing run without one
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
