"""The invitations and user-search endpoints: managers invite by email address, and look up users by
name, username or email when adding members."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from annotator.models import Membership
from annotator.services.members import membership_add
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db
User = get_user_model()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def manager():
    return make_user("manager")


@pytest.fixture
def project(manager):
    return make_project(manager)


def test_a_manager_invites_a_new_person(manager, project):
    # When a manager invites a new address as a manager
    response = client_for(manager).post(
        f"/api/projects/{project.id}/invitations/", {"email": "new@example.com", "role": "manager"}, format="json"
    )
    # Then the account and membership exist, the email went out, and the link sets the password
    assert response.status_code == 201, response.content
    body = response.json()
    new = User.objects.get(email="new@example.com")
    assert body["membership"] == {"user_id": new.id, "username": "new", "role": "manager"}
    assert body["created"] is True and body["emailed"] is True
    assert body["link"].startswith("http://testserver/accounts/invitation/")
    assert len(mail.outbox) == 1 and body["link"] in mail.outbox[0].body
    client = Client()
    form = client.get(body["link"].removeprefix("http://testserver"), follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "new-Secret-31", "new_password2": "new-Secret-31"})
    assert Client().login(username="new", password="new-Secret-31")


def test_inviting_an_existing_user_gives_no_link(manager, project):
    bob = make_user("bob")
    bob.email = "bob@example.com"
    bob.save()
    response = client_for(manager).post(
        f"/api/projects/{project.id}/invitations/", {"email": "bob@example.com"}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {
        "membership": {"user_id": bob.id, "username": "bob", "role": "annotator"},
        "created": False,
        "link": None,
        "emailed": True,
    }
    assert "bob" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "detail"),
        ({"email": ""}, "email"),
        ({}, "email"),
        ({"email": "a@example.com", "role": "boss"}, "role"),
        ({"email": ["a@example.com"]}, "email"),
        ({"email": "x" * 300 + "@example.com"}, "email"),
    ],
)
def test_bad_input_is_a_400_with_a_reason(manager, project, body, field):
    response = client_for(manager).post(f"/api/projects/{project.id}/invitations/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert User.objects.count() == 1 and mail.outbox == []


def test_an_address_shared_by_two_accounts_is_refused(manager, project):
    for name in ("c1", "c2"):
        User.objects.create_user(username=name, email="shared@example.com")
    response = client_for(manager).post(
        f"/api/projects/{project.id}/invitations/", {"email": "shared@example.com"}, format="json"
    )
    assert response.status_code == 400 and "username instead" in response.json()["detail"]
    assert Membership.objects.filter(project=project).count() == 1


def test_user_search_for_managers_and_admins_only(manager, project):
    # Given users to find, an annotator and an outsider
    ann = User.objects.create_user(username="ann", first_name="Ann", last_name="Lee", email="ann@example.com")
    for n in range(12):
        User.objects.create_user(username=f"anna{n:02d}")
    annotator = make_user("annotator")
    membership_add(project=project, user=annotator)
    # When a manager and an admin search
    found = client_for(manager).get("/api/users/", {"q": "ann"})
    by_admin = client_for(make_user("root", superuser=True)).get("/api/users/", {"q": "lee"})
    # Then they get up to ten matches, with names and addresses
    assert found.status_code == 200 and len(found.json()) == 10
    assert found.json()[0] == {"id": ann.id, "username": "ann", "name": "Ann Lee", "email": "ann@example.com"}
    assert by_admin.json() == [found.json()[0]]
    assert client_for(manager).get("/api/users/").json() == []
    assert client_for(manager).get("/api/users/", {"q": "\x00ann" + "n" * 500}).json() == []
    # And others are refused
    assert client_for(annotator).get("/api/users/", {"q": "ann"}).status_code == 403
    assert APIClient().get("/api/users/", {"q": "ann"}).status_code == 401
