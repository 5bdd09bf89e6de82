"""The image viewer (static/js/viewer.js) in a real browser, on the labeling and the review page alike:
the wheel zooms at the pointer (the image pixel under it stays under it), a drag pans, the pan is
clamped so that the image never leaves the frame, = fits, 1:1 (button and *) shows the natural size,
the brightness and contrast sliders filter the image and stay for the next one, which is fitted again."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

from annotator.models import Item
from annotator.selectors.answers import item_answers
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.projects import project_create
from annotator.services.review import review_flags_publish
from tests.browser.labeling import USERNAME, log_in, log_in_at, open_labeling, press
from tests.factories import make_project, make_user

WIDTH, HEIGHT = 160, 96  # wider than tall, unlike the frame: the fit leaves a margin above and below

#: The frame's padding box and the image's box on screen, in client pixels.
BOXES = """() => {
  const frame = document.getElementById("stage-frame"), img = document.getElementById("item-image");
  const f = frame.getBoundingClientRect(), r = img.getBoundingClientRect();
  const left = f.left + frame.clientLeft, top = f.top + frame.clientTop;
  return {
    frame: { left, top, right: left + frame.clientWidth, bottom: top + frame.clientHeight },
    image: { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height },
    natural: [img.naturalWidth, img.naturalHeight],
    filter: img.style.filter,
    cursor: getComputedStyle(frame).cursor,
  };
}"""


def noise_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def boxes(page: Page) -> dict[str, Any]:
    return page.evaluate(BOXES)


def image_point(box: dict[str, Any], x: float, y: float) -> tuple[float, float]:
    """The image pixel coordinates under the client point (x, y)."""
    image, (nw, nh) = box["image"], box["natural"]
    return (x - image["left"]) / image["width"] * nw, (y - image["top"]) / image["height"] * nh


def screen_point(box: dict[str, Any], ix: float, iy: float) -> tuple[float, float]:
    image, (nw, nh) = box["image"], box["natural"]
    return image["left"] + ix / nw * image["width"], image["top"] + iy / nh * image["height"]


def assert_fitted(box: dict[str, Any]) -> None:
    """The whole image in the frame, as large as fits, centred."""
    frame, image = box["frame"], box["image"]
    for side in ("left", "top"):
        assert image[side] >= frame[side] - 0.5, (side, box)
    for side in ("right", "bottom"):
        assert image[side] <= frame[side] + 0.5, (side, box)
    fills_width = abs(image["left"] - frame["left"]) <= 1 and abs(image["right"] - frame["right"]) <= 1
    fills_height = abs(image["top"] - frame["top"]) <= 1 and abs(image["bottom"] - frame["bottom"]) <= 1
    assert fills_width or fills_height, box
    assert abs((image["left"] + image["right"]) - (frame["left"] + frame["right"])) <= 2, box
    assert abs((image["top"] + image["bottom"]) - (frame["top"] + frame["bottom"])) <= 2, box


def assert_covers_frame(box: dict[str, Any]) -> None:
    """A zoomed-in image covers the whole frame: panned as far as it goes, no gap shows."""
    frame, image = box["frame"], box["image"]
    assert image["left"] <= frame["left"] + 0.5 and image["top"] <= frame["top"] + 0.5, box
    assert image["right"] >= frame["right"] - 0.5 and image["bottom"] >= frame["bottom"] - 0.5, box


def drag(page: Page, start: tuple[float, float], dx: float, dy: float) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + dx / 2, start[1] + dy / 2, steps=3)
    page.mouse.move(start[0] + dx, start[1] + dy, steps=3)
    page.mouse.up()


def exercise_viewer(page: Page, artifacts: Path, name: str, next_item: Callable[[], None]) -> None:
    """Everything the viewer does, on the page open now; ``next_item`` moves on to the next image."""
    frame_el = page.locator("#stage-frame")
    expect(page.locator("#item-image")).to_be_visible()
    page.wait_for_function("() => document.getElementById('item-image').naturalWidth > 0")
    fit = boxes(page)
    assert fit["natural"] == [WIDTH, HEIGHT]
    assert_fitted(fit)
    assert fit["cursor"] == "grab"

    # When the wheel turns up three notches with the pointer right of the centre (then also below
    # it, once the image is taller than the frame: a smaller image stays inside the frame), the image
    # grows around the pointer: the image pixel under it stays under it, and the viewer maps it the same
    frame = fit["frame"]
    centre = ((frame["left"] + frame["right"]) / 2, (frame["top"] + frame["bottom"]) / 2)
    pointer = (centre[0] + 60, centre[1] + 40)
    box = fit
    for at in [(centre[0] + 60, centre[1]), pointer, pointer]:
        page.mouse.move(*at)
        under = image_point(box, *at)
        before = box["image"]["width"]
        page.mouse.wheel(0, -100)
        page.wait_for_function(
            "w => document.getElementById('item-image').getBoundingClientRect().width > w + 1", arg=before
        )
        box = boxes(page)
        assert abs(box["image"]["width"] / before - 1.25) < 0.01, box
        x, y = screen_point(box, *under)
        assert abs(x - at[0]) <= 1.5 and abs(y - at[1]) <= 1.5, (under, x, y, at)
    mapped = page.evaluate(
        "([x, y]) => document.getElementById('stage-frame').imageViewer.toImage(x, y)", list(pointer)
    )
    under = image_point(box, *pointer)
    assert abs(mapped["x"] - under[0]) < 0.1 and abs(mapped["y"] - under[1]) < 0.1, (mapped, under)
    client = page.evaluate("([x, y]) => document.getElementById('stage-frame').imageViewer.toClient(x, y)", list(under))
    assert abs(client["x"] - pointer[0]) < 0.1 and abs(client["y"] - pointer[1]) < 0.1, client
    expect(frame_el).to_have_class("stage-frame zoomed")
    # And a notch down zooms out around the same point
    under = image_point(box, *pointer)
    page.mouse.wheel(0, 100)
    page.wait_for_function(
        "w => document.getElementById('item-image').getBoundingClientRect().width < w - 1", arg=box["image"]["width"]
    )
    box = boxes(page)
    x, y = screen_point(box, *under)
    assert abs(x - pointer[0]) <= 1.5 and abs(y - pointer[1]) <= 1.5, (under, x, y, pointer)

    # When the image is dragged, it follows the pointer, grabbing while it drags
    page.mouse.move(*pointer)
    page.mouse.down()
    page.mouse.move(pointer[0] - 40, pointer[1] - 25, steps=4)
    assert boxes(page)["cursor"] == "grabbing"
    page.mouse.move(pointer[0] - 80, pointer[1] - 50, steps=4)
    page.mouse.up()
    moved = boxes(page)
    assert abs(moved["image"]["left"] - (box["image"]["left"] - 80)) <= 1, (box, moved)
    assert abs(moved["image"]["top"] - (box["image"]["top"] - 50)) <= 1, (box, moved)
    assert moved["cursor"] == "grab"

    # Then however far it is dragged, the image never leaves the frame: it stops at its edges
    drag(page, pointer, 3000, 3000)
    box = boxes(page)
    assert_covers_frame(box)
    assert abs(box["image"]["left"] - frame["left"]) <= 1 and abs(box["image"]["top"] - frame["top"]) <= 1, box
    drag(page, pointer, -5000, -5000)
    box = boxes(page)
    assert_covers_frame(box)
    assert abs(box["image"]["right"] - frame["right"]) <= 1 and abs(box["image"]["bottom"] - frame["bottom"]) <= 1
    page.screenshot(path=artifacts / f"viewer-{name}-zoomed.png")

    # When = is pressed, the image fits the frame again
    page.keyboard.press("=")
    expect(frame_el).to_have_class("stage-frame")
    box = boxes(page)
    assert_fitted(box)
    assert abs(box["image"]["width"] - fit["image"]["width"]) <= 1, (box, fit)
    # And a drag of a fitted image leaves it inside the frame
    drag(page, pointer, 2000, -2000)
    box = boxes(page)
    for side in ("left", "top"):
        assert box["image"][side] >= frame[side] - 0.5, box
    for side in ("right", "bottom"):
        assert box["image"][side] <= frame[side] + 0.5, box

    # When 1:1 is clicked (or * pressed after a fit), the image shows at its natural size
    page.get_by_role("button", name="Natural size (1:1)").click()
    box = boxes(page)
    assert abs(box["image"]["width"] - WIDTH) <= 0.5 and abs(box["image"]["height"] - HEIGHT) <= 0.5, box
    page.keyboard.press("=")
    assert_fitted(boxes(page))
    page.keyboard.press("*")
    box = boxes(page)
    assert abs(box["image"]["width"] - WIDTH) <= 0.5 and abs(box["image"]["height"] - HEIGHT) <= 0.5, box
    # And the help lists * with the wheel and the drag
    page.keyboard.press("?")
    expect(page.locator("#help-more-keys")).to_contain_text("natural size (1:1)")
    expect(page.locator("#help-more-keys")).to_contain_text("Wheel")
    page.screenshot(path=artifacts / f"viewer-{name}-help.png")
    page.keyboard.press("Escape")

    # When the brightness slider is moved with the keyboard and the contrast slider clicked
    brightness = page.locator("[data-viewer-filter=brightness]")
    contrast = page.locator("[data-viewer-filter=contrast]")
    brightness.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(brightness).to_have_value("120")
    track = contrast.bounding_box()
    assert track is not None
    page.mouse.click(track["x"] + track["width"] * 0.75, track["y"] + track["height"] / 2)
    value = int(contrast.input_value())
    assert 200 <= value <= 260, value

    # Then the image is filtered by both, the slider gave the focus back, and the values show
    expect(page.locator("#item-image")).to_have_css("filter", f"brightness(1.2) contrast({value / 100:g})")
    assert page.evaluate("document.activeElement.tagName") != "INPUT"
    expect(page.locator("[data-viewer-value]").first).to_have_text("120%")
    page.screenshot(path=artifacts / f"viewer-{name}-filters.png")

    # When the image is zoomed and the page moves on to the next item
    first = page.locator("#item-image").get_attribute("data-item")
    page.keyboard.press("+")
    expect(frame_el).to_have_class("stage-frame zoomed")
    next_item()
    expect(page.locator("#item-image")).not_to_have_attribute("data-item", first or "")
    page.wait_for_function("() => document.getElementById('item-image').naturalWidth > 0")

    # Then the new image is fitted, with the same filters
    expect(frame_el).to_have_class("stage-frame")
    box = boxes(page)
    assert_fitted(box)
    assert box["filter"] == f"brightness(1.2) contrast({value / 100:g})", box

    # And Reset image takes the filters off
    page.get_by_role("button", name="Reset image").click()
    assert boxes(page)["filter"] == ""
    expect(brightness).to_have_value("100")
    expect(contrast).to_have_value("100")


def test_the_viewer_on_the_labeling_page(live_server: Any, page: Page, js_errors: list[str], artifacts: Path) -> None:
    # Given the labeling page of a project of 160 × 96 images
    base = live_server.url
    user = make_user(USERNAME)
    project = project_create(name="Wide", labels=["cat", "dog"], user=user, retrain_every=50)
    files = [(f"wide_{i}.png", io.BytesIO(noise_png(i))) for i in range(4)]
    assert items_import_uploads(project=project, files=files, user=user).imported == 4
    log_in(page, base)
    open_labeling(page, base, project)

    # Then the viewer zooms, pans, fits, shows 1:1 and filters, and the next item (key 1 labels) is fitted
    def label_it() -> None:
        press(page, "1")

    exercise_viewer(page, artifacts, "label", label_it)
    assert js_errors == []


def test_the_viewer_on_the_review_page(live_server: Any, page: Page, js_errors: list[str], artifacts: Path) -> None:
    # Given two flagged 160 × 96 images
    manager = make_user("manager")
    project = make_project(manager)
    files = [(f"wide_{i}.png", io.BytesIO(noise_png(10 + i))) for i in range(2)]
    items_import_uploads(project=project, files=files, user=manager)
    items = list(Item.objects.filter(project=project).order_by("id"))
    for item in items:
        annotation_create(item=item, user=manager, label="cat")
    answers = item_answers(item_ids=[item.id for item in items])
    dog = project.classes.get(name="dog").id
    review_flags_publish(
        project_id=project.id,
        item_ids=[item.id for item in items],
        answers=[answers[item.id] for item in items],
        quality=[0.1, 0.2],
        suggested=[(dog,), (dog,)],
        confidence=[0.9, 0.8],
        flagged=[item.id for item in items],
    )

    # When the manager opens the review page
    log_in_at(page, f"{live_server.url}/projects/{project.id}/review/", "manager")
    expect(page.locator("#given")).to_have_text("cat")

    # Then the viewer works the same, and Enter (keep) moves on to a fitted next image
    exercise_viewer(page, artifacts, "review", lambda: page.keyboard.press("Enter"))
    assert js_errors == []


def test_the_viewer_stands_alone_with_its_own_keys(page: Page, js_errors: list[str]) -> None:
    # Given a page of its own (as the data browser's may be): a 400 × 300 frame, a 160 × 96 image,
    # viewer.js and nothing else, its keys bound without a keymap
    page.set_content('<div id="frame"></div>')
    page.add_script_tag(path=str(Path(__file__).resolve().parents[2] / "static" / "js" / "viewer.js"))
    wide = "data:image/png;base64," + base64.b64encode(noise_png(1)).decode()
    page.evaluate(
        """async (src) => {
          const frame = document.getElementById("frame");
          frame.style.width = "400px";
          frame.style.height = "300px";
          const img = new Image();
          img.src = src;
          frame.append(img);
          window.viewer = new ImageViewer(frame, img).bindControls();
          await img.decode();
        }""",
        wide,
    )
    width = "() => viewer.img.getBoundingClientRect().width"

    # Then the image is fitted (2.5×), + zooms 1.5×, * shows 1:1, = fits again
    page.wait_for_function(f"({width})() === 400")
    for key, expected in [("+", 600), ("*", 160), ("=", 400)]:
        page.keyboard.press(key)
        assert abs(page.evaluate(width) - expected) <= 0.5, key
    # And show(url) puts another image in the same element, fitted to its own size (100 × 100: 3×)
    square = io.BytesIO()
    Image.new("RGB", (100, 100), "teal").save(square, format="PNG")
    page.keyboard.press("+")
    page.evaluate("src => viewer.show(src)", "data:image/png;base64," + base64.b64encode(square.getvalue()).decode())
    page.wait_for_function(f"({width})() === 300")
    assert page.evaluate("viewer.zoomed") is False
    assert js_errors == []
