"""``annotator/api/items.py``: uploads, the next item, skip and release, images, and which pre-labels are served."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotator.models import Item, ModelVersion, Project
from annotator.services.leasing import item_lease_next
from annotator.services.members import membership_add
from annotator.services.projects import project_settings_update
from annotator.services.training import training_begin, training_request
from tests.annotator.helpers import files, make_items
from tests.factories import make_project, make_user, png_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def prelabel(item, version, name: str, confidence: float | None) -> None:
    label_class = item.project.classes.get(name=name)
    Item.objects.filter(id=item.id).update(pred_label=label_class, pred_confidence=confidence, pred_version=version)


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


def test_hidden_prelabels_are_not_served_and_count_as_none(user):
    # Given a project with a pre-label on its item, and pre-labels hidden
    project = make_project(user)
    item = make_items(project, 1)[0]
    cat = project.classes.get(name="cat")
    training_request(project_id=project.id)
    version = training_begin(project_id=project.id)
    Item.objects.filter(id=item.id).update(pred_label=cat, pred_confidence=0.9, pred_version=version)
    api = APIClient()
    api.force_authenticate(user)
    assert api.get(f"/api/projects/{project.id}/next/").json()["prelabel"]["label"] == "cat"
    Project.objects.filter(id=project.id).update(show_prelabels=False)

    # Then /next omits it, and the annotation records no pre-label
    assert api.get(f"/api/projects/{project.id}/next/").json()["prelabel"] is None
    response = api.post(f"/api/items/{item.id}/annotations/", {"label": "cat"}, format="json")
    assert response.json()["prelabel"] == "none"


def test_prelabels_under_the_projects_threshold_are_served_as_unsure(user):
    # Given a project whose threshold is 0.6, and pre-labels just under it, at it, and above it
    project = make_project(user, prelabel_threshold=0.6)
    under, at, above = make_items(project, 3)
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    prelabel(under, version, "dog", 0.59)
    prelabel(at, version, "cat", 0.6)
    prelabel(above, version, "cat", 0.95)
    api = APIClient()
    api.force_authenticate(user)

    # When they are served by /next (in id order) and read one by one
    served: list[dict] = []
    for _ in range(3):
        held = ",".join(str(s["id"]) for s in served)
        served.append(api.get(f"/api/projects/{project.id}/next/?exclude={held}").json())
    # Then only the one under the threshold is unsure, in /next and in the item read
    assert [(s["id"], s["prelabel"]["unsure"]) for s in served] == [(under.id, True), (at.id, False), (above.id, False)]
    assert api.get(f"/api/items/{under.id}/").json()["prelabel"]["unsure"] is True
    assert api.get(f"/api/items/{above.id}/").json()["prelabel"]["unsure"] is False
    # And an undone label brings its item back with its unsure flag
    api.post(f"/api/items/{under.id}/annotations/", {"label": "cat"}, format="json")
    undone = api.post(f"/api/projects/{project.id}/undo/")
    assert undone.status_code == 200 and undone.json()["prelabel"] == {
        "label": "dog",
        "confidence": 0.59,
        "model_version": 1,
        "probs": None,
        "unsure": True,
    }
    # And a lower threshold makes it a plain suggestion
    project_settings_update(project=project, prelabel_threshold=0.5)
    assert api.get(f"/api/items/{under.id}/").json()["prelabel"]["unsure"] is False


def test_hidden_prelabels_reach_no_annotator_anywhere_but_managers_still_see_them(user):
    # Given a project with a model's guess, probabilities and score on every item, pre-labels hidden,
    # a manager (alice) and an annotator (bob)
    project = make_project(user)
    items = make_items(project, 3)
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    cat = project.classes.get(name="cat")
    Item.objects.filter(project=project).update(
        pred_label=cat, pred_confidence=0.9, pred_probs=[0.9, 0.1], pred_version=version, score=0.3
    )
    Project.objects.filter(id=project.id).update(show_prelabels=False)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    annotator, manager = APIClient(), APIClient()
    annotator.force_authenticate(bob)
    manager.force_authenticate(user)
    hidden = {"prelabel": None, "score": None}

    # Then the annotator's item list, item reads, /next and undo carry no prediction and no score
    listed = annotator.get(f"/api/projects/{project.id}/items/")
    assert listed.status_code == 200
    assert [{k: r[k] for k in hidden} for r in listed.json()["results"]] == [hidden] * 3
    assert {k: annotator.get(f"/api/items/{items[0].id}/").json()[k] for k in hidden} == hidden
    served = annotator.get(f"/api/projects/{project.id}/next/").json()
    assert {k: served[k] for k in hidden} == hidden
    annotator.post(f"/api/items/{served['id']}/annotations/", {"label": "dog"}, format="json")
    undone = annotator.post(f"/api/projects/{project.id}/undo/").json()
    assert undone["id"] == served["id"] and {k: undone[k] for k in hidden} == hidden
    # And no filter or order on the model's guess or score is open to them
    for query in ["predicted=cat", "predicted=dog", "min_score=0", "max_score=1", "order=-score"]:
        response = annotator.get(f"/api/projects/{project.id}/items/?{query}")
        assert response.status_code == 400, query
        assert "hides the model's pre-labels" in str(response.json()), query
    # And the review and the exports (which carry predictions) are the managers' only
    assert annotator.get(f"/api/projects/{project.id}/review/next/").status_code == 403
    assert annotator.get(f"/api/projects/{project.id}/export/?format=jsonl").status_code == 403

    # But a manager still sees and filters on them
    rows = manager.get(f"/api/projects/{project.id}/items/?predicted=cat&order=-score").json()["results"]
    assert len(rows) == 3 and rows[0]["prelabel"]["label"] == "cat" and rows[0]["score"] == 0.3
    assert manager.get(f"/api/items/{items[0].id}/").json()["prelabel"]["probs"] == [0.9, 0.1]
    assert manager.get(f"/api/projects/{project.id}/items/?predicted=dog").json()["count"] == 0
    # And with pre-labels shown, the annotator sees them too
    Project.objects.filter(id=project.id).update(show_prelabels=True)
    assert annotator.get(f"/api/items/{items[0].id}/").json()["prelabel"]["label"] == "cat"
    assert annotator.get(f"/api/projects/{project.id}/items/?predicted=cat").json()["count"] == 3


def test_skip_and_release_sent_again_change_nothing_more(user):
    # Given alice's skip and release of items that bob leased in between (her retries arrive late)
    project = make_project(user)
    skipped, released = make_items(project, 2)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    api = APIClient()
    api.force_authenticate(user)
    assert item_lease_next(project=project, user=user).id == skipped.id
    assert api.post(f"/api/items/{skipped.id}/skip/").status_code == 200
    assert item_lease_next(project=project, user=user).id == released.id
    assert api.post(f"/api/items/{released.id}/release/").status_code == 200
    assert item_lease_next(project=project, user=bob).id == released.id

    # When both are sent again
    assert api.post(f"/api/items/{skipped.id}/skip/").status_code == 200
    assert api.post(f"/api/items/{released.id}/release/").status_code == 200

    # Then the skipped item is still skipped, and bob keeps his lease
    skipped.refresh_from_db()
    released.refresh_from_db()
    assert skipped.status == "skipped" and skipped.lease_user_id is None
    assert released.lease_user_id == bob.id and released.status == "unlabeled"


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
    membership_add(project=Project.objects.get(id=pid), user=bob)
    other = APIClient()
    other.force_authenticate(bob)
    first = api.get(f"/api/projects/{pid}/next/").json()["id"]
    second = other.get(f"/api/projects/{pid}/next/").json()["id"]
    assert first != second
    assert other.get(f"/api/projects/{pid}/next/?exclude={second}").status_code == 204


def test_skip(api, project):
    api.post(f"/api/projects/{project['id']}/items/", files(("a.png", png_bytes(1))), format="multipart")
    item_id = api.get(f"/api/projects/{project['id']}/next/").json()["id"]
    assert api.post(f"/api/items/{item_id}/skip/").status_code == 200
    assert Item.objects.get(id=item_id).status == "skipped"


def test_tiff_items_are_shown_as_a_lossless_webp_made_on_import_and_other_formats_as_they_are(api, project):
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
    stored = items["turned.tif"].file
    rendition = Path(stored.path).with_name(Path(stored.path).stem + ".display.webp")
    assert rendition.is_file() and items["turned.tif"].display.endswith(".display.webp")  # made on import
    made = rendition.stat().st_mtime_ns

    # When their images are read
    def read(name, query=""):
        response = api.get(f"/api/items/{items[name].id}/image/{query}")
        assert response.status_code == 200 and response["Cache-Control"] == "private, max-age=31536000, immutable"
        return response["Content-Type"], b"".join(response.streaming_content)

    # Then a TIFF comes as a lossless WebP as displayed: turned, with the item's width and height
    content_type, data = read("turned.tif")
    shown = Image.open(io.BytesIO(data))
    assert (content_type, shown.format) == ("image/webp", "WEBP")
    assert shown.size == (items["turned.tif"].width, items["turned.tif"].height) == (20, 30)
    assert shown.convert("RGB").getpixel((19, 0)) == (0, 255, 0)
    # And the 16-bit one as an 8-bit grey image of the same brightness
    content_type, data = read("deep.tiff")
    deep = Image.open(io.BytesIO(data))
    assert content_type == "image/webp" and deep.size == (8, 6)
    assert deep.convert("L").getpixel((3, 3)) == round(40_000 * 255 / 65535)
    # And the rendition is what is sent, not made again; the original stays as it was, a download away
    assert read("turned.tif")[1] == rendition.read_bytes() and rendition.stat().st_mtime_ns == made
    assert Path(stored.path).read_bytes() == uploads["turned.tif"]
    original = api.get(f"/api/items/{items['turned.tif'].id}/image/?original=1")
    assert original["Content-Type"] == "image/tiff" and 'filename="turned.tif"' in original["Content-Disposition"]
    assert b"".join(original.streaming_content) == uploads["turned.tif"]
    # And every other format is served as stored, with its own type
    types = {"a.png": "image/png", "a.jpg": "image/jpeg", "a.gif": "image/gif", "a.bmp": "image/bmp"}
    for name, expected in {**types, "a.webp": "image/webp"}.items():
        assert read(name) == (expected, uploads[name]), name
        assert items[name].display == ""
    # And only members get it
    outsider = APIClient()
    outsider.force_authenticate(make_user("mallory"))
    assert outsider.get(f"/api/items/{items['turned.tif'].id}/image/").status_code == 404


def test_a_closing_page_gives_back_its_own_leases_in_one_request(user):
    # Given alice holding three prefetched items, and bob holding one more
    project = make_project(user)
    make_items(project, 5)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    held: list[int] = []
    for _ in range(3):
        held.append(item_lease_next(project=project, user=user, exclude=held).id)
    bobs = item_lease_next(project=project, user=bob, exclude=held).id
    api = APIClient()
    api.force_authenticate(user)
    # When her page's beacon sends every id it held, as a form (ids repeated), bob's among them
    response = api.post(f"/api/projects/{project.id}/release/", {"ids": [*held, bobs]}, format="multipart")
    # Then her three leases are free at once, bob's stands, and /next serves hers to bob's next call
    assert response.status_code == 200 and response.json() == {"released": 3}
    assert not Item.objects.filter(id__in=held, lease_user__isnull=False).exists()
    assert Item.objects.get(id=bobs).lease_user == bob
    assert item_lease_next(project=project, user=make_user("carol")).id in held
    # And the same as JSON works; bad input is a 400 that names the field
    assert api.post(f"/api/projects/{project.id}/release/", {"ids": []}, format="json").json() == {"released": 0}
    bad = api.post(f"/api/projects/{project.id}/release/", {"ids": ["x"]}, format="json")
    assert bad.status_code == 400 and "ids" in bad.json()
    assert api.post(f"/api/projects/{project.id}/release/", [1, 2], format="json").status_code == 400
