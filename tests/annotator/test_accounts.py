"""Accounts on the pages: changing one's password, resetting it by email (rate-limited, saying nothing
about which addresses have accounts), inviting people from the members card, and adding a member by
name or email address."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client

from annotator.models import Membership
from annotator.selectors.users import user_find, user_search
from annotator.services.accounts import user_invite
from annotator.services.errors import ServiceError
from annotator.services.members import membership_add
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def link_in(message) -> str:
    """The path of the one set-password link in an email's text."""
    (url,) = [url for url in re.findall(r"https?://[^\s\"<>]+", message.body) if "/accounts/" in url]
    return re.sub(r"^https?://[^/]+", "", url)


def can_log_in(username: str, password: str) -> bool:
    return Client().login(username=username, password=password)


def test_a_signed_in_user_changes_their_password():
    # Given a signed-in user, whose account page links to the change
    make_user("alice")
    client = Client()
    client.login(username="alice", password="pw-alice")
    assert "/accounts/password/change/" in client.get("/account/").content.decode()
    # When they give a wrong old password, then the right one
    wrong = {"old_password": "nope", "new_password1": "fresh-Secret-42", "new_password2": "fresh-Secret-42"}
    response = client.post("/accounts/password/change/", wrong)
    right = client.post("/accounts/password/change/", wrong | {"old_password": "pw-alice"})
    # Then the first is refused with a reason; the second changes it and keeps them signed in
    assert response.status_code == 200 and "incorrectly" in response.content.decode()
    assert right.status_code == 302 and right["Location"] == "/accounts/password/change/done/"
    assert client.get("/account/").status_code == 200
    assert can_log_in("alice", "fresh-Secret-42") and not can_log_in("alice", "pw-alice")


def test_password_reset_end_to_end_and_the_link_works_once():
    # Given a user with an email address, and the login page's link
    alice = make_user("alice")
    alice.email = "alice@example.com"
    alice.save()
    assert "/accounts/password/reset/" in Client().get("/accounts/login/").content.decode()
    # When they ask for a reset
    response = Client().post("/accounts/password/reset/", {"email": "ALICE@example.com"})
    # Then an email with a one-time link arrives
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/done/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    assert "alice" in mail.outbox[0].body and mail.outbox[0].alternatives
    path = link_in(mail.outbox[0])
    # When they follow it and choose a new password
    client = Client()
    form = client.get(path, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "brand-New-77", "new_password2": "brand-New-77"})
    # Then the new password logs in, the old does not, and the link no longer works
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert can_log_in("alice", "brand-New-77") and not can_log_in("alice", "pw-alice")
    again = Client().get(path, follow=True)
    assert again.status_code == 200 and not again.context["validlink"]
    assert "invalid" in again.content.decode()


def test_password_reset_says_the_same_for_an_unknown_address():
    # Given no account with this address
    make_user("alice")
    # When someone asks for a reset for it
    response = Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})
    # Then the answer is the same as for a known one, and no email goes out
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/done/"
    assert mail.outbox == []


def test_password_reset_requests_are_rate_limited_per_address_and_per_email(settings):
    # Given the limit of requests from one client address
    settings.PASSWORD_RESET_MAX_REQUESTS = 3
    client = Client()
    for n in range(3):
        assert client.post("/accounts/password/reset/", {"email": f"x{n}@example.com"}).status_code == 302
    # When the address asks once more
    refused = client.post("/accounts/password/reset/", {"email": "y@example.com"})
    # Then it gets a readable 429
    assert refused.status_code == 429 and "Too many password reset requests" in refused.content.decode()
    # And one email address asked for from many addresses is limited too
    for n in range(3):
        response = client.post("/accounts/password/reset/", {"email": "z@example.com"}, REMOTE_ADDR=f"10.1.0.{n}")
        assert response.status_code == 302
    assert (
        client.post("/accounts/password/reset/", {"email": "z@example.com"}, REMOTE_ADDR="10.2.0.9").status_code == 429
    )


def test_inviting_a_new_person_makes_their_account_and_the_link_sets_their_password():
    # Given a manager on the members card
    manager = make_user("manager")
    project = make_project(manager)
    client = Client()
    client.force_login(manager)
    # When they invite a new address as an annotator
    response = client.post(
        f"/projects/{project.id}/members/", {"invite": "1", "email": "Ann.Lee@Example.com", "role": "annotator"}
    )
    # Then an account is made, the person is a member, and an email with a one-time link goes out
    assert response.status_code == 302
    ann = User.objects.get(email__iexact="ann.lee@example.com")
    assert ann.username == "Ann.Lee" and not ann.has_usable_password()
    assert Membership.objects.get(project=project, user=ann).role == "annotator"
    (message,) = mail.outbox
    assert message.to == ["Ann.Lee@example.com"] and "Pets" in message.subject and "Ann.Lee" in message.body
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "A new account Ann.Lee" in page
    # When they follow the link and choose a password
    path = link_in(message)
    assert path.startswith("/accounts/invitation/")
    invitee = Client()
    form = invitee.get(path, follow=True)
    assert "Choose your password" in form.content.decode() and form.context["validlink"]
    done = invitee.post(form.redirect_chain[-1][0], {"new_password1": "ann-Secret-9", "new_password2": "ann-Secret-9"})
    # Then they are signed in, can log in with it, and the link works no more
    assert done.status_code == 302
    assert invitee.get(f"/projects/{project.id}/").status_code == 200
    assert can_log_in("Ann.Lee", "ann-Secret-9")
    assert not Client().get(path, follow=True).context["validlink"]


def test_the_console_backend_shows_the_link_on_the_page(settings):
    # Given emails printed to the console (the default without EMAIL_HOST)
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    manager = make_user("manager")
    project = make_project(manager)
    client = Client()
    client.force_login(manager)
    # When a manager invites someone
    client.post(f"/projects/{project.id}/members/", {"invite": "1", "email": "bo@example.com", "role": "manager"})
    # Then the page shows the one-time link to copy
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "one-time link" in page and "/accounts/invitation/" in page


def test_inviting_an_existing_user_adds_them_and_says_where_the_project_is():
    # Given a user with an address and a password
    manager = make_user("manager")
    project = make_project(manager)
    bob = make_user("bob")
    bob.email = "bob@example.com"
    bob.save()
    # When they are invited as a manager
    invitation = user_invite(
        project=project, email="BOB@example.com", role="manager", invited_by=manager, site_url="https://l.example"
    )
    # Then no account is made, they are a manager, no password link, and the email links the project
    assert not invitation.created and invitation.link is None and invitation.emailed
    assert invitation.membership.user == bob and invitation.membership.role == "manager"
    assert User.objects.count() == 2
    (message,) = mail.outbox
    assert f"https://l.example/projects/{project.id}/" in message.body and "password" not in message.body


def test_an_invitation_refuses_a_bad_address_and_changes_nothing():
    manager = make_user("manager")
    project = make_project(manager)
    for email in ("", "not-an-email", "a@b@c", "x" * 300 + "@example.com"):
        with pytest.raises(ServiceError):
            user_invite(project=project, email=email, role="annotator", invited_by=manager, site_url="http://t")
    assert User.objects.count() == 1 and mail.outbox == []
    client = Client()
    client.force_login(manager)
    response = client.post(f"/projects/{project.id}/members/", {"invite": "1", "email": "nope", "role": "annotator"})
    assert response.status_code == 302
    assert "valid email address" in client.get(f"/projects/{project.id}/").content.decode()


def test_annotators_cannot_invite():
    manager = make_user("manager")
    project = make_project(manager)
    annotator = make_user("annotator")
    membership_add(project=project, user=annotator)
    client = Client()
    client.force_login(annotator)
    response = client.post(f"/projects/{project.id}/members/", {"invite": "1", "email": "e@example.com"})
    assert response.status_code == 403 and User.objects.count() == 2 and mail.outbox == []


def test_a_member_is_added_by_username_in_any_case_or_by_email():
    # Given users, one with an address
    manager = make_user("manager")
    project = make_project(manager)
    make_user("Carol")
    dave = make_user("dave")
    dave.email = "dave@example.com"
    dave.save()
    client = Client()
    client.force_login(manager)
    # When the manager adds them by username in another case and by email address
    client.post(f"/projects/{project.id}/members/", {"username": "carol", "role": "annotator"})
    client.post(f"/projects/{project.id}/members/", {"username": "DAVE@example.com", "role": "manager"})
    client.post(f"/projects/{project.id}/members/", {"username": "nobody", "role": "annotator"})
    # Then both are members; an unknown name is a readable error
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"manager": "manager", "Carol": "annotator", "dave": "manager"}
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "No user named" in page and 'list="member-suggestions"' in page and "js/members.js" in page


def test_user_search_and_find():
    ann = make_user("ann")
    ann.first_name, ann.last_name, ann.email = "Ann", "Lee", "ann@example.com"
    ann.save()
    leo = make_user("leo")
    leo.last_name = "Annan"
    leo.save()
    make_user("bob").__class__.objects.filter(username="bob").update(is_active=False)
    make_user("annex").__class__.objects.filter(username="annex").update(is_active=False)
    assert [u.username for u in user_search(query="ann")] == ["ann", "leo"]
    assert [u.username for u in user_search(query="LEE")] == ["ann"]
    assert user_search(query="  ") == []
    assert len(user_search(query="a", limit=1)) == 1
    assert user_find(text="ANN") == ann and user_find(text="ann@EXAMPLE.com") == ann
    assert user_find(text="nobody") is None and user_find(text="") is None
