"""The project's instructions on the labeling page: shown by themselves on a first visit and when
they change, behind the ! key after that, holding the keyboard while open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Annotation
from annotator.services.projects import project_settings_update
from tests.browser.labeling import log_in, make_digits_project, open_labeling, press, shown_after
from tests.factories import wait_for


def test_instructions_show_on_a_first_visit_and_behind_the_key(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a project whose manager wrote instructions with Markdown and a raw script in them
    digits = make_digits_project(8)
    text = "# How to label\n\n- press the **digit** you see\n- skip blurred ones\n\n<script>window.__ran = 1</script>"
    project_settings_update(project=digits.project, instructions=text)
    base = live_server.url
    log_in(page, base)

    # When an annotator opens the labeling page for the first time
    first = open_labeling(page, base, digits.project)["id"]
    dialog = page.locator("#instructions")
    # Then the instructions show, rendered, the script as text (never run), and the dialog has the focus
    expect(dialog).to_be_visible()
    expect(dialog.locator("h1")).to_have_text("How to label")
    expect(dialog.locator("strong")).to_have_text("digit")
    expect(dialog).to_contain_text("<script>window.__ran = 1</script>")
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("document.activeElement.id") == "instructions"
    page.screenshot(path=artifacts / "instructions.png")
    # And a class key does not label behind them
    page.keyboard.press("3")
    page.wait_for_timeout(300)
    assert not Annotation.objects.exists()
    # When ! closes them, the key labels
    page.keyboard.press("!")
    expect(dialog).to_be_hidden()
    assert press(page, "3")["id"] != first
    wait_for(lambda: Annotation.objects.filter(item_id=first).exists(), 15, "the label")

    # When the page is opened again, they stay closed, and ! shows them (Escape closes)
    page.reload()
    shown_after(page, 0)
    expect(dialog).to_be_hidden()
    page.keyboard.press("!")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # When the manager changes the instructions, the next visit shows them again by itself
    project_settings_update(project=digits.project, instructions=text + "\n\nAlso: 7s have a bar.")
    page.reload()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Also: 7s have a bar.")
    page.get_by_role("button", name="Got it").click()
    expect(dialog).to_be_hidden()
    assert js_errors == []
