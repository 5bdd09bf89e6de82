"""The "New project" form in a real browser: every option the API has, with a hint of when to pick
which model, creates the project asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Project
from tests.browser.test_keyboard_access import log_in
from tests.factories import make_user


def test_a_multi_label_pretrained_project_from_the_form(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    make_user("lead", can_create_projects=True)
    log_in(page, live_server.url, "lead", "/")
    field = lambda name: page.locator(f'form.grid-form [name="{name}"]')  # noqa: E731
    field("name").fill("Street scenes")
    field("labels").fill("car, bike, person")
    field("kind").select_option("multi_label")
    field("model_family").select_option("pretrained")
    expect(page.get_by_text("Pretrained backbone: photos")).to_be_visible()
    field("labels_per_item").fill("2")
    page.screenshot(path=str(artifacts / "new-project-form.png"), full_page=True)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Street scenes").first).to_be_visible()
    project = Project.objects.get(name="Street scenes")
    assert (project.kind, project.model_family, project.labels_per_item) == ("multi_label", "pretrained", 2)
    assert project.show_prelabels and list(project.classes.values_list("name", flat=True)) == ["car", "bike", "person"]
    assert js_errors == []
