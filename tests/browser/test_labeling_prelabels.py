"""The labeling page's pre-labels and multi-label answers in a real browser: a suggested set that
keys toggle and Enter submits, the threshold that hides unsure suggestions, and the notice of a
new model; each step checked against the database."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Page, expect

from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services.imports import items_import_uploads
from annotator.services.projects import project_create
from annotator.services.training import model_version_publish, training_begin, training_request
from tests.browser.labeling import USERNAME, log_in, open_labeling, press
from tests.factories import (
    annotation_label,
    annotation_names,
    answer_names,
    make_user,
    png_bytes,
    store_answer,
    wait_for,
)


def test_multi_label_keys_toggle_classes_and_enter_submits_the_set(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a multi-label project whose model version suggests {cat, outdoor} for every image
    base = live_server.url
    user = make_user(USERNAME)
    project = project_create(
        name="Scenes", labels=["cat", "dog", "outdoor"], user=user, multi_label=True, retrain_every=50
    )
    files = [(f"scene_{i}.png", io.BytesIO(png_bytes(700 + i))) for i in range(3)]
    assert items_import_uploads(project=project, files=files, user=user).imported == 3
    items = list(Item.objects.filter(project=project).order_by("id"))
    training_request(project_id=project.id)
    model_version_publish(
        version=training_begin(project_id=project.id),
        item_ids=[item.id for item in items],
        probs=np.array([[0.9, 0.2, 0.7]] * 3, dtype=np.float32),
        scores=np.array([3.0, 2.0, 1.0]),
        priorities=np.array([3.0, 2.0, 1.0]),
        metrics={},
        weights="",
    )
    log_in(page, base)
    assert open_labeling(page, base, project)["id"] == items[0].id

    def chosen() -> list[str]:
        buttons = page.locator(".class-button.chosen")
        return sorted(buttons.nth(i).get_attribute("data-label") for i in range(buttons.count()))

    def stored(item: Item) -> tuple[list[str], str]:
        wait_for(lambda: Annotation.objects.filter(item=item, active=True).exists(), 15, f"the label of {item.id}")
        annotation = Annotation.objects.get(item=item, active=True)
        return annotation_names(annotation), annotation.prelabel

    # Then the suggested set starts selected, with each class's probability on its button
    expect(page.locator("#prelabel")).to_contain_text("suggests cat, outdoor")
    assert chosen() == ["cat", "outdoor"]
    expect(page.locator('.class-button[data-label="dog"]')).to_contain_text("20%")
    page.screenshot(path=artifacts / "20-multi-label.png")

    # When Enter submits it as it is: the set is stored as accepted
    assert press(page, "Enter")["id"] == items[1].id
    assert stored(items[0]) == (["cat", "outdoor"], "accepted")

    # When keys toggle dog on and cat off, the selection follows, and Enter stores the corrected set
    page.keyboard.press("2")
    page.keyboard.press("1")
    assert chosen() == ["dog", "outdoor"]
    press(page, "Enter")
    assert stored(items[1]) == (["dog", "outdoor"], "corrected")

    # And an image with none of the classes is labeled by turning the suggestion off
    page.keyboard.press("1")
    page.keyboard.press("3")
    assert chosen() == []
    page.keyboard.press("Enter")
    assert stored(items[2]) == ([], "corrected")
    item = Item.objects.get(id=items[2].id)
    assert item.status == "labeled" and answer_names(item) == []
    assert js_errors == []


def test_the_threshold_hides_an_unsure_suggestion_and_a_new_model_is_announced(
    live_server: Any, page: Page, js_errors: list[str], artifacts: Path
) -> None:
    # Given a project whose threshold is 0.6, with 30 labeled cats already (no dog, no bird) and version 3
    # ready with an accuracy interval; the first item in the queue has a 34% "dog" pre-label, the second a 90% "cat"
    base = live_server.url
    user = make_user(USERNAME)
    project = project_create(
        name="Pets", labels=["cat", "dog", "bird"], user=user, retrain_every=50, prelabel_threshold=0.6
    )
    files = [(f"pet_{i:02d}.png", io.BytesIO(png_bytes(800 + i))) for i in range(33)]
    assert items_import_uploads(project=project, files=files, user=user).imported == 33
    items = list(Item.objects.filter(project=project).order_by("id"))
    cat, dog, _ = project.classes.order_by("index")
    Item.objects.filter(id__in=[i.id for i in items[3:]]).update(status=Item.Status.LABELED)
    for item in items[3:]:
        store_answer(item, ["cat"])
    interval = {"val_accuracy": 0.78, "val_accuracy_low": 0.69, "val_accuracy_high": 0.87, "val_n": 66}
    version = ModelVersion.objects.create(
        project=project, number=3, status="ready", strategy="entropy", n_labels=30, metrics=interval
    )
    for item, pred, confidence, priority in [
        (items[0], dog, 0.34, 3.0),
        (items[1], cat, 0.9, 2.0),
        (items[2], cat, 0.9, 1.0),
    ]:
        Item.objects.filter(id=item.id).update(
            pred_label=pred, pred_confidence=confidence, pred_version=version, priority=priority
        )
    log_in(page, base)

    # When the annotator opens the labeling page on the unsure item
    assert open_labeling(page, base, project)["id"] == items[0].id

    # Then no class is suggested, the line says the model is unsure, and the model's accuracy has its interval
    expect(page.locator("#prelabel")).to_have_text("Model v3 is unsure (34%): choose a class")
    expect(page.locator(".class-button.prelabel")).to_have_count(0)
    expect(page.locator('.class-button[data-label="dog"] .conf')).to_have_text("")
    expect(page.locator("#model-info")).to_have_text("Model v3 · accuracy 0.78 ± 0.09 (66 labels)")
    expect(page.locator("#retrain-info")).to_have_text("Next model in 50 labels")
    expect(page.locator("#under-covered")).to_have_text(
        "Few labels for: dog (0), bird (0). The queue searches for them; label them when you see them."
    )
    page.screenshot(path=artifacts / "30-unsure-prelabel.png")

    # When Enter is pressed, nothing is labeled and the status says why
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("The model is unsure; choose a class.")
    page.wait_for_timeout(300)  # time for a wrongly sent label to land
    assert page.evaluate("window.__shown.length") == 1 and not Annotation.objects.exists()

    # When a class key is pressed, the item is labeled with it, and the page's figures follow the label
    assert press(page, "3")["id"] == items[1].id
    wait_for(lambda: Annotation.objects.filter(item=items[0], classes__name="bird").exists(), 15, "the bird label")
    expect(page.locator("#retrain-info")).to_have_text("Next model in 49 labels")
    expect(page.locator("#under-covered")).to_contain_text("Few labels for: dog (0), bird (1).")

    # Then the sure pre-label is suggested, and Enter accepts it
    expect(page.locator(".class-button.prelabel")).to_have_attribute("data-label", "cat")
    expect(page.locator("#prelabel")).to_have_text("Model v3 suggests cat (90% confident) — Enter accepts")
    assert press(page, "Enter")["id"] == items[2].id
    wait_for(lambda: Annotation.objects.filter(item=items[1]).exists(), 15, "the accepted label")
    accepted = Annotation.objects.get(item=items[1], active=True)
    assert (annotation_label(accepted), accepted.prelabel) == ("cat", Annotation.Prelabel.ACCEPTED)

    # When a retrain is requested, the page says a new model is on its way, within a refresh
    Project.objects.filter(id=project.id).update(training_requested=True)
    expect(page.locator("#retrain-info")).to_have_text("Training a new model…")

    # When version 4 is published while the page is open, the annotator is told once, within a refresh
    better = {"val_accuracy": 0.93, "val_accuracy_low": 0.89, "val_accuracy_high": 0.97, "val_n": 120}
    ModelVersion.objects.create(
        project=project, number=4, status="ready", strategy="entropy", n_labels=32, metrics=better
    )
    Project.objects.filter(id=project.id).update(training_requested=False)
    expect(page.locator("#status")).to_have_text("Model v4 is now serving: accuracy 0.93 ± 0.04 (120 labels)")
    expect(page.locator("#model-info")).to_have_text("Model v4 · accuracy 0.93 ± 0.04 (120 labels)")
    expect(page.locator("#retrain-info")).to_have_text("Next model in 50 labels")
    page.evaluate("document.getElementById('status').textContent = ''")
    page.wait_for_timeout(6000)  # more than a refresh: it is not told again
    expect(page.locator("#status")).to_have_text("")

    # And the project page shows the same figures, the interval as error bars, and the warning
    manage = page.context.new_page()
    manage.goto(f"{base}/projects/{project.id}/")
    expect(manage.locator("#model-line")).to_have_text("Model: v4, accuracy 0.93 ± 0.04 (120 labels)")
    expect(manage.locator("#learning-curve path.error-bar")).to_have_count(2)
    expect(manage.locator("#under-covered")).to_contain_text("Few labels for: dog (0), bird (1).")
    manage.screenshot(path=artifacts / "31-project-page.png", full_page=True)
    assert js_errors == []


def test_an_unsure_multi_label_set_starts_with_no_class_chosen(
    live_server: Any, page: Page, js_errors: list[str]
) -> None:
    # Given a multi-label project (threshold 0.5) whose only item's pre-label {cat, outdoor} is 30% sure as a set
    base = live_server.url
    user = make_user(USERNAME)
    project = project_create(name="Scenes", labels=["cat", "dog", "outdoor"], user=user, multi_label=True)
    assert items_import_uploads(project=project, files=[("s.png", io.BytesIO(png_bytes(3)))], user=user).imported
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    Item.objects.filter(project=project).update(
        pred_label=project.classes.get(name="cat"),
        pred_confidence=0.3,
        pred_probs=[0.7, 0.1, 0.6],
        pred_version=version,
    )
    log_in(page, base)
    open_labeling(page, base, project)
    # Then nothing is chosen or suggested, and the line says the model is unsure
    expect(page.locator("#prelabel")).to_have_text("Model v1 is unsure (30%): keys toggle classes, Enter submits")
    expect(page.locator(".class-button.chosen")).to_have_count(0)
    expect(page.locator(".class-button.prelabel")).to_have_count(0)
    # And keys choose the classes as usual
    page.keyboard.press("3")
    expect(page.locator(".class-button.chosen")).to_have_attribute("data-label", "outdoor")
    assert js_errors == []
