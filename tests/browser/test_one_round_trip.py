"""One round trip per label, in a real browser: once the prefetch queue is full, each label and
skip is one request (``?next=1``) whose response brings the next item; the page asks ``/next`` no
more, shows no item twice, every answer is stored, and every image shown is the display rendition."""

from __future__ import annotations

import io
from typing import Any

from playwright.sync_api import Page, Request, expect

from annotator.models import Annotation, Item
from annotator.services.imports import items_import_uploads
from tests.browser.labeling import press
from tests.browser.test_keyboard_access import log_in
from tests.factories import make_project, make_user, png_bytes, wait_for

N_LABELS = 8
NATURAL_SIZE = "(img => [img.naturalWidth, img.naturalHeight])(document.getElementById('item-image'))"


def test_labels_and_skips_bring_the_next_item_in_the_same_request(
    live_server: Any, page: Page, js_errors: list[str], settings: Any
) -> None:
    # Given a project of 14 images of 24 px, larger than the display side (16 px here: each gets a rendition),
    # and annie's labeling page, its prefetch queue full (1 shown + 3 ahead)
    settings.DISPLAY_MAX_SIDE = 16
    annie = make_user("annie")
    project = make_project(annie, name="Pets")
    files = [(f"{i}.png", io.BytesIO(png_bytes(60 + i))) for i in range(14)]
    items_import_uploads(project=project, files=files, user=annie)
    api: list[tuple[str, str]] = []
    image_types: list[str] = []

    def record(request: Request) -> None:
        if "/api/" in request.url:
            api.append((request.method, request.url.split("/api", 1)[1]))

    page.on("request", record)
    page.on("response", lambda r: "/image/" in r.url and image_types.append(r.headers.get("content-type", "")))
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/label/")
    expect(page.locator("#item-image")).to_be_visible()
    wait_for(lambda: Item.objects.filter(lease_user=annie).count() == 4 or None, 10, "four leases")
    shown = [int(page.locator("#item-image").get_attribute("data-item") or 0)]
    before = len(api)

    # When she labels 8 images with the "cat" key, waiting a moment on each as a person does, and skips one
    natural = []
    for _ in range(N_LABELS):
        page.wait_for_timeout(150)
        shown.append(press(page, "1")["id"])
        natural.append(page.evaluate(NATURAL_SIZE))
    page.wait_for_timeout(150)
    shown.append(press(page, "s")["id"])
    wait_for(lambda: Annotation.objects.filter(user=annie).count() == N_LABELS or None, 10, "the labels stored")
    page.wait_for_timeout(300)

    # Then every answer went as one request that asked for the next item, and /next was not called again
    during = api[before:]
    answers = [path for method, path in during if method == "POST"]
    assert len(answers) == N_LABELS + 1, during
    assert all("?next=1&exclude=" in path for path in answers), answers
    assert sum("/skip/" in path for path in answers) == 1
    assert not [p for m, p in during if m == "GET" and "/next/" in p], during
    # No image was shown twice; the page still holds a full queue (the shown one and three ahead)
    assert len(set(shown)) == len(shown), shown
    assert Item.objects.filter(lease_user=annie, status=Item.Status.UNLABELED).count() == 4
    # And each image the page showed or prefetched was the 16 px WebP rendition, not the 24 px PNG
    assert natural == [[16, 16]] * N_LABELS
    assert image_types and set(image_types) == {"image/webp"}, image_types
    assert js_errors == []
