"""The box labeling page (label_boxes.html, static/js/boxes.js) in a real browser: boxes drawn by
dragging on the image (the mouse placed through the viewer's own mapping, so that each point is an
exact image pixel), a class changed by its key, a box nudged and resized with the arrow keys, one
deleted, a mis-click that draws nothing; the boxes following the zoom, Space + drag and the middle
button panning; the model's suggested boxes accepted with Enter (one with A, one rejected with X,
one dragged elsewhere); "nothing here" with N; and undo bringing the last image back with its
boxes. Each answer is checked in the database: every box's coordinates, to the pixel, its class and
its outcome, and the time spent on the image."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

from annotator.models import Annotation, AnnotationBox, BoxRole, Item, ItemBox, Project
from annotator.services.imports import items_import_uploads
from annotator.services.projects import project_create
from tests.browser.labeling import press, shown_after
from tests.browser.test_keyboard_access import log_in
from tests.factories import make_user, wait_for

WIDTH, HEIGHT = 200, 100
USERNAME = "boxer"

#: The crosshair's two lines: [shown, x1, y1] each (a line has no area, so Playwright calls it hidden).
CROSSHAIR = """() => Array.from(document.querySelectorAll(".box-layer .crosshair"), (line) =>
  [line.style.display !== "none", Number(line.getAttribute("x1")), Number(line.getAttribute("y1"))])"""


def noise_png(seed: int) -> bytes:
    """A WIDTH x HEIGHT image of soft colour blobs, distinct for each seed (a calm background for boxes)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, size=(5, 10, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_boxes_project() -> tuple[Project, dict[str, Item]]:
    """A box project with the classes car (c) and person (p), and three images served in the order
    nothing.png, suggested.png, drawn.png (their priorities); nothing.png has one pre-box, suggested.png four."""
    user = make_user(USERNAME)
    project = project_create(
        name="Streets",
        labels=[{"name": "car", "hotkey": "c"}, {"name": "person", "hotkey": "p"}],
        user=user,
        kind="boxes",
    )
    names = ["nothing.png", "suggested.png", "drawn.png"]
    files = [(name, io.BytesIO(noise_png(seed))) for seed, name in enumerate(names)]
    summary = items_import_uploads(project=project, files=files, user=user)
    assert summary.imported == 3 and not summary.rejected, summary
    items = {item.original_name: item for item in Item.objects.filter(project=project)}
    for priority, name in zip([0.9, 0.8, 0.7], names, strict=True):
        Item.objects.filter(id=items[name].id).update(priority=priority)
    car = project.classes.get(name="car")
    person = project.classes.get(name="person")
    predicted = [
        (items["nothing.png"], car, (120, 40, 50, 30), 0.7),
        (items["suggested.png"], car, (10, 10, 60, 40), 0.9),
        (items["suggested.png"], person, (100, 20, 20, 50), 0.8),
        (items["suggested.png"], car, (140, 60, 40, 30), 0.75),
        (items["suggested.png"], person, (20, 55, 30, 40), 0.95),
    ]
    for item, label_class, (x, y, w, h), confidence in predicted:
        ItemBox.objects.create(
            item=item, role=BoxRole.PREDICTED, label_class=label_class, x=x, y=y, w=w, h=h, confidence=confidence
        )
    return project, items


def on_screen(page: Page, x: float, y: float) -> tuple[float, float]:
    """The client point of the image pixel (x, y), as the page's own viewer maps it."""
    point = page.evaluate("([x, y]) => document.getElementById('stage-frame').imageViewer.toClient(x, y)", [x, y])
    return point["x"], point["y"]


def viewer_at(page: Page) -> dict[str, float]:
    """Where the viewer has the image: its top-left corner, in pixels from the frame's."""
    return page.evaluate(
        "() => { const v = document.getElementById('stage-frame').imageViewer; return {x: v.x, y: v.y}; }"
    )


def drag(page: Page, start: tuple[float, float], end: tuple[float, float], shift: bool = False) -> None:
    """A mouse drag from one image pixel to another."""
    a, b = on_screen(page, *start), on_screen(page, *end)
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
    page.mouse.move(*b, steps=4)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def listed(page: Page) -> list[dict[str, Any]]:
    """The boxes the page lists beside the image: class, state, and the shown size and place."""
    rows = page.locator("#box-list li")
    return [
        {"label": row.get_attribute("data-label"), "state": row.get_attribute("data-state"), "text": row.inner_text()}
        for row in rows.all()
    ]


def stored(item: Item) -> tuple[Annotation, list[tuple[str, float, float, float, float, str, float | None]]]:
    """The item's active annotation and its boxes: (class, x, y, w, h, outcome, confidence), in the order sent."""
    annotation = Annotation.objects.get(item=item, active=True)
    rows = AnnotationBox.objects.filter(annotation=annotation).select_related("label_class").order_by("id")
    return annotation, [(b.label_class.name, b.x, b.y, b.w, b.h, b.outcome, b.confidence) for b in rows]


def assert_boxes(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Each box as expected: the class, outcome and confidence exactly, the coordinates within a pixel."""
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, expected, strict=True):
        assert (g[0], g[5]) == (e[0], e[5]), (g, e)
        assert all(abs(a - b) <= 1 for a, b in zip(g[1:5], e[1:5], strict=True)), (g, e)
        assert (g[6] is None) == (e[6] is None) and (e[6] is None or abs(g[6] - e[6]) < 1e-6), (g, e)


def test_draw_edit_accept_reject_nothing_and_undo(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a box project with three images, the second with three suggested boxes
    base = live_server.url
    project, items = make_boxes_project()
    path = f"/projects/{project.id}/label/"

    # When the annotator opens its labeling page
    log_in(page, base, USERNAME, path)
    first = shown_after(page, 0)
    page.wait_for_function("() => document.getElementById('item-image').naturalWidth > 0")

    # Then the box page shows the first image, fitted, the viewer mapping image pixels both ways
    assert first["id"] == items["nothing.png"].id
    expect(page.locator("body")).to_have_class("labeling labeling-boxes")
    corner = on_screen(page, WIDTH, HEIGHT)
    back = page.evaluate("([x, y]) => document.getElementById('stage-frame').imageViewer.toImage(x, y)", list(corner))
    assert abs(back["x"] - WIDTH) < 0.01 and abs(back["y"] - HEIGHT) < 0.01, back
    scale = page.evaluate("() => document.getElementById('stage-frame').imageViewer.scale")
    assert scale > 2, scale  # a 200 x 100 image is shown large
    # And its one suggested box is listed, dashed, with its confidence
    assert [(b["label"], b["state"]) for b in listed(page)] == [("car", "suggested")]
    expect(page.locator(".box-layer .box.suggested")).to_have_count(1)
    expect(page.locator(".box-layer .box-tag text")).to_have_text("car 70%")
    expect(page.locator("#prelabel")).to_contain_text("suggests 1 box")
    # And the help lists the mouse gestures and the keys without a button of their own
    page.keyboard.press("?")
    expect(page.locator("#help-keys")).to_contain_text("Nothing here")
    for gesture in ("Shift+Drag", "Alt+Arrows", "Space+Drag", "Wheel"):
        expect(page.locator("#help-more-keys")).to_contain_text(gesture)
    page.screenshot(path=str(artifacts / "label-boxes-help.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    # When the image is zoomed in (+), then panned with Space + drag and with the middle button
    page.keyboard.press("+")
    expect(page.locator("#stage-frame")).to_have_class(re.compile(r"\bzoomed\b"))
    at = viewer_at(page)
    page.keyboard.down(" ")
    drag(page, (100, 50), (90, 45))
    page.keyboard.up(" ")
    panned = viewer_at(page)
    middle = on_screen(page, 100, 50)
    page.mouse.move(*middle)
    page.mouse.down(button="middle")
    page.mouse.move(middle[0] + 30, middle[1] + 20, steps=3)
    page.mouse.up(button="middle")

    # Then the image moved each time and no box was drawn, and the box follows the zoom and the pan
    after = viewer_at(page)
    assert panned["x"] < at["x"] and panned["y"] < at["y"], (at, panned)
    assert after["x"] > panned["x"] and after["y"] > panned["y"], (panned, after)
    expect(page.locator("#box-list li")).to_have_count(1)
    rect = page.locator(".box-layer .box-rect").bounding_box()
    assert rect is not None
    left, top = on_screen(page, 120, 40)
    right, bottom = on_screen(page, 170, 70)
    assert abs(rect["x"] - left) <= 1 and abs(rect["y"] - top) <= 1, (rect, left, top)
    assert abs(rect["x"] + rect["width"] - right) <= 1 and abs(rect["y"] + rect["height"] - bottom) <= 1, rect
    page.keyboard.press("=")
    expect(page.locator("#stage-frame")).not_to_have_class(re.compile(r"\bzoomed\b"))

    # When N says "nothing here"
    shown = press(page, "n")

    # Then the suggestion is stored rejected, as history, and the image is labeled with no boxes
    assert shown["id"] == items["suggested.png"].id
    wait_for(lambda: Annotation.objects.filter(item=items["nothing.png"], active=True).exists(), 15, "nothing here")
    annotation, got = stored(items["nothing.png"])
    assert_boxes(got, [("car", 120, 40, 50, 30, "rejected", 0.7)])
    assert annotation.duration_ms is not None and annotation.duration_ms > 0
    nothing = Item.objects.get(id=items["nothing.png"].id)
    assert nothing.status == Item.Status.LABELED
    assert not ItemBox.objects.filter(item=nothing, role=BoxRole.CONSENSUS).exists()

    # When, on the second image, Tab selects the first suggestion and A accepts it, X rejects the
    # next one (selected after the accept), and the one then selected is dragged 10 px left, 5 up
    expect(page.locator(".box-layer .box.suggested")).to_have_count(4)
    page.keyboard.press("Tab")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-index", "0")
    page.keyboard.press("a")
    expect(page.locator("#box-list li").nth(0)).to_have_attribute("data-state", "accepted")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-label", "person")
    page.keyboard.press("x")
    expect(page.locator("#box-list li")).to_have_count(3)
    expect(page.locator("#box-summary")).to_contain_text("1 suggested box rejected")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-index", "1")
    drag(page, (160, 75), (150, 70))
    expect(page.locator("#box-list li").nth(1)).to_have_attribute("data-state", "moved")
    page.screenshot(path=str(artifacts / "label-boxes-suggestions.png"))
    # And Enter saves, the suggestion left as it was accepted
    shown = press(page, "Enter")

    # Then each box is stored with how it came to be and the suggestion's confidence
    assert shown["id"] == items["drawn.png"].id
    wait_for(lambda: Annotation.objects.filter(item=items["suggested.png"], active=True).exists(), 15, "the boxes")
    annotation, got = stored(items["suggested.png"])
    assert_boxes(
        got,
        [
            ("car", 10, 10, 60, 40, "accepted", 0.9),
            ("car", 130, 55, 40, 30, "moved", 0.75),
            ("person", 20, 55, 30, 40, "accepted", 0.95),
            ("person", 100, 20, 20, 50, "rejected", 0.8),
        ],
    )
    assert annotation.duration_ms is not None and annotation.duration_ms > 0

    # When, on the third image (no suggestions), a click on the image draws nothing
    expect(page.locator("#prelabel")).to_contain_text("No suggested boxes")
    page.mouse.click(*on_screen(page, 100, 50))
    expect(page.locator("#box-list li")).to_have_count(0)
    # And a drag draws a car (the first class), which P makes a person while it is selected
    drag(page, (20, 20), (60, 50))
    expect(page.locator("#box-list li")).to_have_count(1)
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-label", "car")
    page.keyboard.press("p")
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-label", "person")
    # And with nothing selected (Esc), C makes car the class of the next box, drawn from right to left
    page.keyboard.press("Escape")
    expect(page.locator("#box-list li.selected")).to_have_count(0)
    page.keyboard.press("c")
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_attribute("data-label", "car")
    drag(page, (150, 70), (100, 30))
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-label", "car")
    # And the arrow keys resize it (Alt: the right edge 10 px out, the bottom edge 2 px down) and nudge it
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowUp")
    expect(page.locator("#box-list li.selected .box-size")).to_have_text("60×42 at 99, 20")
    # And Shift+drag draws a third box starting over the second, which Delete removes
    drag(page, (120, 40), (180, 90), shift=True)
    expect(page.locator("#box-list li")).to_have_count(3)
    expect(page.locator("#box-list li.selected")).to_have_attribute("data-index", "2")
    # And the crosshair follows the pointer: a line each way through it
    page.mouse.move(*on_screen(page, 175, 85))
    lines = page.evaluate(CROSSHAIR)
    assert [shown for shown, _, _ in lines] == [True, True], lines
    assert abs(lines[0][2] - 85) < 0.5 and abs(lines[1][1] - 175) < 0.5, lines
    page.screenshot(path=str(artifacts / "label-boxes.png"))
    page.keyboard.press("Delete")
    expect(page.locator("#box-list li")).to_have_count(2)
    expect(page.locator("#box-summary")).to_have_text("")
    # And Enter saves the two boxes; nothing is left to label
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()

    # Then both are stored as drawn, in image pixels, with the time spent on the image
    drawn_item = items["drawn.png"]
    wait_for(lambda: Annotation.objects.filter(item=drawn_item, active=True).exists(), 15, "the drawn boxes")
    annotation, got = stored(drawn_item)
    expected = [("person", 20, 20, 40, 30, "drawn", None), ("car", 99, 20, 60, 42, "drawn", None)]
    assert_boxes(got, expected)
    assert annotation.duration_ms is not None and annotation.duration_ms > 0
    first_answer = annotation.id

    # When Z undoes that save
    shown = press(page, "z")

    # Then the image comes back with its two boxes, and its answer is history
    assert shown["id"] == drawn_item.id
    assert [(b["label"], b["state"]) for b in listed(page)] == [("person", "drawn"), ("car", "drawn")]
    expect(page.locator(".box-layer .box")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("Undid the boxes of drawn.png")
    assert not Annotation.objects.filter(item=drawn_item, active=True).exists()
    assert Item.objects.get(id=drawn_item.id).status == Item.Status.UNLABELED
    page.screenshot(path=str(artifacts / "label-boxes-undone.png"))

    # When Enter saves them again
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()

    # Then the same boxes are the image's answer again
    wait_for(lambda: Annotation.objects.filter(item=drawn_item, active=True).exists(), 15, "the boxes saved again")
    annotation, got = stored(drawn_item)
    assert annotation.id != first_answer
    assert_boxes(got, expected)
    consensus = ItemBox.objects.filter(item=drawn_item, role=BoxRole.CONSENSUS).order_by("x")
    assert [b.label_class.name for b in consensus] == ["person", "car"]
    assert Item.objects.filter(project=project, status=Item.Status.LABELED).count() == 3
    assert not js_errors, js_errors
