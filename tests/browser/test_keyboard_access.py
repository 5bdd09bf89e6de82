"""Keyboard and accessibility on the labeling and review pages, in a real browser: chosen class
buttons say so with aria-pressed, the help dialog takes focus, keeps it and gives it back, and
Escape and the zoom keys are the keymap's actions like every other key."""

from __future__ import annotations

import io
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Annotation, Item
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.review import review_flags_publish
from tests.factories import make_project, make_user, png_bytes, wait_for

#: Run after the page's scripts: records every action the keymap runs (a key or a click on its button).
ACTION_SPY = """() => {
  window.__actions = [];
  const run = Keymap.prototype.run;
  Keymap.prototype.run = function (action, el, event) {
    window.__actions.push(action);
    return run.call(this, action, el, event);
  };
}"""


def log_in(page: Page, base: str, username: str, path: str) -> None:
    page.goto(f"{base}/accounts/login/?next={path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{path}")


def pressed(page: Page) -> dict[str, str]:
    """Each class button's aria-pressed, by class name."""
    buttons = page.locator(".class-button")
    return {b.get_attribute("data-label"): b.get_attribute("aria-pressed") for b in buttons.all()}


def focus_is_in_help(page: Page) -> bool:
    return page.evaluate("document.getElementById('help').contains(document.activeElement)")


def test_chosen_classes_are_pressed_buttons_on_the_labeling_page(
    live_server: Any, page: Page, js_errors: list[str]
) -> None:
    # Given a multi-label project with an image to label, and a single-label one with two
    user = make_user("annie")
    scenes = make_project(user, name="Scenes", labels=["cat", "dog", "outdoor"], multi_label=True)
    items_import_uploads(project=scenes, files=[("s.png", io.BytesIO(png_bytes(1)))], user=user)
    pets = make_project(user, name="Pets", labels=["cat", "dog"])
    files = [(f"p{i}.png", io.BytesIO(png_bytes(10 + i))) for i in range(2)]
    items_import_uploads(project=pets, files=files, user=user)

    # When the multi-label page shows its item, no class is pressed; a key presses its class, again releases it
    log_in(page, live_server.url, "annie", f"/projects/{scenes.id}/label/")
    expect(page.locator("#item-image")).to_be_visible()
    assert pressed(page) == {"cat": "false", "dog": "false", "outdoor": "false"}
    page.keyboard.press("3")
    page.keyboard.press("1")
    expect(page.locator('.class-button[data-label="outdoor"]')).to_have_attribute("aria-pressed", "true")
    assert pressed(page) == {"cat": "true", "dog": "false", "outdoor": "true"}
    page.keyboard.press("1")
    assert pressed(page) == {"cat": "false", "dog": "false", "outdoor": "true"}
    page.get_by_role("button", name="dog").click()
    assert pressed(page) == {"cat": "false", "dog": "true", "outdoor": "true"}

    # When a single-label item is labeled dog and Backspace brings it back, its dog button is the pressed one
    page.goto(f"{live_server.url}/projects/{pets.id}/label/")
    expect(page.locator("#item-image")).to_be_visible()
    first = page.locator("#item-image").get_attribute("data-item")
    page.keyboard.press("2")
    expect(page.locator("#item-image")).not_to_have_attribute("data-item", first)
    assert pressed(page) == {"cat": "false", "dog": "false"}
    page.keyboard.press("Backspace")
    expect(page.locator("#item-image")).to_have_attribute("data-item", first)
    expect(page.locator("#revising")).to_be_visible()
    assert pressed(page) == {"cat": "false", "dog": "true"}
    wait_for(lambda: Annotation.objects.filter(item_id=int(first), classes__name="dog").exists(), 15, "the label")
    assert js_errors == []


def test_help_dialog_takes_keeps_and_returns_focus_and_escape_and_zoom_are_keymap_actions(
    live_server: Any, page: Page, js_errors: list[str]
) -> None:
    # Given the labeling page of a project with a 24 px image, with the keymap's actions recorded
    user = make_user("annie")
    project = make_project(user)
    items_import_uploads(project=project, files=[("a.png", io.BytesIO(png_bytes(3)))], user=user)
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/label/")
    expect(page.locator("#item-image")).to_be_visible()
    page.evaluate(ACTION_SPY)
    dialog = page.locator("#help")

    # When the Keys button is clicked, the dialog opens and has the focus
    keys = page.get_by_role("button", name="Keys")
    keys.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_be_focused()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_have_attribute("aria-modal", "true")

    # Then Tab and Shift+Tab keep the focus inside it, and focusing something behind it brings it back
    for key in ("Tab", "Tab", "Shift+Tab"):
        page.keyboard.press(key)
        assert focus_is_in_help(page), key
    page.evaluate("document.querySelector('[data-action=skip]').focus()")
    assert focus_is_in_help(page)

    # When Escape is pressed, the keymap closes it and the focus is back on the Keys button
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(keys).to_be_focused()
    assert page.evaluate("window.__actions") == ["help", "close-help"]

    # And ? opens it from the keyboard, ? closes it, Escape with nothing open does nothing
    keys.blur()
    page.keyboard.press("?")
    expect(dialog).to_be_focused()
    page.keyboard.press("?")
    expect(dialog).to_be_hidden()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # When + is pressed twice the image grows 1.5× each time, - steps back, = fits it again, - stops at the fit
    frame, image = page.locator("#stage-frame"), page.locator("#item-image")

    def width() -> float:
        return image.evaluate("i => i.getBoundingClientRect().width")

    fit = width()
    for key, factor, zoomed in [
        ("+", 1.5, True),
        ("+", 2.25, True),
        ("-", 1.5, True),
        ("=", 1, False),
        ("-", 1, False),
    ]:
        page.keyboard.press(key)
        expect(frame).to_have_class("stage-frame zoomed" if zoomed else "stage-frame")
        assert abs(width() - fit * factor) <= 1, (key, width(), fit)
    actions = page.evaluate("window.__actions")
    assert actions[2:] == ["help", "help", "close-help", "zoom-in", "zoom-in", "zoom-out", "zoom-fit", "zoom-out"]
    assert not Item.objects.exclude(status=Item.Status.UNLABELED).exists()  # none of these keys labeled anything
    assert js_errors == []


def test_review_page_presses_the_given_label_and_its_help_returns_focus(
    live_server: Any, page: Page, js_errors: list[str]
) -> None:
    # Given a flagged item labeled cat that the model calls dog
    manager = make_user("manager")
    project = make_project(manager)
    items_import_uploads(project=project, files=[("a.png", io.BytesIO(png_bytes(5)))], user=manager)
    item = Item.objects.get(project=project)
    annotation_create(item=item, user=manager, label="cat")
    review_flags_publish(
        project_id=project.id,
        item_ids=[item.id],
        answers=[(project.classes.get(name="cat").id,)],
        quality=[0.1],
        suggested=[(project.classes.get(name="dog").id,)],
        confidence=[0.9],
        flagged=[item.id],
    )

    # When the manager opens the review page, the given label's button is the pressed one
    log_in(page, live_server.url, "manager", f"/projects/{project.id}/review/")
    expect(page.locator("#given")).to_have_text("cat")
    assert pressed(page) == {"cat": "true", "dog": "false"}

    # And the help dialog takes the focus, Escape closes it and gives the focus back
    keys = page.get_by_role("button", name="Keys")
    keys.focus()
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()
    expect(keys).to_be_focused()
    assert js_errors == []
