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

from annotator.models import Item
from annotator.services.imports import items_import_uploads
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


LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


def login_at(path: str, username: str, password: str, address: str = "10.0.0.1", **headers):
    client = Client()
    response = client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)
    return response, client


def logged_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.mark.parametrize("failed_at", LOGIN_PAGES)
@pytest.mark.parametrize("then_at", LOGIN_PAGES)
def test_every_login_page_shares_one_limit(failed_at, then_at):
    # Given an admin, and someone guessing their password on one login page
    make_user("root", superuser=True)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        response, _ = login_at(failed_at, "root", "wrong")
        assert response.status_code == 200
    # When the right password is then tried on either page, from another address
    response, client = login_at(then_at, "root", "pw-root", address="10.0.0.2")
    # Then it is refused with a readable message, and no session is given
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert logged_in_as(client) is None


@pytest.mark.parametrize("failed_at", LOGIN_PAGES)
def test_the_admin_login_is_refused_to_an_address_the_app_login_refuses(failed_at):
    # Given an address that sprayed wrong passwords over many usernames on one login page
    make_user("root", superuser=True)
    for i in range(settings.LOGIN_MAX_FAILURES):
        login_at(failed_at, f"nobody{i}", "wrong", address="10.9.9.9")
    # Then neither login page gives that address a session, even with the right password
    for path in LOGIN_PAGES:
        response, client = login_at(path, "root", "pw-root", address="10.9.9.9")
        assert response.status_code == 429 and logged_in_as(client) is None, path
    # And another address still logs in to the admin
    response, client = login_at("/admin/login/", "root", "pw-root", address="10.1.1.1")
    assert response.status_code == 302 and logged_in_as(client) is not None


def test_the_admin_login_still_logs_in_and_clears_the_count():
    make_user("root", superuser=True)
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        login_at("/admin/login/", "root", "wrong")
    response, client = login_at("/admin/login/", "root", "pw-root")
    assert response.status_code == 302 and logged_in_as(client) is not None
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        assert login_at("/accounts/login/", "root", "wrong")[0].status_code == 200


def test_the_failure_window_is_the_configured_one_whatever_the_cache(monkeypatch):
    # Given a username blocked by failed logins (Django's file cache resets a key's expiry on incr
    # to its 300 s default; the limit must last LOGIN_FAILURE_WINDOW)
    import time

    make_user("alice")
    for _ in range(settings.LOGIN_MAX_FAILURES):
        login(Client(), "alice", "wrong")
    start = time.time()
    # When a bit more than 300 s have passed, it is still blocked
    monkeypatch.setattr(time, "time", lambda: start + 301)
    assert settings.LOGIN_FAILURE_WINDOW > 301
    assert login(Client(), "alice", "pw-alice").status_code == 429
    # And once the window has passed with no new failure, it is not
    monkeypatch.setattr(time, "time", lambda: start + settings.LOGIN_FAILURE_WINDOW + 1)
    assert login(Client(), "alice", "pw-alice").status_code == 302


def forwarded(*hops: str) -> dict:
    """What the app sees behind the documented nginx: the client's header with the proxy's hop appended."""
    return {"HTTP_X_FORWARDED_FOR": ", ".join(hops)}


def test_a_forged_forwarded_for_does_not_dodge_the_address_limit(settings):
    # Given the app behind one trusted proxy, and an attacker at 203.0.113.7 forging a new leftmost
    # address with each guess
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = 1
    make_user("bob")
    for i in range(settings.LOGIN_MAX_FAILURES):
        headers = forwarded(f"198.51.100.{i}", "203.0.113.7")
        response, _ = login_at("/accounts/login/", f"nobody{i}", "wrong", address="127.0.0.1", **headers)
        assert response.status_code == 200
    # When they then try a right password with yet another forged address
    response, client = login_at(
        "/admin/login/", "bob", "pw-bob", address="127.0.0.1", **forwarded("198.51.100.99", "203.0.113.7")
    )
    # Then the address the proxy saw is the one counted, and it is refused
    assert response.status_code == 429 and logged_in_as(client) is None


def test_a_forged_forwarded_for_cannot_lock_out_someone_elses_address(settings):
    # Given an attacker who writes a victim's address as the leftmost X-Forwarded-For entry
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = 1
    make_user("bob")
    for i in range(settings.LOGIN_MAX_FAILURES):
        login_at("/accounts/login/", f"nobody{i}", "wrong", address="127.0.0.1", **forwarded("10.5.5.5", "203.0.113.7"))
    # When the victim at 10.5.5.5 logs in through the proxy
    response, client = login_at("/accounts/login/", "bob", "pw-bob", address="127.0.0.1", **forwarded("10.5.5.5"))
    # Then they get in
    assert response.status_code == 302 and logged_in_as(client) is not None


@pytest.mark.parametrize(
    ("trusted", "header", "expected"),
    [
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (1, " 6.6.6.6 ,  203.0.113.7 ", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),  # fewer hops than proxies: the farthest, still written by a proxy
        (1, "", "127.0.0.1"),
        (0, "6.6.6.6, 203.0.113.7", "127.0.0.1"),
    ],
)
def test_client_address_is_the_hop_the_trusted_proxies_appended(settings, rf, trusted, header, expected):
    from annotator.login_limits import client_address

    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = trusted
    request = rf.post("/accounts/login/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=header)
    assert client_address(request) == expected


def test_the_forwarded_header_is_ignored_unless_trusted(settings, rf):
    from annotator.login_limits import client_address

    settings.TRUST_X_FORWARDED_FOR = False
    request = rf.post("/accounts/login/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_address(request) == "127.0.0.1"


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

    user = make_user("erin", can_create_projects=True)
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
    items_import_uploads(project=project, files=[("holiday photo.png", io.BytesIO(png_bytes(3)))], user=owner)
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
