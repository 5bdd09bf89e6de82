"""The admin console: every list page renders, searched and filtered, in the same number of queries
whatever its number of rows; every action does what it says and says what it did."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotator.models import (
    Annotation,
    AnnotationClass,
    Item,
    Job,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
)
from annotator.selectors.projects import PROJECT_CREATE_PERMISSION, user_can_create_projects
from tests.factories import answer_names, make_project, make_user, store_answer

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "annotator/project",
    "annotator/membership",
    "annotator/labelclass",
    "annotator/item",
    "annotator/annotation",
    "annotator/modelversion",
    "annotator/job",
    "auth/user",
]


def populate(n: int, start: int = 0) -> list[Project]:
    """``n`` projects (every other one multi-label), each with a manager, a ready model version, a
    labeled, flagged, predicted item leased to the manager, an unlabeled item with an expired
    lease, an annotation and a finished CSV export."""
    now = timezone.now()
    projects = []
    for i in range(start, start + n):
        user = make_user(f"user{i}")
        multi = i % 2 == 1
        project = make_project(user, name=f"Project {i}", multi_label=multi)
        cat, dog = LabelClass.objects.filter(project=project).order_by("index")
        version = ModelVersion.objects.create(
            project=project,
            number=1,
            status=ModelVersion.Status.READY,
            strategy=project.strategy,
            n_labels=1,
            progress=1.0,
            metrics={"val_accuracy": 0.5},
        )
        item = Item.objects.create(
            project=project,
            file=f"projects/{project.id}/a{i}.png",
            original_name=f"cat{i}.png",
            width=8,
            height=8,
            sha256=f"{2 * i:064x}",
            status=Item.Status.LABELED,
            labeled_at=now,
            pred_label=dog,
            pred_confidence=0.6,
            pred_version=version,
            lease_user=user,
            lease_until=now + timedelta(hours=1),
            review_status=ReviewStatus.FLAGGED,
            review_reason=ReviewReason.LABEL_ISSUE,
            review_score=0.1,
        )
        store_answer(item, ["cat", "dog"] if multi else ["cat"])
        Item.objects.create(
            project=project,
            file=f"projects/{project.id}/b{i}.png",
            original_name=f"dog{i}.png",
            width=8,
            height=8,
            sha256=f"{2 * i + 1:064x}",
            lease_user=user,
            lease_until=now - timedelta(minutes=1),
        )
        annotation = Annotation.objects.create(item=item, user=user)
        for cls in (cat, dog) if multi else (cat,):
            AnnotationClass.objects.create(annotation=annotation, label_class=cls)
        Job.objects.create(
            project=project,
            kind=Job.Kind.EXPORT,
            status=Job.Status.DONE,
            params={"format": "csv"},
            file=f"exports/project_{project.id}/job-{i}.csv",
            created_by=user,
            finished=now,
        )
        projects.append(project)
    return projects


def changelist(page: str) -> str:
    return f"/admin/{page}/"


def post_action(client, page: str, action: str, ids: list[int]) -> list[str]:
    """Post an action as the changelist's form does; the messages it left."""
    response = client.post(changelist(page), {"action": action, "_selected_action": ids}, follow=True)
    assert response.redirect_chain == [(changelist(page), 302)], response.content[:500]
    return [str(message) for message in response.context["messages"]]


def query_count(client, url: str) -> tuple[int, int]:
    """The queries a list page took, and the rows it showed."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize("page", CHANGELISTS)
def test_changelist_renders_searched_sorted_and_with_every_filter(admin_client, page):
    populate(2)
    response = admin_client.get(changelist(page))
    assert response.status_code == 200
    cl = response.context["cl"]
    assert cl.result_count > 0
    assert admin_client.get(changelist(page), {"q": "1"}).status_code == 200
    assert admin_client.get(changelist(page), {"q": "no such thing"}).status_code == 200
    for column in range(len(cl.list_display)):
        for order in (str(column), f"-{column}"):
            assert admin_client.get(changelist(page), {"o": order}).status_code == 200, (page, order)
    tried = 0
    for spec in cl.filter_specs:
        for choice in spec.choices(cl):
            response = admin_client.get(changelist(page) + choice["query_string"])
            assert response.status_code == 200, (page, choice["query_string"])
            tried += 1
    assert tried >= len(cl.filter_specs) * 2
    if cl.date_hierarchy:
        year = {f"{cl.date_hierarchy}__year": timezone.now().year}
        assert admin_client.get(changelist(page), year).context["cl"].result_count > 0


@pytest.mark.parametrize("page", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(admin_client, page):
    populate(3)
    url = changelist(page)
    admin_client.get(url)  # warm caches (content types, sessions)
    few, few_rows = query_count(admin_client, url)
    populate(27, start=3)
    many, many_rows = query_count(admin_client, url)
    assert many_rows >= 30 > few_rows
    assert many == few, f"{page}: {few} queries for {few_rows} rows, {many} for {many_rows}"


def test_every_change_page_renders(admin_client):
    project = populate(1)[0]
    item = Item.objects.filter(project=project).first()
    objects = {
        "annotator/project": project,
        "annotator/membership": Membership.objects.get(project=project),
        "annotator/labelclass": LabelClass.objects.filter(project=project).first(),
        "annotator/item": item,
        "annotator/annotation": Annotation.objects.get(item=item),
        "annotator/modelversion": ModelVersion.objects.get(project=project),
        "annotator/job": Job.objects.get(project=project),
        "auth/user": project.created_by,
    }
    for page, obj in objects.items():
        assert admin_client.get(f"/admin/{page}/{obj.pk}/change/").status_code == 200, page
    for page in ["annotator/project", "annotator/labelclass", "annotator/item", "auth/user"]:
        assert admin_client.get(f"/admin/{page}/add/").status_code == 200, page


def test_search_finds_an_item_by_id(admin_client):
    populate(3)
    item = Item.objects.order_by("id").last()
    response = admin_client.get(changelist("annotator/item"), {"q": str(item.id)})
    assert item in response.context["cl"].result_list


def test_project_list_shows_counts_model_and_training(admin_client):
    project = populate(1)[0]
    Project.objects.filter(id=project.id).update(training_requested=True)
    response = admin_client.get(changelist("annotator/project"))
    row = response.context["cl"].result_list[0]
    assert (row.n_items, row.n_labeled, row.n_flagged, row.model_number) == (2, 1, 1, 1)
    assert b"requested" in response.content


def test_project_actions(admin_client, admin_user):
    project, other = populate(2)
    page = "annotator/project"

    assert post_action(admin_client, page, "retrain", [project.id]) == ["Retraining scheduled for 1 project(s)."]
    assert Project.objects.get(id=project.id).training_requested
    assert not Project.objects.get(id=other.id).training_requested

    messages = post_action(admin_client, page, "release_stale_leases", [project.id])
    assert messages == ["Released 1 expired lease(s)."]
    assert Item.objects.get(project=project, original_name="dog0.png").lease_user is None
    assert Item.objects.get(project=project, original_name="cat0.png").lease_user is not None  # still held
    assert Item.objects.get(project=other, original_name="dog1.png").lease_user is not None  # not selected


def test_project_scan_action_schedules_a_scan(admin_client, django_capture_on_commit_callbacks):
    project = populate(1)[0]
    with django_capture_on_commit_callbacks() as callbacks:
        messages = post_action(admin_client, "annotator/project", "scan_label_errors", [project.id])
    assert messages == ["Label-error scan scheduled for 1 project(s)."]
    assert len(callbacks) == 1


def test_project_export_action_queues_a_csv_job(admin_client, admin_user):
    project = populate(1)[0]
    messages = post_action(admin_client, "annotator/project", "export_csv", [project.id])
    job = Job.objects.filter(project=project, status=Job.Status.QUEUED).get()
    assert (job.kind, job.params["format"], job.created_by) == (Job.Kind.EXPORT, "csv", admin_user)
    assert messages == [f"Queued 1 CSV export job(s): {job.id}."]


def test_project_delete_action(admin_client):
    project, other = populate(2)
    data = {"action": "delete_selected", "_selected_action": [project.id], "post": "yes"}
    assert admin_client.post(changelist("annotator/project"), data).status_code == 302
    assert list(Project.objects.all()) == [other]


def test_item_release_leases_action(admin_client):
    project = populate(1)[0]
    held, expired = Item.objects.filter(project=project).order_by("id")
    assert post_action(admin_client, "annotator/item", "release_leases", [held.id]) == ["Released 1 lease(s)."]
    held.refresh_from_db()
    expired.refresh_from_db()
    assert (held.lease_user, held.lease_until) == (None, None)
    assert expired.lease_user is not None


def test_item_review_actions(admin_client, admin_user):
    single, multi = populate(2)
    flagged = Item.objects.get(project=single, status=Item.Status.LABELED)
    unlabeled = Item.objects.get(project=single, status=Item.Status.UNLABELED)
    messages = post_action(admin_client, "annotator/item", "review_keep", [flagged.id, unlabeled.id])
    assert messages[0] == "Reviewed: kept the label of 1 item(s)."
    assert messages[1].startswith(f"Not reviewed: {unlabeled.id} (Only labeled items")
    flagged.refresh_from_db()
    assert (flagged.review_status, flagged.review_action) == (ReviewStatus.REVIEWED, ReviewAction.KEEP)
    assert flagged.reviewed_by == admin_user

    messages = post_action(admin_client, "annotator/item", "review_ambiguous", [flagged.id])
    assert messages == ["Reviewed: marked ambiguous 1 item(s)."]
    flagged.refresh_from_db()
    assert flagged.review_status == ReviewStatus.AMBIGUOUS

    multi_item = Item.objects.get(project=multi, status=Item.Status.LABELED)
    messages = post_action(admin_client, "annotator/item", "review_keep", [multi_item.id])
    assert messages == ["Reviewed: kept the label of 1 item(s)."]
    multi_item.refresh_from_db()
    assert (multi_item.review_status, answer_names(multi_item, "reviewed")) == (ReviewStatus.REVIEWED, ["cat", "dog"])


def test_job_rerun_action_and_download_link(admin_client, admin_user):
    project = populate(1)[0]
    export = Job.objects.get(project=project)
    imported = Job.objects.create(project=project, kind=Job.Kind.IMPORT, params={"folder": "/data"})
    running = Job.objects.create(project=project, kind=Job.Kind.EXPORT, status=Job.Status.RUNNING, params={})

    response = admin_client.get(changelist("annotator/job"))
    assert reverse("api-job-download", kwargs={"job_id": export.id}).encode() in response.content
    assert reverse("api-job-download", kwargs={"job_id": running.id}).encode() not in response.content

    messages = post_action(admin_client, "annotator/job", "rerun", [export.id, imported.id])
    assert messages == ["Queued 1 export job(s) again; skipped 1 import job(s)."]
    again = Job.objects.order_by("-id").first()
    assert (again.kind, again.params, again.status, again.created_by) == (
        Job.Kind.EXPORT,
        export.params,
        Job.Status.QUEUED,
        admin_user,
    )
    assert Job.objects.filter(kind=Job.Kind.IMPORT).count() == 1


def test_model_version_columns_and_no_adding(admin_client):
    project = populate(1)[0]
    ModelVersion.objects.create(
        project=project,
        number=2,
        status=ModelVersion.Status.FAILED,
        strategy=project.strategy,
        n_labels=3,
        progress=0.25,
        error="CUDA out of memory " * 20,
    )
    response = admin_client.get(changelist("annotator/modelversion"))
    assert b'<td class="field-val_accuracy">0.50</td>' in response.content and b"25%" in response.content
    assert b"CUDA out of memory" in response.content and b"\xe2\x80\xa6" in response.content  # truncated
    version = ModelVersion.objects.get(project=project, number=1)
    page = admin_client.get(f"/admin/annotator/modelversion/{version.id}/change/")
    assert b"&quot;val_accuracy&quot;: 0.5" in page.content
    assert admin_client.get("/admin/annotator/modelversion/add/").status_code == 403


def test_user_page_lists_project_memberships(admin_client):
    project = populate(1)[0]
    response = admin_client.get(f"/admin/auth/user/{project.created_by_id}/change/")
    assert b"project memberships" in response.content.lower()
    assert project.name.encode() in response.content


def test_admins_grant_the_project_creation_permission_on_the_user_and_group_pages(admin_client):
    # Given the permission that lets people create projects
    app_label, codename = PROJECT_CREATE_PERMISSION.split(".")
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    user = make_user("lead")
    # Then the admin's user page and group page both offer it
    for url in (f"/admin/auth/user/{user.id}/change/", "/admin/auth/group/add/"):
        response = admin_client.get(url)
        assert response.status_code == 200 and f'value="{permission.id}"' in response.content.decode(), url
    # And a group given it on the group page passes it on to its members
    response = admin_client.post("/admin/auth/group/add/", {"name": "Project leads", "permissions": [permission.id]})
    assert response.status_code == 302
    user.groups.add(Group.objects.get(name="Project leads"))
    assert user_can_create_projects(user=get_user_model().objects.get(id=user.id))


def test_the_admin_account_that_make_run_creates_may_create_projects(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-password")
    call_command("ensure_admin", stdout=io.StringIO())
    assert user_can_create_projects(user=get_user_model().objects.get(username="boss"))
