"""What the labeling page's browser tests share: a digits project like the demo's, logging in
through the form, and waiting for the item the page shows after a key."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Annotation, Item, ModelFamily, Project
from annotator.services.imports import items_import_uploads
from annotator.services.projects import project_create
from tests.factories import digits_pngs, make_user

USERNAME, PASSWORD = "annotator", "pw-annotator"  # make_user's password scheme


@dataclass
class DigitsProject:
    project: Project
    truth: dict[str, str]  # original file name -> true digit

    def item(self, item_id: int) -> Item:
        return Item.objects.select_related("pred_label").get(id=item_id, project=self.project)


def make_digits_project(n_images: int) -> DigitsProject:
    """A project set up like the demo (digit classes with digit hotkeys, entropy, 32 px), owned by
    ``annotator``. It retrains every 50 labels, so here only when the test asks for it, and with the
    ``pretrained`` family: a head on the MobileNetV2 embeddings that the cold start already made
    trains in seconds, where the demo's CNN takes 20 s to over a minute on two busy cores."""
    user = make_user(USERNAME)
    project = project_create(
        name="Digits",
        labels=[{"name": str(d), "hotkey": str(d)} for d in range(10)],
        user=user,
        retrain_every=50,
        strategy="entropy",
        input_size=32,
    )
    Project.objects.filter(id=project.id).update(model_family=ModelFamily.PRETRAINED)
    images, labels = digits_pngs(n_images)
    names = [f"digit_{i:04d}.png" for i in range(n_images)]
    summary = items_import_uploads(
        project=project, files=[(name, io.BytesIO(data)) for name, data in zip(names, images, strict=True)], user=user
    )
    assert summary.imported > n_images - 5 and not summary.rejected, summary
    return DigitsProject(project=project, truth={name: str(label) for name, label in zip(names, labels, strict=True)})


def log_in(page: Page, base_url: str) -> None:
    """Log in through the login form and land on the project list."""
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator(".who")).to_have_text(USERNAME)


def log_in_at(page: Page, url: str, username: str) -> None:
    """Open ``url`` (a page that needs a login) as ``username``, through the login form it redirects to."""
    path = url.split("//", 1)[-1].partition("/")[2]
    base = url[: len(url) - len(path) - 1]
    page.goto(f"{base}/accounts/login/?next=/{path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")  # make_user's password scheme
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url)


def open_labeling(page: Page, base_url: str, project: Project) -> dict[str, Any]:
    """From the project list, open the project and start labeling; returns the first item shown."""
    page.get_by_role("link", name=project.name, exact=True).click()
    expect(page).to_have_url(f"{base_url}/projects/{project.id}/")
    page.get_by_role("link", name="Start labeling").click()
    expect(page).to_have_url(f"{base_url}/projects/{project.id}/label/")
    return shown_after(page, 0)


def shown_after(page: Page, count: int) -> dict[str, Any]:
    """Wait for more than ``count`` ``item-shown`` events; the latest one's detail (with the key
    pressed before it and that key's time), checked against the image element on screen."""
    page.wait_for_function("n => window.__shown.length > n", arg=count)
    detail = page.evaluate("window.__shown[window.__shown.length - 1]")
    expect(page.locator("#item-image")).to_have_attribute("data-item", str(detail["id"]))
    expect(page.locator("#item-image")).to_be_visible()
    return detail


def press(page: Page, key: str) -> dict[str, Any]:
    """Press ``key`` and wait for the next item the page shows."""
    count = page.evaluate("window.__shown.length")
    page.keyboard.press(key)
    return shown_after(page, count)


def active_annotations(project: Project) -> int:
    return Annotation.objects.filter(item__project=project, active=True).count()
