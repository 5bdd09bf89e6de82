"""The managers' dashboard in a real browser: the training progress, the queue, the classes and the
learning curve follow the database without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Item, LabelClass, ModelVersion
from tests.factories import make_project, make_user


def test_dashboard_follows_training_without_a_reload(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a manager's project with one ready version and a second one training at 10%
    base = live_server.url
    manager = make_user("manager")
    project = make_project(manager, labels=["cat", "dog"])
    Item.objects.bulk_create(
        Item(project=project, file=f"x/{i}.png", original_name=f"{i}.png", width=8, height=8, sha256=str(i))
        for i in range(5)
    )
    common = {"project": project, "strategy": project.strategy}
    ModelVersion.objects.create(**common, number=1, status="ready", n_labels=10, metrics={"val_accuracy": 0.6})
    running = ModelVersion.objects.create(**common, number=2, status="training", n_labels=20, progress=0.1)

    # When the manager opens the project page
    page.goto(f"{base}/accounts/login/?next=/projects/{project.id}/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("pw-manager")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#training-text")).to_have_text("v2 training on 20 labels: 10%")
    expect(page.locator("#learning-curve circle.dot")).to_have_count(1)
    page.evaluate("window.__marker = 'same page'")

    # Then progress, a new label and the finished version appear in place, on the same page
    ModelVersion.objects.filter(id=running.id).update(progress=0.6)
    expect(page.locator("#training-progress")).to_have_js_property("value", 0.6)
    expect(page.locator("#training-text")).to_have_text("v2 training on 20 labels: 60%")
    Item.objects.filter(original_name="0.png").update(status="labeled", label=LabelClass.objects.get(name="dog"))
    expect(page.locator("[data-count='labeled']")).to_have_text("1")
    expect(page.locator("#class-bars li").nth(1)).to_contain_text("dog1")
    ModelVersion.objects.filter(id=running.id).update(status="ready", progress=1.0, metrics={"val_accuracy": 0.9})
    expect(page.locator("#learning-curve circle.dot")).to_have_count(2)
    expect(page.locator("#training-progress")).to_be_hidden()
    expect(page.locator("#workers-status")).not_to_have_text("Workers: checking…")
    assert page.evaluate("window.__marker") == "same page"
    page.screenshot(path=artifacts / "dashboard.png", full_page=True)
    assert js_errors == []
