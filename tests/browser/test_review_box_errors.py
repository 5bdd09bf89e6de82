"""The box review page with a scan's likely box errors (review_boxes.html, static/js/review_boxes.js)
in a real browser: the image flagged for its boxes shows the given boxes solid, the scan's
suggested boxes as a layer of their own tagged with the error each shows, the errors named under
the verdict; the scan's digit takes its boxes into the editor and Enter saves them as the answer."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.kinds.boxes import CheckedBox
from annotator.models import BoxRole, Item, ItemBox
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.projects import project_create
from annotator.services.review import SuggestedBox, review_flags_publish
from tests.browser.test_keyboard_access import log_in
from tests.browser.test_label_boxes import noise_png
from tests.factories import make_user, wait_for

MANAGER = "maria"


def test_review_shows_the_scans_suggested_boxes_and_takes_them(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a box image Maria labeled with a car that is a person, and a person left unboxed, which
    # a scan flagged with its suggested boxes
    manager = make_user(MANAGER)
    project = project_create(
        name="Streets",
        labels=[{"name": "car", "hotkey": "c"}, {"name": "person", "hotkey": "p"}],
        user=manager,
        kind="boxes",
    )
    summary = items_import_uploads(project=project, files=[("street.png", io.BytesIO(noise_png(3)))], user=manager)
    assert summary.imported == 1
    item = Item.objects.select_related("project").get(project=project)
    annotation_create(item=item, user=manager, boxes=[{"label": "car", "x": 10, "y": 10, "w": 40, "h": 60}])
    ids = dict(project.classes.values_list("name", "id"))
    suggested = [
        SuggestedBox(CheckedBox(ids["person"], 11, 10, 40, 60, confidence=0.9), "wrong_class"),
        SuggestedBox(CheckedBox(ids["person"], 120, 30, 30, 70, confidence=0.8), "unboxed"),
    ]
    review_flags_publish(
        project_id=project.id,
        item_ids=[item.id],
        answers=[(ids["car"],)],
        quality=[0.1],
        suggested=[(ids["person"],)],
        confidence=[0.9],
        flagged=[item.id],
        suggested_boxes=[suggested],
    )

    # When Maria opens the review
    log_in(page, live_server.url, MANAGER, f"/projects/{project.id}/review/")

    # Then the image is flagged for its boxes, the errors named, the given box solid and the scan's two beside it
    expect(page.locator("#item-name")).to_have_text("street.png")
    expect(page.locator("#reason")).to_have_text("likely box error")
    expect(page.locator("#issues")).to_have_text(
        "The scan: a box likely of the wrong class (the scan sees “person”); a “person” likely left unboxed."
    )
    expect(page.locator(".box-layer .box")).to_have_count(1)
    tags = page.locator(".box-layer .layer-tag text").all_text_contents()
    assert sorted(tags) == ["maria: car", "unboxed?: person", "wrong class?: person"], tags
    people = page.locator("#people li")
    expect(people).to_have_count(2)
    expect(people.nth(1)).to_contain_text("the scan")
    expect(people.nth(1)).to_contain_text("2 boxes")
    expect(people.nth(1).locator("kbd")).to_have_text("2")
    page.screenshot(path=str(artifacts / "review-box-errors.png"))

    # When 2 takes the scan's boxes into the editor and Enter saves them
    page.keyboard.press("2")
    expect(page.locator(".box-layer .box")).to_have_count(2)
    expect(page.locator("#editing")).to_have_text("the scan's 2 boxes: Enter saves them as the answer.")
    page.keyboard.press("Enter")

    # Then they are the image's answer, a change by review
    wait_for(lambda: Item.objects.get(id=item.id).review_action == "change", 10, "the change to the scan's boxes")
    rows = ItemBox.objects.filter(item=item, role=BoxRole.CONSENSUS).order_by("x")
    assert list(rows.values_list("label_class__name", "x", "y", "w", "h")) == [
        ("person", 11, 10, 40, 60),
        ("person", 120, 30, 30, 70),
    ]
    assert not js_errors
