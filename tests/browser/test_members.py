"""The members card in a real browser: "Add user" suggests people by name as the manager types, and
adds the one picked."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from annotator.models import Membership
from tests.browser.test_keyboard_access import log_in
from tests.factories import make_project, make_user


def test_add_user_suggests_people_by_name(live_server: Any, page: Page, js_errors: list[str]) -> None:
    # Given a manager's project and a user known by her full name
    manager = make_user("lead")
    project = make_project(manager)
    get_user_model().objects.create_user(username="alee", first_name="Annabel", last_name="Lee", email="al@example.com")
    log_in(page, live_server.url, "lead", f"/projects/{project.id}/")
    # When the manager types the start of her first name
    field = page.locator("#member-add-form input[name=username]")
    field.press_sequentially("annab", delay=30)
    # Then the suggestions offer her username, with her name
    option = page.locator("#member-suggestions option[value=alee]")
    expect(option).to_have_count(1)
    assert "Annabel Lee" in (option.get_attribute("label") or "")
    # And picking it adds her
    field.fill("alee")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator('tr[data-member="alee"]')).to_be_visible()
    assert Membership.objects.get(project=project, user__username="alee").role == "annotator"
    assert js_errors == []
