"""The managers' dashboard in a real browser, where it is drawn (the page sends its empty frame):
every panel from the dashboard API, and the training progress, the queue, the classes and the
learning curve follow the database without a reload."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from playwright.sync_api import Page, expect

from annotator.models import Annotation, Item, Job, LabelClass, ModelVersion
from annotator.services.annotations import annotation_create
from annotator.services.classes import label_class_add
from annotator.services.members import membership_add
from tests.browser.labeling import log_in_at
from tests.factories import make_project, make_user, png_bytes, store_answer


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
    log_in_at(page, f"{base}/projects/{project.id}/", "manager")
    expect(page.locator("#training-text")).to_have_text("v2 training on 20 labels: 10%")
    expect(page.locator("#learning-curve circle.dot")).to_have_count(1)
    expect(page.locator("#model-line")).to_have_text("Model: v1, accuracy 0.60")
    page.evaluate("window.__marker = 'same page'")

    # Then progress, a new label and the finished version appear in place, on the same page
    ModelVersion.objects.filter(id=running.id).update(progress=0.6)
    expect(page.locator("#training-progress")).to_have_js_property("value", 0.6)
    expect(page.locator("#training-text")).to_have_text("v2 training on 20 labels: 60%")
    store_answer(Item.objects.get(original_name="0.png"), ["dog"])
    Item.objects.filter(original_name="0.png").update(status="labeled")
    expect(page.locator("#count-labeled")).to_have_text("1")
    expect(page.locator("#class-bars li").nth(1)).to_contain_text("dog1")
    ModelVersion.objects.filter(id=running.id).update(status="ready", progress=1.0, metrics={"val_accuracy": 0.9})
    expect(page.locator("#learning-curve circle.dot")).to_have_count(2)
    expect(page.locator("#model-line")).to_have_text("Model: v2, accuracy 0.90")
    expect(page.locator("#training-progress")).to_be_hidden()
    expect(page.locator("#workers-status")).not_to_have_text("Workers: checking…")
    assert page.evaluate("window.__marker") == "same page"
    page.screenshot(path=artifacts / "dashboard.png", full_page=True)
    assert js_errors == []


def test_the_dashboard_draws_every_panel_from_the_api(live_server: Any, page: Page, js_errors: list[str]) -> None:
    # Given a project labeled twice per item: bob and carol each labeled 3 items (bob at 0, 60 and 120 s,
    # 4, 2 and 9 s each), agreeing on two; 20 more items labeled cat; v1 ready, v2 failed, v3 training at 25%
    manager, bob, carol = make_user("manager"), make_user("bob"), make_user("carol")
    project = make_project(manager, labels=["cat", "dog"], labels_per_item=2)
    for person in (bob, carol):
        membership_add(project=project, user=person)
    Item.objects.bulk_create(
        Item(project=project, file=f"x/{i}.png", original_name=f"{i}.png", width=8, height=8, sha256=str(i))
        for i in range(23)
    )
    items = list(Item.objects.filter(project=project).order_by("id"))
    for person, labels in ((bob, ["cat", "cat", "dog"]), (carol, ["cat", "dog", "dog"])):
        for item, name, duration in zip(items[:3], labels, [4000, 2000, 9000], strict=True):
            fresh = Item.objects.select_related("project").get(id=item.id)
            annotation_create(item=fresh, user=person, label=name, duration_ms=duration)
    start = Annotation.objects.filter(user=bob).order_by("id").first().created
    for seconds, annotation in zip([0, 60, 120], Annotation.objects.filter(user=bob).order_by("id"), strict=True):
        Annotation.objects.filter(id=annotation.id).update(created=start + timedelta(seconds=seconds))
    for item in items[3:]:
        store_answer(item, ["cat"])
    Item.objects.filter(id__in=[i.id for i in items[3:]]).update(status=Item.Status.LABELED)
    common = {"project": project, "strategy": project.strategy}
    ModelVersion.objects.create(**common, number=1, status="ready", n_labels=10, metrics={"val_accuracy": 0.6})
    ModelVersion.objects.create(**common, number=2, status="failed", n_labels=20, error="boom: out of memory")
    ModelVersion.objects.create(**common, number=3, status="training", n_labels=23, progress=0.25)

    # When the manager opens the project page
    log_in_at(page, f"{live_server.url}/projects/{project.id}/", "manager")

    # Then every panel shows the API's figures
    expect(page.locator("#training-text")).to_have_text("v3 training on 23 labels: 25%")
    expect(page.locator("#training-progress")).to_have_js_property("value", 0.25)
    expect(page.locator("#last-error")).to_be_visible()
    expect(page.locator("#last-error-version")).to_have_text("v2")
    expect(page.locator("#last-error-text")).to_have_text("boom: out of memory")
    for name, value in {"unlabeled": "0", "leased": "0", "labeled": "23", "skipped": "0"}.items():
        expect(page.locator(f"#count-{name}")).to_have_text(value)
    expect(page.locator("#learning-curve circle.dot")).to_have_count(1)
    dogs = Item.objects.filter(
        project=project, answer_classes__role="consensus", answer_classes__label_class__name="dog"
    ).count()
    expect(page.locator("#class-bars li")).to_have_text([f"cat{23 - dogs}", f"dog{dogs}"])
    expect(page.locator("#under-covered")).to_have_text(
        f"Few labels for: dog ({dogs}). The queue searches for them; label them when you see them."
    )
    bob_row = page.locator("#annotator-rows tr", has_text="bob").locator("td")
    expect(bob_row).to_have_text(["bob", "3", "60", "–", "4.0"])
    expect(page.locator("#agreement-panel")).to_be_visible()
    expect(page.locator("#agreement-items")).to_have_text("3")
    expect(page.locator("#mean-agreement")).to_have_text("0.83")
    expect(page.locator("#fleiss-kappa")).to_have_text("0.33")
    expect(page.locator("#agreement-rows tr")).to_have_count(2)
    assert js_errors == []


def test_managers_import_export_add_members_and_classes_from_the_page(
    live_server: Any, celery_worker: Any, page: Page, js_errors: list[str], tmp_path: Path
) -> None:
    # Given a manager's empty project, another user, and an image and a text file to upload
    manager = make_user("manager")
    make_user("newcomer")
    project = make_project(manager, labels=["cat", "dog"])
    (tmp_path / "a.png").write_bytes(png_bytes(1))
    (tmp_path / "notes.txt").write_text("not an image")
    log_in_at(page, f"{live_server.url}/projects/{project.id}/", "manager")

    # When they upload both in the background, Then the jobs card follows the import to its summary
    page.locator("input[name=files]").set_input_files([tmp_path / "a.png", tmp_path / "notes.txt"])
    page.locator("input[name=background]").check()
    page.get_by_role("button", name="Upload").click()
    jobs = page.locator("#job-rows")
    expect(jobs).to_contain_text("1 imported, 0 duplicates, 0 labeled, 1 rejected", timeout=60_000)
    jobs.locator("summary", has_text="why rejected").click()
    expect(jobs).to_contain_text("notes.txt: ")
    assert Item.objects.filter(project=project).count() == 1

    # When they label it through the API's service and export CSV in the background, Then a download link appears
    annotation_create(item=Item.objects.get(project=project), user=manager, label="dog")
    page.locator("#jobs select[name=format]").select_option("csv")
    page.get_by_role("button", name="Export in background").click()
    # "queued" first, unless a free worker finished the one-item export before the page looked
    expect(page.locator("#job-message")).to_contain_text(re.compile(r"queued; it runs in the background|is done"))
    link = jobs.locator("a", has_text="download")
    expect(link).to_have_count(1, timeout=60_000)
    expect(page.locator("#job-message")).to_contain_text("(csv) is done: 1 items")
    with page.expect_download() as download_info:
        link.click()
    assert Path(download_info.value.path()).read_text().splitlines()[1].startswith("a.png,dog,manager,")

    # And the members card adds a user, and the classes card a class
    page.locator("#member-add-form input[name=username]").fill("newcomer")
    page.locator("#member-add-form button").click()
    expect(page.locator("#members [data-member='newcomer']")).to_be_visible()
    page.locator("#class-add-form input[name=name]").fill("bird")
    page.locator("#class-add-form button").click()
    expect(page.locator(".classes")).to_contain_text("bird")
    assert [c.name for c in LabelClass.objects.filter(project=project).order_by("index")] == ["cat", "dog", "bird"]
    # And every export format is also a download right away
    page.wait_for_load_state()
    links = page.locator("#export a.button")
    expect(links).to_have_count(4)
    hrefs = links.evaluate_all("links => links.map((a) => a.getAttribute('href'))")
    assert [href.split("format=")[1] for href in hrefs] == ["csv", "jsonl", "coco", "imagefolder"]
    with page.expect_download() as download_info:
        page.get_by_role("link", name="JSON Lines").click()
    assert '"label": "dog"' in Path(download_info.value.path()).read_text()
    assert js_errors == []


def test_the_project_page_follows_the_project_without_a_reload(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a manager's project with 6 images, v1 serving and v2 training
    manager = make_user("manager")
    project = make_project(manager, labels=["cat", "dog"])
    Item.objects.bulk_create(
        Item(project=project, file=f"x/{i}.png", original_name=f"{i}.png", width=8, height=8, sha256=str(i))
        for i in range(6)
    )
    items = list(Item.objects.filter(project=project).order_by("id"))
    common = {"project": project, "strategy": project.strategy}
    ModelVersion.objects.create(**common, number=1, status="ready", n_labels=10, metrics={"val_accuracy": 0.5})
    running = ModelVersion.objects.create(**common, number=2, status="training", n_labels=20, progress=0.1)
    log_in_at(page, f"{live_server.url}/projects/{project.id}/", "manager")
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(2)
    expect(page.locator("#model-download")).to_contain_text("Take v1 away")
    expect(page.locator("#labels-by-people")).to_have_text("0")
    expect(page.locator("[data-review='flagged']")).to_have_text("0")
    expect(page.locator("#job-rows")).to_have_text("No jobs yet.")
    page.evaluate("window.__marker = 'same page'")

    # When, elsewhere, v2 is published with a confusion matrix, two items are labeled by people, one is
    # leased, one skipped, one flagged for review, and an export is started through the API
    confusion = {
        "classes": ["cat", "dog"],
        "n": 10,
        "cells": [[0, 0, 4], [0, 1, 1], [1, 1, 5]],
        "precision": [1.0, 5 / 6],
        "recall": [0.8, 1.0],
        "support": [5, 5],
    }
    metrics = {"val_accuracy": 0.9, "val_accuracy_low": 0.6, "val_accuracy_high": 0.98, "val_n": 10}
    ModelVersion.objects.filter(id=running.id).update(
        status="ready", progress=1.0, metrics={**metrics, "confusion": confusion}
    )
    for item, name in zip(items[:2], ["cat", "dog"], strict=True):
        annotation_create(item=Item.objects.select_related("project").get(id=item.id), user=manager, label=name)
    Item.objects.filter(id=items[2].id).update(lease_until=timezone.now() + timedelta(minutes=5))
    Item.objects.filter(id=items[3].id).update(status=Item.Status.SKIPPED)
    Item.objects.filter(id=items[0].id).update(review_status="flagged", review_reason="label_issue")
    Job.objects.create(project=project, kind="export", status="running", params={"format": "csv"}, progress=0.5)
    label_class_add(project=project, name="bird", hotkey="b")

    # Then every figure on the page follows, in place: model line, versions with the serving one's
    # downloads and confusion matrix, counts, labels by people, review counts and the job
    expect(page.locator("#model-line")).to_have_text("Model: v2, accuracy 0.90 ± 0.19 (10 labels)")
    expect(versions.first).to_contain_text("v2Ready serving")
    expect(versions.first).to_contain_text("0.90 ± 0.19 (10 labels)")
    expect(page.locator("#model-download")).to_contain_text("Take v2 away")
    expect(page.locator("#confusion")).to_contain_text("Where v2 goes wrong")
    cells = page.locator("#confusion tbody tr").first.locator("td.cell")
    expect(cells).to_have_text(["4", "1"])
    expect(page.locator("#count-labeled")).to_have_text("2")
    expect(page.locator("#count-unlabeled")).to_have_text("3")
    expect(page.locator("#count-skipped")).to_have_text("1")
    expect(page.locator("#count-leased")).to_have_text("1")
    expect(page.locator("#labels-by-people")).to_have_text("2")
    expect(page.locator("[data-review='flagged']")).to_have_text("1")
    expect(page.locator("#job-rows")).to_contain_text("export (csv)", timeout=15_000)
    expect(page.locator("[data-live=classes] .chip")).to_have_text(["1 cat", "2 dog", "b bird"])
    assert page.evaluate("window.__marker") == "same page"
    # And each figure is on the page once: the dashboard does not repeat the counts
    assert page.locator("[data-count]").count() == 0
    page.screenshot(path=artifacts / "project-live.png", full_page=True)
    assert js_errors == []
