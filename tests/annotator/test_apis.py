"""The REST API: every endpoint of issue 2 with its exact shapes and its error cases."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services
from annotator.models import DEFAULT_STRATEGY, Annotation, Item, ModelVersion, Project
from tests.factories import make_user, png_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def files(*pairs):
    out = []
    for name, data in pairs:
        f = io.BytesIO(data)
        f.name = name
        out.append(f)
    return {"files": out}


@pytest.fixture
def project(api):
    response = api.post("/api/projects/", {"name": "Pets", "labels": ["cat", "dog"]}, format="json")
    assert response.status_code == 201
    return response.json()


def test_every_endpoint_needs_login():
    client = APIClient()
    for path in ["/api/projects/", "/api/projects/1/next/", "/api/projects/1/model-versions/", "/api/items/1/"]:
        assert client.get(path).status_code in (401, 403)
    assert client.post("/api/projects/", {"name": "x", "labels": ["a"]}, format="json").status_code in (401, 403)


def test_creating_a_project_needs_the_permission():
    # Given a logged-in user that no admin gave the permission to create projects
    client = APIClient()
    client.force_authenticate(make_user("bob"))
    # When they create a project
    response = client.post("/api/projects/", {"name": "Mine", "labels": ["a", "b"]}, format="json")
    # Then they get 403 with a reason in "detail", and no project is made
    assert response.status_code == 403
    assert "permission to create projects" in response.json()["detail"]
    assert not Project.objects.exists()
    # And they can still list theirs
    assert client.get("/api/projects/").status_code == 200


def test_token_auth_works(user):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/projects/").status_code == 200


def test_create_project(project):
    assert project["name"] == "Pets"
    assert project["labels"] == ["cat", "dog"]
    assert isinstance(project["id"], int)
    assert project["retrain_every"] == 10 and project["strategy"] == DEFAULT_STRATEGY == "margin"


def test_create_project_with_options(api):
    body = {"name": "Photos", "labels": ["a", "b", "c"], "model_family": "pretrained", "allow_flips": True}
    body |= {"multi_label": True, "labels_per_item": 3, "show_prelabels": False, "lease_seconds": 60}
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["model_family"] == "pretrained" and data["allow_flips"] and data["multi_label"]
    assert data["labels_per_item"] == 3 and data["show_prelabels"] is False and data["lease_seconds"] == 60


def test_create_project_with_torchscript_backbone(api, settings, tmp_path):
    (tmp_path / "net.pt").write_bytes(b"not checked until training")
    settings.IMPORT_ROOTS = [str(tmp_path)]
    body = {"name": "Own", "labels": ["a", "b"], "model_family": "torchscript"}
    body["backbone_path"] = str(tmp_path / "net.pt")
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["model_family"] == "torchscript"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "x", "labels": []},
        {"name": "x", "labels": ["a", "a"]},
        {"labels": ["a"]},
        {"name": "x", "labels": ["a"], "strategy": "psychic"},
        {"name": "x", "labels": [3]},
        {"name": "x", "labels": ["a"], "model_family": "vit-huge"},
        {"name": "x", "labels": ["a"], "model_family": "torchscript"},
        {"name": "x", "labels": ["a"], "model_family": "torchscript", "backbone_path": "/etc/passwd"},
        {"name": "x", "labels": ["a"], "backbone_path": "net.pt"},
        {"name": "x", "labels": ["a", "b"], "labels_per_item": 0},
        {"name": "x", "labels": ["a"], "multi_label": True},
        {"name": "x", "labels": ["a" * 101]},
    ],
)
def test_create_project_rejects_bad_input(api, body):
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert response.json()


def test_upload_images_and_zip(api, project):
    response = api.post(
        f"/api/projects/{project['id']}/items/",
        files(
            ("a.png", png_bytes(1)),
            ("bad.png", b"\x89PNG\r\n\x1a\nnope"),
            ("set.zip", zip_bytes({"b.png": png_bytes(2), "a.png": png_bytes(1)})),
        ),
        format="multipart",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["imported"], body["duplicates"]) == (2, 1)
    assert [r["name"] for r in body["rejected"]] == ["bad.png"]
    assert body["rejected"][0]["error"]


def test_upload_without_files_is_400(api, project):
    response = api.post(f"/api/projects/{project['id']}/items/", {}, format="multipart")
    assert response.status_code == 400
    assert "files" in response.json()


def test_next_leases_and_returns_204_when_empty(api, project):
    api.post(f"/api/projects/{project['id']}/items/", files(("a.png", png_bytes(1))), format="multipart")
    response = api.get(f"/api/projects/{project['id']}/next/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"id", "image_url", "prelabel"}
    assert body["prelabel"] is None
    image = api.get(body["image_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert api.get(f"/api/projects/{project['id']}/next/?exclude={body['id']}").status_code == 204
    bob = APIClient()
    bob.force_authenticate(make_user("bob"))
    # bob is not a member: the project is invisible to him.
    assert bob.get(f"/api/projects/{project['id']}/next/").status_code == 404


def test_two_annotators_get_different_items(api, project, user):
    pid = project["id"]
    api.post(f"/api/projects/{pid}/items/", files(("a.png", png_bytes(1)), ("b.png", png_bytes(2))), format="multipart")
    bob = make_user("bob")
    services.membership_add(project=services.Project.objects.get(id=pid), user=bob)
    other = APIClient()
    other.force_authenticate(bob)
    first = api.get(f"/api/projects/{pid}/next/").json()["id"]
    second = other.get(f"/api/projects/{pid}/next/").json()["id"]
    assert first != second
    assert other.get(f"/api/projects/{pid}/next/?exclude={second}").status_code == 204


def test_annotation_post_idempotent_and_validated(api, project):
    api.post(f"/api/projects/{project['id']}/items/", files(("a.png", png_bytes(1))), format="multipart")
    item_id = api.get(f"/api/projects/{project['id']}/next/").json()["id"]
    url = f"/api/items/{item_id}/annotations/"
    first = api.post(url, {"label": "cat", "client_token": "tok-1", "duration_ms": 1234}, format="json")
    assert first.status_code == 201 and "id" in first.json()
    again = api.post(url, {"label": "cat", "client_token": "tok-1", "duration_ms": 1234}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Annotation.objects.count() == 1
    bad = api.post(url, {"label": "cow"}, format="json")
    assert bad.status_code == 400
    assert "cat" in bad.json()["detail"] and "dog" in bad.json()["detail"]
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post("/api/items/999999/annotations/", {"label": "cat"}, format="json").status_code == 404
    assert Item.objects.get(id=item_id).label.name == "cat"


def test_skip(api, project):
    api.post(f"/api/projects/{project['id']}/items/", files(("a.png", png_bytes(1))), format="multipart")
    item_id = api.get(f"/api/projects/{project['id']}/next/").json()["id"]
    assert api.post(f"/api/items/{item_id}/skip/").status_code == 200
    assert Item.objects.get(id=item_id).status == "skipped"


def test_model_versions_and_train(api, project):
    pid = project["id"]
    assert api.get(f"/api/projects/{pid}/model-versions/").json() == []
    assert api.post(f"/api/projects/{pid}/train/").status_code == 202
    version = services.training_begin(project_id=pid)
    services.model_version_fail(version=version, error="boom")
    versions = api.get(f"/api/projects/{pid}/model-versions/").json()
    assert versions[0]["number"] == 1 and versions[0]["status"] == "failed" and versions[0]["error"] == "boom"
    assert set(versions[0]) >= {"number", "status", "n_labels", "metrics", "created", "finished"}
    assert ModelVersion.objects.count() == 1


def test_annotator_cannot_train_import_or_export(project):
    bob = make_user("bob")
    services.membership_add(project=services.Project.objects.get(id=project["id"]), user=bob)
    client = APIClient()
    client.force_authenticate(bob)
    pid = project["id"]
    assert client.post(f"/api/projects/{pid}/train/").status_code == 403
    assert client.get(f"/api/projects/{pid}/export/?format=csv").status_code == 403
    assert (
        client.post(f"/api/projects/{pid}/items/", files(("a.png", png_bytes(1))), format="multipart").status_code
        == 403
    )
    assert client.get(f"/api/projects/{pid}/next/").status_code == 204


def test_export_csv_and_imagefolder(api, project, user):
    pid = project["id"]
    api.post(
        f"/api/projects/{pid}/items/",
        files(("a.png", png_bytes(1)), ("b.png", png_bytes(2)), ("c.png", png_bytes(3))),
        format="multipart",
    )
    labels = {}
    for label in ["cat", "dog"]:
        item = api.get(f"/api/projects/{pid}/next/").json()
        api.post(f"/api/items/{item['id']}/annotations/", {"label": label}, format="json")
        labels[item["filename"]] = label
    response = api.get(f"/api/projects/{pid}/export/?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["filename"]: r["label"] for r in rows} == labels
    assert {r["annotator"] for r in rows} == {"alice"}
    assert list(rows[0]) == ["filename", "label", "annotator", "created"]

    response = api.get(f"/api/projects/{pid}/export/?format=imagefolder")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(f"{label}/{name}" for name, label in labels.items())
    assert api.get(f"/api/projects/{pid}/export/?format=pdf").status_code == 400


def image_file(fmt: str, mode: str = "RGB", size: tuple[int, int] = (30, 20), **options) -> bytes:
    """A small image in ``fmt`` with a green corner pixel, so that a rendition can be checked."""
    import numpy as np
    from PIL import Image

    if mode == "I;16":
        image = Image.fromarray(np.full(size[::-1], 40_000, dtype=np.uint16))
    else:
        image = Image.new(mode, size, "red")
        image.putpixel((0, 0), (0, 255, 0) if mode == "RGB" else 0)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_tiff_items_are_shown_as_a_png_made_once_and_other_formats_as_they_are(api, project):
    from PIL import Image

    # Given a TIFF turned a quarter by its orientation, a 16-bit TIFF, and one file of each format browsers show
    uploads = {
        "turned.tif": image_file("TIFF", tiffinfo={274: 6}),
        "deep.tiff": image_file("TIFF", mode="I;16", size=(8, 6)),
        "a.png": image_file("PNG"),
        "a.jpg": image_file("JPEG"),
        "a.gif": image_file("GIF", mode="L"),
        "a.bmp": image_file("BMP"),
        "a.webp": image_file("WEBP", lossless=True),
    }
    response = api.post(f"/api/projects/{project['id']}/items/", files(*uploads.items()), format="multipart")
    assert response.json()["imported"] == 7, response.content
    items = {i.original_name: i for i in Item.objects.filter(project_id=project["id"])}

    # When their images are read
    def read(name):
        response = api.get(f"/api/items/{items[name].id}/image/")
        assert response.status_code == 200 and "private" in response["Cache-Control"]
        return response["Content-Type"], b"".join(response.streaming_content)

    # Then a TIFF comes as a PNG as displayed: turned, with the item's width and height
    content_type, data = read("turned.tif")
    shown = Image.open(io.BytesIO(data))
    assert (content_type, shown.format) == ("image/png", "PNG")
    assert shown.size == (items["turned.tif"].width, items["turned.tif"].height) == (20, 30)
    assert shown.convert("RGB").getpixel((19, 0)) == (0, 255, 0)
    # And the 16-bit one as an 8-bit grey PNG of the same brightness
    content_type, data = read("deep.tiff")
    deep = Image.open(io.BytesIO(data))
    assert content_type == "image/png" and deep.size == (8, 6)
    assert deep.convert("L").getpixel((3, 3)) == round(40_000 * 255 / 65535)
    # And the PNG is made once, stored beside the original, which stays as it was
    stored = items["turned.tif"].file
    rendition = Path(stored.path).with_name(Path(stored.path).stem + ".display.png")
    made = rendition.stat().st_mtime_ns
    assert read("turned.tif")[1] == rendition.read_bytes() and rendition.stat().st_mtime_ns == made
    assert Path(stored.path).read_bytes() == uploads["turned.tif"]
    # And every other format is served as stored, with its own type
    types = {"a.png": "image/png", "a.jpg": "image/jpeg", "a.gif": "image/gif", "a.bmp": "image/bmp"}
    for name, expected in {**types, "a.webp": "image/webp"}.items():
        assert read(name) == (expected, uploads[name]), name
    # And only members get it
    outsider = APIClient()
    outsider.force_authenticate(make_user("mallory"))
    assert outsider.get(f"/api/items/{items['turned.tif'].id}/image/").status_code == 404
