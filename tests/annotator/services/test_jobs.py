"""Background imports and exports (``Job``) on a real Celery worker: progress, summaries, files, permissions."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from annotator import paths
from annotator.models import Item, Job
from annotator.services.imports import items_import_folder
from annotator.services.jobs import job_export_request, job_import_request
from annotator.services.members import membership_add
from tests.factories import label_of, make_project, make_user, png_bytes, wait_for, zip_bytes


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def finished(job_id: int) -> Job:
    return wait_for(
        lambda: Job.objects.filter(id=job_id, status__in=[Job.Status.DONE, Job.Status.FAILED]).first(),
        60,
        f"job {job_id} to finish",
    )


@pytest.fixture
def world(transactional_db, settings, tmp_path):
    settings.IMPORT_ROOTS = [str(tmp_path / "root")]
    manager = make_user("manager")
    annotator = make_user("annotator")
    stranger = make_user("stranger")
    project = make_project(manager)
    membership_add(project=project, user=annotator)
    folder = tmp_path / "root" / "batch"
    (folder / "cat").mkdir(parents=True)
    (folder / "a.png").write_bytes(png_bytes(1))
    (folder / "b.png").write_bytes(png_bytes(2))
    (folder / "cat" / "c.png").write_bytes(png_bytes(3))
    (folder / "notes.txt").write_text("not an image")
    return {"manager": manager, "annotator": annotator, "stranger": stranger, "project": project, "folder": folder}


def test_folder_import_job_reaches_done_with_progress_and_summary(celery_worker, world):
    # Given a folder under IMPORT_ROOTS with two images, one in a class folder, and a text file
    api = client_for(world["manager"])
    # When a manager queues its import
    response = api.post(
        f"/api/projects/{world['project'].id}/imports/", {"folder": str(world["folder"])}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    # Then the worker imports it, with the progress at 1 and the summary stored
    job = finished(response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    assert job.progress == 1.0
    assert job.summary["imported"] == 3 and job.summary["labeled"] == 1 and job.summary["duplicates"] == 0
    assert [r["name"] for r in job.summary["rejected"]] == ["notes.txt"]
    assert Item.objects.filter(project=world["project"]).count() == 3
    body = api.get(f"/api/jobs/{job.id}/").json()
    assert body["status"] == "done" and body["progress"] == 1.0 and body["download_url"] is None
    assert [j["id"] for j in api.get(f"/api/projects/{world['project'].id}/jobs/").json()] == [job.id]


def test_folder_outside_import_roots_is_refused(world, tmp_path):
    api = client_for(world["manager"])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    response = api.post(f"/api/projects/{world['project'].id}/imports/", {"folder": str(outside)}, format="json")
    assert response.status_code == 400
    assert str(tmp_path / "root") in response.json()["detail"]
    traversal = str(world["folder"]) + "/../../elsewhere"
    response = api.post(f"/api/projects/{world['project'].id}/imports/", {"folder": traversal}, format="json")
    assert response.status_code == 400
    assert not Job.objects.exists()


def test_annotator_may_not_import(world):
    response = client_for(world["annotator"]).post(
        f"/api/projects/{world['project'].id}/imports/", {"folder": str(world["folder"])}, format="json"
    )
    assert response.status_code == 403


def test_manifest_import_brings_labels(celery_worker, world):
    # Given a manifest naming files relative to the folder, with labels (one unknown, one missing file)
    manifest = "filename,label\na.png,dog\nb.png,\ncat/c.png,cat\nmissing.png,cat\na.png,bird\n"
    upload = io.BytesIO(manifest.encode())
    upload.name = "manifest.csv"
    api = client_for(world["manager"])
    response = api.post(
        f"/api/projects/{world['project'].id}/imports/",
        {"folder": str(world["folder"]), "manifest": upload},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job = finished(response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    assert job.summary["imported"] == 3 and job.summary["labeled"] == 2
    assert sorted(r["name"] for r in job.summary["rejected"]) == ["a.png", "missing.png"]
    labels = {i.original_name: label_of(i) for i in Item.objects.filter(project=world["project"])}
    assert labels == {"a.png": "dog", "b.png": None, "cat/c.png": "cat"}


def _import_labeled(world) -> None:
    uploads = [("cat/x.png", png_bytes(10)), ("dog/y.png", png_bytes(11)), ("z.png", png_bytes(12))]
    folder = world["folder"].parent / "labeled"
    for name, data in uploads:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    items_import_folder(project=world["project"], root=folder, user=world["manager"])


@pytest.mark.parametrize("fmt", ["csv", "imagefolder"])
def test_export_job_writes_a_downloadable_file(celery_worker, world, fmt):
    # Given two labeled items and one unlabeled
    _import_labeled(world)
    api = client_for(world["manager"])
    # When a manager queues an export
    response = api.post(f"/api/projects/{world['project'].id}/exports/", {"format": fmt}, format="json")
    assert response.status_code == 202, response.content
    job = finished(response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    assert job.summary["items"] == 2 and job.file.startswith("exports/")
    # Then the file downloads for the manager, 403 for an annotator, 404 for anyone else
    body = api.get(f"/api/jobs/{job.id}/").json()
    assert body["download_url"] == f"/api/jobs/{job.id}/download/"
    download = api.get(body["download_url"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        assert sorted((r["filename"], r["label"]) for r in rows) == [("cat/x.png", "cat"), ("dog/y.png", "dog")]
    else:
        names = sorted(zipfile.ZipFile(io.BytesIO(content)).namelist())
        assert names == ["cat/x.png", "dog/y.png"]
    assert client_for(world["annotator"]).get(body["download_url"]).status_code == 403
    assert client_for(world["annotator"]).get(f"/api/jobs/{job.id}/").status_code == 403
    assert client_for(world["stranger"]).get(body["download_url"]).status_code == 404
    assert client_for(world["stranger"]).get(f"/api/jobs/{job.id}/").status_code == 404


def test_csv_export_with_images_zips_them_alongside(celery_worker, world):
    _import_labeled(world)
    api = client_for(world["manager"])
    response = api.post(
        f"/api/projects/{world['project'].id}/exports/", {"format": "csv", "images": True}, format="json"
    )
    job = finished(response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(f"/api/jobs/{job.id}/download/").streaming_content)))
    rows = list(csv.DictReader(io.StringIO(archive.read("pets-labels.csv").decode())))
    assert len(rows) == 2
    for row in rows:
        assert archive.read(row["filename"])[:4] == b"\x89PNG"


def test_unknown_export_format_is_refused(world):
    response = client_for(world["manager"]).post(
        f"/api/projects/{world['project'].id}/exports/", {"format": "xml"}, format="json"
    )
    assert response.status_code == 400


def test_job_whose_folder_disappeared_fails_with_the_error(celery_worker, world):
    # Given an import queued for a folder that is removed before the worker gets to it
    with transaction.atomic():
        job = job_import_request(project=world["project"], user=world["manager"], folder=str(world["folder"]))
        shutil.rmtree(world["folder"])
    # Then the job ends failed, naming the folder
    job = finished(job.id)
    assert job.status == Job.Status.FAILED
    assert "is not a folder" in job.error and job.finished is not None


def test_admin_lists_jobs_and_reruns_exports(world, client):
    admin_user = make_user("root", superuser=True)
    client.force_login(admin_user)
    with transaction.atomic():
        job = job_export_request(project=world["project"], user=world["manager"], fmt="jsonl", images=True)
    assert client.get("/admin/annotator/job/?q=a").status_code == 200
    client.post("/admin/annotator/job/", {"action": "rerun", "_selected_action": [job.id]})
    again = Job.objects.exclude(id=job.id).get()
    assert again.kind == Job.Kind.EXPORT and again.params == job.params and again.created_by == admin_user


def test_project_page_shows_the_job_forms_to_managers_only(world, client):
    client.force_login(world["manager"])
    page = client.get(f"/projects/{world['project'].id}/").content.decode()
    assert 'id="jobs"' in page and "js/jobs.js" in page
    client.force_login(world["annotator"])
    assert 'id="jobs"' not in client.get(f"/projects/{world['project'].id}/").content.decode()


def upload(name: str, data: bytes) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def test_uploaded_files_import_in_the_background(celery_worker, world):
    # Given an upload of an image, a zip with a labeled member and a traversal member, and a text file
    archive = zip_bytes({"cat/z1.png": png_bytes(11), "z2.png": png_bytes(12), "../evil.png": png_bytes(13)})
    files = [upload("one.png", png_bytes(10)), upload("batch.zip", archive), upload("notes.txt", b"hello")]
    api = client_for(world["manager"])
    # When a manager sends them to the background import
    response = api.post(f"/api/projects/{world['project'].id}/imports/", {"files": files}, format="multipart")
    # Then the call returns at once with a queued job, and the worker imports them with a summary
    assert response.status_code == 202, response.content
    job = finished(response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    assert job.summary["imported"] == 3 and job.summary["labeled"] == 1
    assert sorted(r["name"] for r in job.summary["rejected"]) == ["batch.zip/../evil.png", "notes.txt"]
    names = set(Item.objects.filter(project=world["project"]).values_list("original_name", flat=True))
    assert names == {"one.png", "cat/z1.png", "z2.png"}
    # And the staged copies are gone once imported
    assert not (paths.data_dir() / "jobs" / f"upload_{job.id}").exists()


def test_page_upload_goes_to_the_background_when_asked_or_large(world, client, settings):
    # Given a manager on the project page
    client.force_login(world["manager"])
    url = f"/projects/{world['project'].id}/upload/"
    # When they upload with "in the background" ticked
    response = client.post(url, {"files": [upload("a.png", png_bytes(21))], "background": "1"}, follow=True)
    # Then a queued import job holds the file and the page says so; nothing is imported in the request
    job = Job.objects.get(project=world["project"])
    assert job.kind == Job.Kind.IMPORT and job.params["names"] == ["a.png"]
    assert "runs in the background" in response.content.decode()
    assert Item.objects.filter(project=world["project"]).count() == 0
    # And an upload over IMPORT_BACKGROUND_BYTES goes there without being asked; a small one imports at once
    settings.IMPORT_BACKGROUND_BYTES = 10
    client.post(url, {"files": [upload("b.png", png_bytes(22))]})
    assert Job.objects.filter(project=world["project"]).count() == 2
    settings.IMPORT_BACKGROUND_BYTES = 10**9
    client.post(url, {"files": [upload("c.png", png_bytes(23))]})
    assert Job.objects.filter(project=world["project"]).count() == 2
    assert list(Item.objects.filter(project=world["project"]).values_list("original_name", flat=True)) == ["c.png"]


def test_an_import_call_needs_a_folder_or_files(world):
    response = client_for(world["manager"]).post(f"/api/projects/{world['project'].id}/imports/", {}, format="json")
    assert response.status_code == 400
    assert "attach files" in response.json()["folder"][0]
