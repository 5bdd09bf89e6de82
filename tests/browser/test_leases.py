"""Leases follow the people, in a real browser: a labeling page that is left gives its prefetched
items back at once (a beacon on ``pagehide``), and a page showing "Nothing left" asks again by
itself and shows the next item when one comes back."""

from __future__ import annotations

import io
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Item, ModelVersion
from annotator.services.imports import items_import_uploads
from annotator.services.leasing import item_lease_next, item_release
from annotator.services.members import membership_add
from tests.browser.test_keyboard_access import log_in
from tests.factories import make_project, make_user, png_bytes, wait_for


def held_by(user) -> set[int]:
    return set(Item.objects.filter(lease_user=user).values_list("id", flat=True))


def test_a_page_left_gives_its_items_back_at_once(live_server: Any, page: Page, js_errors: list[str]) -> None:
    # Given annie's labeling page showing one image and holding the next ones it prefetched
    annie, bob = make_user("annie"), make_user("bob")
    project = make_project(annie, name="Pets")
    membership_add(project=project, user=bob)
    files = [(f"{i}.png", io.BytesIO(png_bytes(40 + i))) for i in range(6)]
    items_import_uploads(project=project, files=files, user=annie)
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/label/")
    expect(page.locator("#item-image")).to_be_visible()
    held = wait_for(lambda: held_by(annie) if len(held_by(annie)) == 4 else None, 10, "four leases")  # 1 + 3 ahead

    # When she leaves the page (as closing the tab does, pagehide fires)
    page.goto("about:blank")

    # Then every lease she held is free within moments (not after the 300 s lease), and bob gets them:
    # of the four items he is served, at least two were hers (only two others exist)
    wait_for(lambda: not held_by(annie), 10, "the leases given back")
    served = [item_lease_next(project=project, user=bob, exclude=list(held_by(bob))).id for _ in range(4)]
    assert len(set(served) & held) >= 2, (served, held)
    assert js_errors == []


def test_a_page_with_nothing_left_resumes_by_itself(live_server: Any, page: Page, js_errors: list[str]) -> None:
    # Given one image, held by bob, so that annie's page says there is nothing left
    annie, bob = make_user("annie"), make_user("bob")
    project = make_project(annie, name="Pets")
    membership_add(project=project, user=bob)
    items_import_uploads(project=project, files=[("only.png", io.BytesIO(png_bytes(7)))], user=annie)
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="margin", n_labels=0)
    cat = project.classes.get(name="cat")
    Item.objects.filter(project=project).update(
        pred_label=cat, pred_confidence=0.9, pred_probs=[0.9, 0.1], pred_version=version
    )
    item = item_lease_next(project=project, user=bob)
    log_in(page, live_server.url, "annie", f"/projects/{project.id}/label/")
    expect(page.locator("#empty")).to_be_visible()

    # When bob gives it back, and later a new image is imported while she waits
    item_release(item=item, user=bob)

    # Then her page shows it without a reload (it asks again every few seconds)
    expect(page.locator("#item-image")).to_have_attribute("data-item", str(item.id), timeout=15_000)
    expect(page.locator("#empty")).to_be_hidden()
    expect(page.locator(".class-button.prelabel")).to_have_count(1)  # the model's cat, suggested
    page.keyboard.press("2")
    expect(page.locator("#empty")).to_be_visible()
    # And with nothing on screen, no pre-label of the last item is left standing
    expect(page.locator(".class-button.prelabel")).to_have_count(0)
    expect(page.locator("#prelabel")).to_have_text("")
    items_import_uploads(project=project, files=[("new.png", io.BytesIO(png_bytes(8)))], user=annie)
    expect(page.locator("#item-image")).to_be_visible(timeout=15_000)
    assert page.locator("#item-image").get_attribute("data-item") != str(item.id)
    assert js_errors == []
