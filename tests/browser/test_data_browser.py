"""The data browser in a real browser: a confusion-matrix cell of the project page opens the items it
counts, the filters narrow the grid, an item opens large with its history and each version's guess,
its label changes (and the export says so), and several items go to review at once."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
from playwright.sync_api import Page, expect

from annotator.models import Item, Project, ReviewReason, ReviewStatus
from annotator.responses import export_response
from annotator.services.imports import items_import_uploads
from annotator.services.training import model_version_publish, training_begin, training_request
from tests.annotator.helpers import label
from tests.browser.test_keyboard_access import log_in
from tests.factories import answer_names, make_project, make_user, png_bytes


def pets_with_a_model() -> tuple[Project, list[Item]]:
    """Six images, 0-2 labeled (cat, cat, dog) by annie; version 1 guesses cat, dog, dog, cat, dog,
    cat; its confusion matrix (given x predicted) counts cat->cat 1, cat->dog 1, dog->dog 1."""
    annie = make_user("annie", can_create_projects=True)
    project = make_project(annie, name="Pets")
    files = [(f"{i}.png", io.BytesIO(png_bytes(80 + i, size=48))) for i in range(6)]
    items_import_uploads(project=project, files=files, user=annie)
    items = list(Item.objects.filter(project=project).order_by("id"))
    for item, name in zip(items, ["cat", "cat", "dog"], strict=False):
        label(item, annie, name)
    training_request(project_id=project.id)
    version = training_begin(project_id=project.id)
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1]])
    confusion = {
        "classes": ["cat", "dog"],
        "n": 3,
        "cells": [[0, 0, 1], [0, 1, 1], [1, 1, 1]],
        "precision": [1.0, 0.5],
        "recall": [0.5, 1.0],
        "support": [2, 1],
    }
    model_version_publish(
        version=version,
        item_ids=[i.id for i in items],
        probs=probs,
        scores=np.linspace(0.1, 0.6, 6),
        priorities=np.linspace(0.1, 0.6, 6),
        metrics={"val_accuracy": 0.67, "val_n": 3, "confusion": confusion},
        weights=f"models/project_{project.id}/v1.pt",
    )
    return project, items


def tile(page: Page, item: Item):
    return page.locator(f'.browse-tile[data-id="{item.id}"]')


def test_browse_filter_open_relabel_and_send_to_review(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Any
) -> None:
    # Given a project whose version 1 mistook the second cat for a dog
    project, items = pets_with_a_model()
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/")

    # When annie clicks the matrix's cell given cat, predicted dog
    page.locator('td[title="given cat, predicted dog: 1"] a').click()

    # Then the browser lists exactly that item, with its label and the model's guess
    expect(page).to_have_url(f"{live_server.url}/projects/{project.id}/items/?label=cat&predicted=dog")
    expect(page.locator("#browse-count")).to_have_text("1 item")
    expect(tile(page, items[1])).to_contain_text("cat · model: dog 0.70")

    # When she filters for unlabeled items, most confident first
    page.goto(f"{live_server.url}/projects/{project.id}/items/")
    page.get_by_label("Status").select_option("unlabeled")
    page.get_by_label("Order").select_option("-confidence")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#browse-count")).to_have_text("3 items")
    shown = [int(i) for i in page.locator(".browse-tile").evaluate_all("(tiles) => tiles.map((t) => t.dataset.id)")]
    assert shown == [items[5].id, items[4].id, items[3].id]  # 0.9, 0.6, 0.6 (the newer first on ties)
    thumb = tile(page, items[5]).locator("img")
    expect(thumb).to_have_attribute("src", re.compile(rf"^/api/items/{items[5].id}/thumbnail/\?v=\w+$"))
    assert thumb.evaluate("(img) => img.complete && img.naturalWidth") == 48

    # When she opens the first labeled item and gives it the class dog
    page.goto(f"{live_server.url}/projects/{project.id}/items/?order=id")
    tile(page, items[0]).locator(".browse-open").click()
    detail = page.locator("#browse-detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-history")).to_contain_text("annie (human) → cat")
    expect(page.locator("#detail-predictions")).to_have_text("v1: cat (0.80)")
    expect(page.locator("#detail-image")).to_have_attribute(
        "src", re.compile(rf"^/api/items/{items[0].id}/image/\?v=\w+$")
    )
    page.screenshot(path=str(artifacts / "data-browser.png"), full_page=True)
    # (→ and ← step through the page's items)
    page.keyboard.press("ArrowRight")
    expect(page.locator("#detail-info")).to_contain_text("1.png")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#detail-info")).to_contain_text("0.png")
    detail.locator('[data-class="dog"]').click()

    # Then the label is saved as hers, the old one kept as history, and the export has the new one
    expect(page.locator("#browse-status")).to_have_text("Label saved.")
    expect(page.locator("#detail-history li")).to_have_count(2)
    assert answer_names(items[0]) == ["dog"]
    csv = b"".join(export_response(project, "csv").streaming_content).decode()
    assert "0.png,dog" in csv

    # When she selects two labeled items and sends them to review
    tile(page, items[1]).locator("input[type=checkbox]").check()
    tile(page, items[2]).locator("input[type=checkbox]").check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Send to review").click()

    # Then both wait for review as a manager's choice, and the grid says so
    expect(page.locator("#browse-status")).to_have_text("Sent to review: 2 items.")
    flagged = Item.objects.filter(review_status=ReviewStatus.FLAGGED, review_reason=ReviewReason.MANUAL)
    assert set(flagged.values_list("id", flat=True)) == {items[1].id, items[2].id}
    expect(tile(page, items[1])).to_contain_text("flagged")
    # And Escape closes the item
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert js_errors == []


def test_box_projects_browse_with_their_boxes_drawn(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Any
) -> None:
    # Given a box project: one image with two boxes, one with nothing in it, one unlabeled
    from annotator.services.annotations import annotation_create

    annie = make_user("annie", can_create_projects=True)
    project = make_project(annie, name="Street", labels=["car", "person"], kind="boxes")
    files = [(f"{i}.png", io.BytesIO(png_bytes(90 + i, size=64))) for i in range(3)]
    items_import_uploads(project=project, files=files, user=annie)
    busy, empty, _ = Item.objects.filter(project=project).order_by("id").select_related("project")
    car, person = (
        {"label": "car", "x": 4, "y": 4, "w": 20, "h": 30},
        {"label": "person", "x": 30, "y": 10, "w": 30, "h": 40},
    )
    annotation_create(item=busy, user=annie, boxes=[car, person])
    annotation_create(item=empty, user=annie, boxes=[])
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/items/?order=id")

    # Then the busy image's tile draws its two boxes over the thumbnail, in the classes' colours
    rects = tile(page, busy).locator("svg.browse-boxes rect")
    expect(rects).to_have_count(2)
    assert [rects.nth(i).get_attribute("data-label") for i in range(2)] == ["car", "person"]
    expect(tile(page, busy)).to_contain_text("2 boxes: car, person")
    expect(tile(page, empty)).to_contain_text("nothing here")
    page.screenshot(path=str(artifacts / "data-browser-boxes.png"), full_page=True)

    # When the filter asks for images with nothing in them
    page.locator("select[name=boxes]").select_option("none")
    page.get_by_role("button", name="Filter").click()

    # Then only the empty one is listed; opened, it shows no boxes
    expect(page.locator("#browse-count")).to_have_text("1 item")
    expect(page.locator(".browse-tile")).to_have_count(1)
    # And the busy one, opened, draws its boxes over the large image
    page.goto(f"{live_server.url}/projects/{project.id}/items/?label=person")
    tile(page, busy).locator(".browse-open").click()
    expect(page.locator("#detail-frame svg.browse-boxes rect")).to_have_count(2)
    assert js_errors == []
