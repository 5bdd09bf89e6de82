"""The review page in a real browser: a manager keeps, changes and marks ambiguous flagged labels
with keys only, goes back to change a decision, and opens the help; each step checked in the database."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from annotator.models import Item
from annotator.selectors.answers import item_answers
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.review import review_flags_publish
from tests.factories import answer_names, label_of, make_project, make_user, png_bytes, wait_for, zip_bytes


def test_review_with_keys_only(live_server: Any, page: Page, js_errors: list[str], artifacts: Path) -> None:
    # Given a cat/dog project whose three labeled images are flagged, the first two labeled cat
    manager = make_user("manager")
    project = make_project(manager)
    members = {f"{label}/{i}.png": png_bytes(i, size=32) for i, label in enumerate(["cat", "cat", "dog"])}
    items_import_uploads(project=project, files=[("set.zip", io.BytesIO(zip_bytes(members)))], user=manager)
    items = sorted(Item.objects.filter(project=project), key=lambda item: item.original_name[-5])
    cat, dog = project.classes.get(name="cat").id, project.classes.get(name="dog").id
    answers = item_answers(item_ids=[item.id for item in items])
    review_flags_publish(
        project_id=project.id,
        item_ids=[item.id for item in items],
        answers=[answers[item.id] for item in items],
        quality=[0.1, 0.2, 0.3],
        suggested=[(dog,), (dog,), (cat,)],
        confidence=[0.9, 0.8, 0.7],
        flagged=[item.id for item in items],
    )
    assert answers[items[2].id] == (dog,)

    # When the manager opens the review page
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.id}/review/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("pw-manager")
    page.get_by_role("button", name="Log in").click()

    # Then the worst flag comes first, with the given label, the model's and the reason
    expect(page.locator("#item-name")).to_have_text(items[0].original_name)
    expect(page.locator("#given")).to_have_text("cat")
    expect(page.locator("#suggested")).to_have_text("dog")
    expect(page.locator("#confidence")).to_have_text("90% confident")
    expect(page.locator("#reason")).to_have_text("likely label error")
    page.screenshot(path=artifacts / "review.png")

    # Enter keeps the label, a class key changes it, A marks the item ambiguous
    page.keyboard.press("Enter")
    expect(page.locator("#item-name")).to_have_text(items[1].original_name)
    page.keyboard.press("2")
    expect(page.locator("#item-name")).to_have_text(items[2].original_name)
    page.keyboard.press("a")
    expect(page.locator("#empty")).to_be_visible()

    def decisions() -> list[tuple[str, str, str]]:
        rows = Item.objects.filter(project=project)
        return sorted((i.original_name, i.review_action, label_of(i)) for i in rows)

    wait_for(lambda: all(action for _, action, _ in decisions()), 10, "three decisions")
    assert decisions() == [
        ("cat/0.png", "keep", "cat"),
        ("cat/1.png", "change", "dog"),
        ("dog/2.png", "ambiguous", "dog"),
    ]

    # Backspace goes back to the last one, and Enter now keeps it
    page.keyboard.press("Backspace")
    expect(page.locator("#item-name")).to_have_text(items[2].original_name)
    expect(page.locator("#revising")).to_be_visible()
    page.keyboard.press("Enter")
    wait_for(lambda: Item.objects.get(id=items[2].id).review_action == "keep", 10, "the changed decision")
    assert Item.objects.get(id=items[2].id).review_status == "reviewed"
    expect(page.locator("#count-changed")).to_have_text("1")

    # And ? shows the keys, Esc hides them
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    expect(page.locator("#help-keys")).to_contain_text("Mark ambiguous")
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()
    assert js_errors == []


def test_multi_label_review_toggles_classes_and_saves_the_set(
    live_server: Any, page: Page, js_errors: list[str]
) -> None:
    # Given a multi-label project with two flagged items: {cat, outdoor} and {dog}
    manager = make_user("manager")
    project = make_project(manager, labels=["cat", "dog", "outdoor"], multi_label=True)
    files = [(f"{i}.png", io.BytesIO(png_bytes(40 + i, size=32))) for i in range(2)]
    items_import_uploads(project=project, files=files, user=manager)
    items = list(Item.objects.filter(project=project).order_by("id"))
    for item, labels in zip(items, [["cat", "outdoor"], ["dog"]], strict=True):
        annotation_create(item=item, user=manager, labels=labels)
    ids = dict(project.classes.values_list("name", "id"))
    review_flags_publish(
        project_id=project.id,
        item_ids=[item.id for item in items],
        answers=[(ids["cat"], ids["outdoor"]), (ids["dog"],)],
        quality=[0.1, 0.2],
        suggested=[(ids["cat"],), (ids["dog"], ids["outdoor"])],
        confidence=[0.9, 0.8],
        flagged=[item.id for item in items],
    )

    # When the manager opens the review page
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.id}/review/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("pw-manager")
    page.get_by_role("button", name="Log in").click()

    # Then the first item shows its set and the model's, with the given classes chosen
    expect(page.locator("#given")).to_have_text("cat, outdoor")
    expect(page.locator("#suggested")).to_have_text("cat")
    expect(page.locator(".class-button.chosen")).to_have_count(2)

    # Key 3 toggles "outdoor" off (nothing is saved yet), Enter saves {cat}; on the next, Enter keeps {dog}
    page.keyboard.press("3")
    expect(page.locator(".class-button.chosen")).to_have_count(1)
    assert Item.objects.get(id=items[0].id).review_action == ""
    page.keyboard.press("Enter")
    expect(page.locator("#given")).to_have_text("dog")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_for(lambda: Item.objects.get(id=items[1].id).review_action == "keep", 10, "the second decision")
    first = Item.objects.get(id=items[0].id)
    assert (answer_names(first), first.review_action) == (["cat"], "change")
    assert js_errors == []
