"""Images the cheap way: a display rendition made once on import (shrunk, EXIF applied, a format
browsers show), thumbnails from the same decode, and the file handed to the reverse proxy
(``SENDFILE``) once membership is checked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings
from PIL import Image

from annotator.models import Item
from tests.annotator.helpers import client_for, upload
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def phone_photo(width: int = 4000, height: int = 3000, orientation: int = 6) -> bytes:
    """A 12-megapixel JPEG as a phone writes it (quality 92, turned by its EXIF orientation): smooth
    gradients with a little sensor noise, left half red, right half blue."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / 400), 128 + 80 * np.cos(y / 300), 128 + 60 * np.sin((x + y) / 500)], -1)
    base[:, : width // 2, 0], base[:, width // 2 :, 2] = 250, 250
    pixels = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92, exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return phone_photo()


def test_a_phone_photo_is_shown_as_a_rendition_made_once_on_import(user, photo):
    # Given a 12-megapixel photo turned by its EXIF orientation, imported twice
    project = make_project(user)
    upload(project, [("IMG_0001.jpg", photo)])
    upload(project, [("copy of IMG_0001.jpg", photo)])
    item = Item.objects.get(project=project)  # the second import was a duplicate
    folder = Path(item.file.path).parent
    assert sorted(p.name.split(".", 1)[1] for p in folder.iterdir()) == ["display.webp", "jpg", "thumb.jpg"]
    assert (item.width, item.height) == (3000, 4000)  # the boxes' pixels: the original as displayed

    # When the labeling page loads its image
    response = client_for(user).get(f"/api/items/{item.id}/image/")
    sent = b"".join(response.streaming_content)

    # Then it gets the rendition: upright, 1600 px on its long side, a WebP far under 400 KB
    assert response["Content-Type"] == "image/webp" and response["Cache-Control"].endswith("immutable")
    shown = Image.open(io.BytesIO(sent))
    assert shown.size == (1200, 1600)
    top, bottom = shown.convert("RGB").getpixel((600, 100)), shown.convert("RGB").getpixel((600, 1500))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # turned: left (red) is now on top
    assert len(sent) < 400_000, len(sent)
    # And the original, 12 megapixels, stays for download and export
    original = client_for(user).get(f"/api/items/{item.id}/image/?original=1")
    assert b"".join(original.streaming_content) == photo and len(photo) > 3 * len(sent)


@override_settings(DISPLAY_MAX_SIDE=800)
def test_display_max_side_is_a_setting(user, photo):
    project = make_project(user)
    upload(project, [("IMG_0001.jpg", photo)])
    item = Item.objects.get(project=project)
    sent = b"".join(client_for(user).get(f"/api/items/{item.id}/image/").streaming_content)
    assert Image.open(io.BytesIO(sent)).size == (600, 800)


def test_an_item_imported_before_renditions_gets_its_own_on_first_request(user, photo):
    project = make_project(user)
    upload(project, [("IMG_0001.jpg", photo)])
    item = Item.objects.get(project=project)
    Path(item.file.path).with_suffix(".display.webp").unlink()
    Item.objects.filter(id=item.id).update(display=None)  # as the migration leaves older items
    response = client_for(user).get(f"/api/items/{item.id}/image/")
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (1200, 1600)
    item.refresh_from_db()
    assert item.display.endswith(".display.webp") and Path(item.file.path).with_suffix(".display.webp").is_file()


@override_settings(SENDFILE="x-accel-redirect", SENDFILE_URL="/protected-media/")
def test_behind_nginx_the_web_process_checks_membership_and_hands_over_the_file(user, photo):
    project = make_project(user)
    upload(project, [("IMG_0001.jpg", photo), ("small.png", _png())])
    big, small = Item.objects.filter(project=project).order_by("original_name")
    api = client_for(user)
    response = api.get(f"/api/items/{big.id}/image/")
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{big.display}"
    assert response["Content-Type"] == "image/webp" and response["Cache-Control"].endswith("immutable")
    assert api.get(f"/api/items/{small.id}/image/")["X-Accel-Redirect"] == f"/protected-media/{small.file.name}"
    assert api.get(f"/api/items/{small.id}/thumbnail/")["X-Accel-Redirect"].endswith(".thumb.jpg")
    # A non-member gets 404 before any file is touched: even with the files gone
    for name in (big.file.name, big.display):
        (Path(big.file.storage.path(name))).unlink()
    outsider = client_for(make_user("mallory"))
    assert outsider.get(f"/api/items/{big.id}/image/").status_code == 404
    assert outsider.get(f"/api/items/{big.id}/image/?original=1").status_code == 404


@override_settings(SENDFILE="x-sendfile")
def test_x_sendfile_names_the_files_path(user):
    project = make_project(user)
    upload(project, [("small.png", _png())])
    item = Item.objects.get(project=project)
    response = client_for(user).get(f"/api/items/{item.id}/image/?original=1")
    assert response.content == b"" and response["X-Sendfile"] == item.file.path
    assert response["Content-Disposition"] == 'attachment; filename="small.png"'


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(out, format="PNG")
    return out.getvalue()
