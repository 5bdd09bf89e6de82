"""The box review page (review_boxes.html, static/js/review_boxes.js) in a real browser: a manager
goes through five flagged images of a box project that two people labeled differently, keys only.
Both people's boxes are drawn, with their names, beside the item's; the second person's set is taken
with its digit and saved with Enter; a box is moved with the arrow keys and the change saved; an
image is skipped, one kept, one marked ambiguous; the page ends on "Nothing to review". Each
decision is checked in the database: the action, the status and the item's boxes, to the pixel."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import BoxRole, Item, ItemBox, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from annotator.services.projects import project_create
from tests.browser.test_keyboard_access import log_in
from tests.browser.test_label_boxes import noise_png
from tests.factories import make_user, wait_for

MANAGER, MEMBER = "maria", "bob"
NAMES = ["take.png", "edit.png", "skip.png", "keep.png", "unsure.png"]  # the order they are served in

Box = tuple[str, float, float, float, float]
#: Each person's boxes on every image: Maria's (labeled first, so the item's answer) and Bob's.
MARIA: list[Box] = [("car", 10, 10, 60, 40), ("person", 100, 20, 20, 50)]
BOB: list[Box] = [("car", 16, 14, 58, 40), ("person", 142, 24, 22, 50), ("car", 40, 62, 46, 28)]


def as_json(boxes: list[Box]) -> list[dict[str, Any]]:
    return [{"label": label, "x": x, "y": y, "w": w, "h": h} for label, x, y, w, h in boxes]


def make_flagged_project() -> tuple[Project, dict[str, Item]]:
    """A box project (car c, person p; two people per image) whose five images Maria (the manager)
    and Bob (a member) labeled differently, all flagged for their disagreement, served in NAMES' order."""
    manager, member = make_user(MANAGER), make_user(MEMBER)
    project = project_create(
        name="Streets",
        labels=[{"name": "car", "hotkey": "c"}, {"name": "person", "hotkey": "p"}],
        user=manager,
        kind="boxes",
        labels_per_item=2,
    )
    membership_add(project=project, user=member)
    files = [(name, io.BytesIO(noise_png(10 + seed))) for seed, name in enumerate(NAMES)]
    summary = items_import_uploads(project=project, files=files, user=manager)
    assert summary.imported == len(NAMES) and not summary.rejected, summary
    items = {item.original_name: item for item in Item.objects.filter(project=project)}
    for rank, name in enumerate(NAMES):
        for user, boxes in ((manager, MARIA), (member, BOB)):
            item = Item.objects.select_related("project").get(id=items[name].id)
            annotation_create(item=item, user=user, boxes=as_json(boxes))
        flagged = Item.objects.filter(id=items[name].id)
        flagged.update(review_status="flagged", review_reason="disagreement", review_score=0.1 * (rank + 1))
    return project, {name: Item.objects.get(id=item.id) for name, item in items.items()}


def item_boxes(item: Item) -> list[Box]:
    """The item's boxes (its answer), sorted."""
    rows = ItemBox.objects.filter(item_id=item.id, role=BoxRole.CONSENSUS).select_related("label_class")
    return sorted((b.label_class.name, b.x, b.y, b.w, b.h) for b in rows)


def decision(item: Item) -> tuple[str, str]:
    fresh = Item.objects.get(id=item.id)
    return fresh.review_action, fresh.review_status


def test_review_box_disagreements_with_keys_only(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given five flagged images, each with Maria's two boxes (the item's answer) and Bob's three
    project, items = make_flagged_project()
    first = items["take.png"]
    assert item_boxes(first) == sorted(MARIA)
    assert first.agreement is not None and first.agreement < 1, first.agreement

    # When Maria opens the project's review page
    log_in(page, live_server.url, MANAGER, f"/projects/{project.id}/review/")

    # Then the first flagged image shows, with why it was flagged and how far the two agreed
    expect(page.locator("body")).to_have_class("labeling labeling-boxes review-boxes")
    expect(page.locator("#item-name")).to_have_text("take.png")
    expect(page.locator("#reason")).to_have_text("annotators disagreed")
    expect(page.locator("#agreement")).to_have_text(f"{round(first.agreement * 100)}%")
    expect(page.locator("#people-n")).to_have_text("between 2 people")
    # And the item's two boxes, solid and editable, listed as unchanged
    expect(page.locator(".box-layer .box")).to_have_count(2)
    expect(page.locator("#box-list li")).to_have_count(2)
    expect(page.locator("#box-list li").first).to_contain_text("unchanged")
    expect(page.locator("#editing")).to_have_text("The item's 2 boxes: Enter keeps them.")
    # And each person's boxes as a layer of their own, named in the image and in the list, with their key
    expect(page.locator(".box-layer .box-layer-set")).to_have_count(2)
    expect(page.locator(".box-layer [data-layer='0'] .layer-box")).to_have_count(2)
    expect(page.locator(".box-layer [data-layer='1'] .layer-box")).to_have_count(3)
    tags = page.locator(".box-layer .layer-tag text").all_text_contents()
    assert sorted(tags) == sorted(
        [f"maria: {label}" for label, *_ in MARIA] + [f"bob: {label}" for label, *_ in BOB]
    ), tags
    people = page.locator("#people li")
    expect(people).to_have_count(2)
    expect(people.nth(0)).to_contain_text("maria")
    expect(people.nth(0)).to_contain_text("2 boxes")
    expect(people.nth(1)).to_contain_text("bob")
    expect(people.nth(1)).to_contain_text("3 boxes")
    expect(people.nth(1).locator("kbd")).to_have_text("2")
    page.screenshot(path=str(artifacts / "review-boxes.png"))
    # And ? lists the page's keys and the editor's
    page.keyboard.press("?")
    expect(page.locator("#help-keys")).to_contain_text("Keep the item's answer")
    expect(page.locator("#help-keys")).to_contain_text("Mark ambiguous")
    expect(page.locator("#help-more-keys")).to_contain_text("1–9")
    expect(page.locator("#help-more-keys")).to_contain_text("Alt+Arrows")
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    # When 2 takes Bob's boxes into the editor
    page.keyboard.press("2")

    # Then his three boxes are the ones to save, his layer drawn by the editor, Maria's still beside
    expect(page.locator(".box-layer .box")).to_have_count(3)
    expect(page.locator("#people li.taken")).to_have_attribute("data-name", "bob")
    expect(page.locator(".box-layer .box-layer-set")).to_have_count(1)
    expect(page.locator("#editing")).to_have_text("bob's 3 boxes: Enter saves them as the answer.")
    page.screenshot(path=str(artifacts / "review-boxes-taken.png"))

    # When Enter saves them
    page.keyboard.press("Enter")

    # Then the next image shows, and Bob's boxes are the first image's answer, a change by review
    expect(page.locator("#item-name")).to_have_text("edit.png")
    wait_for(lambda: decision(first) == ("change", "reviewed"), 10, "the change to Bob's boxes")
    assert item_boxes(first) == sorted(BOB)

    # When Tab selects the first box (Maria's car), the arrows move it 3 px right and 10 down, and Enter saves
    page.keyboard.press("Tab")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-index", "0")
    for key in ("ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowDown"):
        page.keyboard.press(key)
    expect(page.locator("#box-list li.selected .box-size")).to_have_text("60×40 at 13, 20")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-state", "moved")
    expect(page.locator("#editing")).to_have_text("Edited: Enter saves these 2 boxes as the answer.")
    page.screenshot(path=str(artifacts / "review-boxes-edited.png"))
    page.keyboard.press("Enter")

    # Then the moved box is stored where it was put, to the pixel, the other as it was
    expect(page.locator("#item-name")).to_have_text("skip.png")
    edited = items["edit.png"]
    wait_for(lambda: decision(edited) == ("change", "reviewed"), 10, "the edited boxes")
    assert item_boxes(edited) == sorted([("car", 13, 20, 60, 40), ("person", 100, 20, 20, 50)])

    # When S skips an image, K keeps the next, and A marks the last ambiguous
    page.keyboard.press("s")
    expect(page.locator("#item-name")).to_have_text("keep.png")
    page.keyboard.press("k")
    expect(page.locator("#item-name")).to_have_text("unsure.png")
    page.keyboard.press("a")

    # Then nothing is left to review
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_contain_text("Nothing to review")
    # And the kept image has its answer as it was, the ambiguous one is marked, the skipped one still flagged
    wait_for(lambda: decision(items["keep.png"]) == ("keep", "reviewed"), 10, "the keep")
    assert item_boxes(items["keep.png"]) == sorted(MARIA)
    wait_for(lambda: decision(items["unsure.png"]) == ("ambiguous", "ambiguous"), 10, "the ambiguous mark")
    assert decision(items["skip.png"]) == ("", "flagged")
    assert item_boxes(items["skip.png"]) == sorted(MARIA)
    expect(page.locator("#count-changed")).to_have_text("2")
    expect(page.locator("#count-flagged")).to_have_text("1")
    assert not js_errors, js_errors
