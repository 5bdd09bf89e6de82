"""Pages: login required, project creation, upload, labeling page, retrain and export buttons."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from annotator.models import Item, ModelVersion, Project
from annotator.selectors.projects import PROJECT_CREATE_PERMISSION, project_role
from annotator.services.members import membership_add
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_login():
    client = Client()
    for path in ["/", "/projects/1/", "/projects/1/label/"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_page_and_login(user):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_create_project_from_the_page(browser):
    response = browser.post(
        "/", {"name": "Fruit", "labels": "apple, pear", "strategy": "margin", "retrain_every": 5, "input_size": 32}
    )
    project = Project.objects.get(name="Fruit")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.id}/"
    assert list(project.classes.values_list("name", flat=True)) == ["apple", "pear"]


def test_create_project_form_shows_errors(browser):
    response = browser.post(
        "/", {"name": "Fruit", "labels": "a, a", "strategy": "margin", "retrain_every": 5, "input_size": 32}
    )
    assert response.status_code == 200
    assert "given twice" in response.content.decode()
    assert not Project.objects.exists()


NEW_PROJECT = {"name": "Fruit", "labels": "apple, pear", "strategy": "margin", "retrain_every": 5, "input_size": 32}


def test_people_without_the_permission_are_not_offered_the_form_and_get_a_403():
    # Given an annotator of someone's project, who was not given the permission to create projects
    annotator = make_user("annie")
    membership_add(project=make_project(make_user("lead", can_create_projects=True)), user=annotator)
    client = Client()
    client.force_login(annotator)
    # When they open the project list, it lists their projects but offers no "New project" form
    page = client.get("/").content.decode()
    assert "Pets" in page and "New project" not in page and 'name="labels"' not in page
    assert "ask an admin" in page.lower()
    # And when they post the form anyway, they get a readable 403 and no project
    response = client.post("/", NEW_PROJECT)
    assert response.status_code == 403 and "permission to create projects" in response.content.decode()
    assert not Project.objects.filter(name="Fruit").exists()


def test_the_permission_given_to_a_group_lets_its_members_create_projects():
    # Given a group that an admin gave the permission, and a user in it
    group = Group.objects.create(name="Project leads")
    app_label, codename = PROJECT_CREATE_PERMISSION.split(".")
    group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    lead = make_user("lead")
    lead.groups.add(group)
    client = Client()
    client.force_login(lead)
    # Then the page offers the form, and a post creates the project with them as its manager
    assert "New project" in client.get("/").content.decode()
    response = client.post("/", NEW_PROJECT)
    project = Project.objects.get(name="Fruit")
    assert response.status_code == 302 and project_role(user=lead, project=project) == "manager"


def test_upload_form_reports_rejections(browser, user):
    project = make_project(user)
    good = io.BytesIO(png_bytes(1))
    good.name = "good.png"
    bad = io.BytesIO(b"GIF89a broken")
    bad.name = "bad.gif"
    response = browser.post(f"/projects/{project.id}/upload/", {"files": [good, bad]}, follow=True)
    text = response.content.decode()
    assert "Imported 1 images" in text
    assert "Rejected bad.gif" in text
    assert Item.objects.count() == 1


def test_project_and_label_pages_render(browser, user):
    project = make_project(user, labels=["cat", "dog"])
    detail = browser.get(f"/projects/{project.id}/").content.decode()
    assert "Start labeling" in detail and "Retrain now" in detail and "ImageFolder" in detail
    label = browser.get(f"/projects/{project.id}/label/").content.decode()
    assert 'data-label="cat"' in label and 'data-hotkey="1"' in label
    assert 'id="label-config"' in label and "label.js" in label


def test_other_users_cannot_see_a_project(user):
    project = make_project(user)
    client = Client()
    client.force_login(make_user("mallory"))
    assert client.get(f"/projects/{project.id}/").status_code == 404
    assert client.get(f"/projects/{project.id}/label/").status_code == 404
    assert project.name not in client.get("/").content.decode()


def test_retrain_button_and_export_from_the_page(browser, user):
    project = make_project(user)
    response = browser.post(f"/projects/{project.id}/train/", follow=True)
    assert "Retraining scheduled" in response.content.decode()
    response = browser.get(f"/projects/{project.id}/export/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_settings_form_for_managers_only(user):
    project = make_project(user)
    manager = Client()
    manager.force_login(user)
    body = {"labels_per_item": 2, "lease_seconds": 60, "retrain_every": 5, "strategy": "margin"}
    response = manager.post(f"/projects/{project.id}/settings/", body)
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.show_prelabels, project.labels_per_item, project.lease_seconds) == (False, 2, 60)
    assert (project.retrain_every, project.strategy) == (5, "margin")
    page = manager.get(f"/projects/{project.id}/").content.decode()
    assert "Median seconds per label" in page and 'id="settings-form"' in page

    bob = make_user("bob")
    membership_add(project=project, user=bob)
    other = Client()
    other.force_login(bob)
    other.post(f"/projects/{project.id}/settings/", {**body, "labels_per_item": 5, "show_prelabels": "on"})
    project.refresh_from_db()
    assert project.labels_per_item == 2
    assert 'id="settings-form"' not in other.get(f"/projects/{project.id}/").content.decode()


def test_label_page_has_keymap_hints_and_help(user):
    project = make_project(user)
    client = Client()
    client.force_login(user)
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    for key in ['data-hotkey="z"', 'data-hotkey="?"', 'data-hotkey="Enter"', 'data-hotkey="1"', 'id="help"']:
        assert key in page


def test_label_page_shows_the_accuracy_with_its_interval_and_has_the_new_lines(user):
    project = make_project(user)
    client = Client()
    client.force_login(user)
    # Given no model: no model, nothing to announce
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    assert '<div id="model-info">No model yet</div>' in page and '"model_version": null' in page
    # Given version 3 with an interval
    metrics = {"val_accuracy": 0.78, "val_accuracy_low": 0.69, "val_accuracy_high": 0.87, "val_n": 66}
    ModelVersion.objects.create(
        project=project, number=3, status="ready", strategy="entropy", n_labels=66, metrics=metrics
    )
    page = client.get(f"/projects/{project.id}/label/").content.decode()
    # Then the page names it in one format, and has the lines the script fills
    assert '<div id="model-info">Model v3 · accuracy 0.78 ± 0.09 (66 labels)</div>' in page
    assert '"model_version": 3' in page and "js/figures.js" in page
    assert 'id="retrain-info"' in page and '<p id="under-covered" class="warn" hidden>' in page


def test_pages_name_their_icon_and_the_browsers_guess_finds_it(client, db):
    page = client.get("/accounts/login/")
    assert b'rel="icon"' in page.content and b"favicon.svg" in page.content
    redirect = client.get("/favicon.ico")
    assert redirect.status_code == 301 and redirect["Location"].endswith("/static/favicon.svg")


def test_the_new_project_form_offers_every_option_the_api_has():
    # Given someone who may create projects
    lead = make_user("lead", can_create_projects=True)
    client = Client()
    client.force_login(lead)
    page = client.get("/").content.decode()
    for name in ("kind", "model_family", "labels_per_item", "show_prelabels", "lease_seconds", "allow_flips"):
        assert f'name="{name}"' in page, name
    assert "Pretrained backbone: photos" in page  # when to pick which model
    # When they create a multi-label project on the pretrained family, two people per item
    body = {**NEW_PROJECT, "kind": "multi_label", "model_family": "pretrained", "labels_per_item": 2}
    body |= {"show_prelabels": "on", "lease_seconds": 120}
    response = client.post("/", body)
    # Then the project has those settings
    project = Project.objects.get(name="Fruit")
    assert response.status_code == 302
    assert (project.kind, project.model_family, project.labels_per_item) == ("multi_label", "pretrained", 2)
    assert project.show_prelabels and project.lease_seconds == 120 and project.multi_label
    # And a bad choice is a readable form error that creates nothing
    bad = client.post("/", {**NEW_PROJECT, "name": "Odd", "kind": "boxes-someday"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    assert not Project.objects.filter(name="Odd").exists()


def test_the_new_project_form_takes_classes_with_their_hotkeys_and_instructions():
    # Given someone who may create projects, and the form's help saying how to give keys
    lead = make_user("lead", can_create_projects=True)
    client = Client()
    client.force_login(lead)
    page = client.get("/").content.decode()
    assert "cat:c, dog:d, bird" in page and 'name="instructions"' in page and "<textarea" in page
    # When they create a project with two keys chosen, one left to the defaults, a class name with a
    # colon and no key, and instructions
    body = {**NEW_PROJECT, "labels": "cat:c, dog: D , bird, ratio 1:2:", "instructions": "# Rules\n\n- **cats** only\n"}
    response = client.post("/", body)
    # Then the classes have those keys (the rest the first free ones) and the project the instructions
    project = Project.objects.get(name="Fruit")
    assert response.status_code == 302
    classes = list(project.classes.order_by("index").values_list("name", "hotkey"))
    assert classes == [("cat", "c"), ("dog", "d"), ("bird", "1"), ("ratio 1:2", "2")]
    assert project.instructions == "# Rules\n\n- **cats** only"


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("cat:c, dog:c", "Hotkey &#x27;c&#x27; is given twice."),
        ("cat:cc, dog", "Hotkey &#x27;cc&#x27; for &#x27;cat&#x27; must be one letter or digit other than s and z."),
        ("cat:s, dog", "must be one letter or digit other than s and z"),
        ("cat:?, dog", "must be one letter or digit"),
        ("cat, Cat:c", "is given twice (class names are unique whatever their case)"),
        (":c, dog", "A class name must not be empty."),
        (" , ", "A project needs at least one class label."),
    ],
)
def test_bad_classes_on_the_new_project_form_are_readable_errors_that_create_nothing(labels, message):
    # Given someone who may create projects
    lead = make_user("lead", can_create_projects=True)
    client = Client()
    client.force_login(lead)
    # When the classes break a rule of the services
    response = client.post("/", {**NEW_PROJECT, "labels": labels})
    # Then the form says which, next to the field, and no project is made
    page = response.content.decode()
    assert response.status_code == 200 and message in page, page[page.find("errorlist") - 200 :][:800]
    assert '<ul class="errorlist"' in page
    assert not Project.objects.exists()


def test_too_long_instructions_are_a_form_error():
    lead = make_user("lead", can_create_projects=True)
    client = Client()
    client.force_login(lead)
    response = client.post("/", {**NEW_PROJECT, "instructions": "x" * 20_001})
    assert response.status_code == 200 and "at most 20000 characters" in response.content.decode()
    assert not Project.objects.exists()


def test_the_settings_card_changes_instructions_and_flips_and_shows_them(user):
    # Given a project and its manager's settings card, which has every setting the API may change
    project = make_project(user)
    client = Client()
    client.force_login(user)
    page = client.get(f"/projects/{project.id}/").content.decode()
    for name in ("name", "show_prelabels", "prelabel_threshold", "labels_per_item", "lease_seconds"):
        assert f'name="{name}"' in page, name
    for name in ("retrain_every", "strategy", "allow_flips", "instructions"):
        assert f'name="{name}"' in page, name
    settings = {"labels_per_item": 1, "lease_seconds": 300, "retrain_every": 10, "strategy": "entropy"}
    # When the manager writes instructions and allows flips
    text = "Label **cats**.\n\n<script>alert(1)</script>"
    response = client.post(
        f"/projects/{project.id}/settings/", {**settings, "allow_flips": "on", "instructions": text}, follow=True
    )
    # Then both are saved, and the card shows the instructions to edit
    project.refresh_from_db()
    assert "Settings saved." in response.content.decode()
    assert project.allow_flips and project.instructions == text
    assert "Label **cats**.\n\n&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in response.content.decode()
    # And the labeling page renders them as Markdown, the script as text, with the button and its key
    label_page = client.get(f"/projects/{project.id}/label/").content.decode()
    assert "<p>Label <strong>cats</strong>.</p>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in label_page
    assert 'data-hotkey="!"' in label_page and 'id="instructions"' in label_page and "js/instructions.js" in label_page
    # When a post leaves the field out (an older form), they stay; an empty field removes them
    client.post(f"/projects/{project.id}/settings/", settings)
    assert Project.objects.get(id=project.id).instructions == text
    client.post(f"/projects/{project.id}/settings/", {**settings, "instructions": ""})
    project.refresh_from_db()
    assert project.instructions == "" and not project.allow_flips
    # Then the labeling page has no instructions button or dialog
    label_page = client.get(f"/projects/{project.id}/label/").content.decode()
    assert 'id="instructions"' not in label_page and 'data-hotkey="!"' not in label_page
    # And too long instructions are refused, naming the field, and change nothing
    response = client.post(f"/projects/{project.id}/settings/", {**settings, "instructions": "x" * 20_001}, follow=True)
    assert "instructions: Ensure this value has at most 20000 characters" in response.content.decode()
    assert Project.objects.get(id=project.id).instructions == ""
