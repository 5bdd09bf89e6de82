"""Bad input through the upload API: every malformed file is imported correctly or rejected by name.

The corpus is made here, in memory. Each case goes up next to a good image, which must still
import; afterwards every item has its file and cache row, and no other file is left behind.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client, override_settings
from PIL import Image

from annotator import paths
from annotator.formats import renditions
from annotator.models import Item, Project
from ml import data as ml_data
from tests.factories import make_project, png_bytes, zip_bytes

pytestmark = pytest.mark.django_db

BOUNDARY = "corpus-boundary"
RED, BLUE = (255, 0, 0), (0, 0, 255)


@pytest.fixture(autouse=True)
def _own_data_dir(settings, tmp_path: Path) -> None:
    """A fresh DATA_DIR and MEDIA_ROOT, so that leftovers of other tests cannot hide or fake orphans."""
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise_jpeg(seed: int, size: int = 48) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims ``width`` × ``height``, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def grey16_png() -> bytes:
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")  # red


def palette_png() -> bytes:
    """Left half transparent (palette index 1), right half red."""
    img = Image.new("P", (32, 32), 0)
    img.putpalette([*RED, *BLUE] + [0] * 762)
    img.paste(1, (0, 0, 16, 32))
    return encode(img, "PNG", transparency=1)


def exif_rotated_jpeg() -> bytes:
    """Stored 40 × 20, left red, right blue; orientation 6 shows it 20 × 40, red on top."""
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))
    exif = img.getexif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif)


def animated_gif() -> bytes:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def phone_mpo() -> bytes:
    """A multi-picture JPEG, as many phone cameras write (Pillow opens it as format MPO)."""
    first, second = Image.new("RGB", (24, 24), RED), Image.new("RGB", (24, 24), BLUE)
    return encode(first, "MPO", save_all=True, append_images=[second])


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@dataclass
class Case:
    """Files sent in one upload (besides a good image) and what must come of them."""

    id: str
    files: list[tuple[str, bytes]]
    imported: list[str] = field(default_factory=list)  # original names of the items made
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason substring)
    duplicates: int = 0


CORPUS = [
    Case("empty", [("empty.png", b"")], rejected=[("empty.png", "empty file")]),
    Case("text-as-jpg", [("notes.jpg", b"just some text\n")], rejected=[("notes.jpg", "not a readable image")]),
    Case("truncated-png", [("cut.png", truncated(png_bytes(1, size=64)))], rejected=[("cut.png", "truncated")]),
    Case("truncated-jpeg", [("cut.jpg", truncated(noise_jpeg(1)))], rejected=[("cut.jpg", "truncated")]),
    Case(
        "svg",
        [("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
        rejected=[("drawing.svg", "not a readable image")],
    ),
    Case(
        "decompression-bomb",
        [("bomb.png", png_claiming(50_000, 50_000))],
        rejected=[("bomb.png", "image is too large (more than 64,000,000 pixels)")],
    ),
    Case(
        "over-pixel-limit",
        [("huge.png", png_claiming(9_000, 9_000))],
        rejected=[("huge.png", "image is too large (9000×9000 pixels")],
    ),
    Case("grey-16-bit", [("grey16.png", grey16_png())], imported=["grey16.png"]),
    Case("cmyk-jpeg", [("cmyk.jpg", cmyk_jpeg())], imported=["cmyk.jpg"]),
    Case("palette-transparency", [("palette.png", palette_png())], imported=["palette.png"]),
    Case("exif-rotated", [("rotated.jpg", exif_rotated_jpeg())], imported=["rotated.jpg"]),
    Case("animated-gif", [("anim.gif", animated_gif())], imported=["anim.gif"]),
    Case("phone-mpo", [("phone.jpg", phone_mpo())], imported=["phone.jpg"]),
    Case("png-named-html", [("page.html", png_bytes(2))], imported=["page.html"]),
    Case(
        "zip-unsafe-paths",
        [
            (
                "paths.zip",
                zip_bytes(
                    {
                        "../evil.png": png_bytes(3),
                        "/etc/abs.png": png_bytes(4),
                        "ok/../../up.png": png_bytes(5),
                        "..\\windows.png": png_bytes(6),
                        "fine/inside.png": png_bytes(7),
                    }
                ),
            )
        ],
        imported=["fine/inside.png"],
        rejected=[
            ("paths.zip/../evil.png", "unsafe path in zip archive"),
            ("paths.zip//etc/abs.png", "unsafe path in zip archive"),
            ("paths.zip/ok/../../up.png", "unsafe path in zip archive"),
            ("paths.zip/..\\windows.png", "unsafe path in zip archive"),
        ],
    ),
    Case(
        "zip-bomb",
        [("bomb.zip", zip_bytes({"zeros.bmp": b"\0" * 2_000_000, "real.png": png_bytes(8)}))],
        imported=["real.png"],
        rejected=[("bomb.zip/zeros.bmp", "compression ratio above 200:1 (possible zip bomb)")],
    ),
    Case(
        "nested-zip",
        [("outer.zip", zip_bytes({"inner.zip": zip_bytes({"x.png": png_bytes(9)}), "y.png": png_bytes(10)}))],
        imported=["y.png"],
        rejected=[("outer.zip/inner.zip", "nested zip archives are not imported")],
    ),
    Case(
        "bad-files-inside-zip",
        [("mixed.zip", zip_bytes({"sub/cut.png": truncated(png_bytes(11, size=64)), "sub/empty.jpg": b""}))],
        rejected=[("mixed.zip/sub/cut.png", "truncated"), ("mixed.zip/sub/empty.jpg", "empty file")],
    ),
    Case(
        "not-a-zip",
        [("broken.zip", b"PK\x03\x04 not really")],
        rejected=[("broken.zip", "not a readable zip archive")],
    ),
    Case(
        "odd-names",
        [
            ("my photo (1).png", png_bytes(12)),
            ("фото кота 猫.png", png_bytes(13)),
            ("x" * 300 + ".png", png_bytes(14)),
            ("nul\x00byte.png", png_bytes(15)),
            ("some/dir/slash.png", png_bytes(16)),
            ("C:\\Users\\me\\back.png", png_bytes(17)),
        ],
        # Django keeps the last path part, drops unprintable characters and cuts names to 255.
        imported=["my photo (1).png", "фото кота 猫.png", "x" * 251 + ".png", "nulbyte.png", "slash.png", "back.png"],
    ),
    Case(
        "odd-names-in-zip",
        [
            (
                "names.zip",
                zip_bytes(
                    {
                        "sub dir/фото 猫.png": png_bytes(18),
                        "a" * 200 + "/" + "b" * 200 + ".png": png_bytes(19),
                        "nul\x00cut.png": png_bytes(20),  # zipfile ends a name at NUL
                        "back\\slash.png": png_bytes(21),
                    }
                ),
            )
        ],
        imported=["sub dir/фото 猫.png", ("a" * 200 + "/" + "b" * 200 + ".png")[:500], "nul", "back/slash.png"],
    ),
    Case(
        "same-image-twice",
        [("one.png", png_bytes(22)), ("two.png", png_bytes(22))],
        imported=["one.png"],
        duplicates=1,
    ),
    Case("already-in-project", [("again.png", png_bytes(0))], duplicates=1),
]


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    """A multipart body with the file names exactly as given (the test client would trim them)."""
    parts = []
    for name, data in files:
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload(api, project: Project, files: list[tuple[str, bytes]]):
    return api.post(
        f"/api/projects/{project.id}/items/",
        data=multipart(files),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def assert_nothing_half_imported(project: Project) -> None:
    """Every item has its file, cache row and thumbnail (and display rendition, when it has one); no
    other file lies in the project's media folder."""
    items = list(Item.objects.filter(project=project))
    assert all(item.cache_row is not None and item.display is not None for item in items)
    stored = {item.file.name for item in items} | {renditions.thumbnail_name(item.file.name) for item in items}
    stored |= {item.display for item in items if item.display}
    folder = Path(settings.MEDIA_ROOT) / "projects" / str(project.id)
    on_disk = {f"projects/{project.id}/{p.name}" for p in folder.iterdir()} if folder.exists() else set()
    assert on_disk == stored


def cached(project: Project, item: Item) -> np.ndarray:
    """The decoded (size, size, 3) array of ``item``."""
    path = paths.cache_path(project.id, project.input_size)
    return ml_data.cache_read(path, [item.cache_row], project.input_size)[0]


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_bad_input_is_imported_or_rejected_by_name(api, user, case: Case):
    project = make_project(user)
    assert upload(api, project, [("existing.png", png_bytes(0))]).status_code == 201

    response = upload(api, project, [("good.png", png_bytes(100)), *case.files])

    assert response.status_code == 201, response.content
    summary = response.json()
    rejected = sorted((r["name"], r["error"]) for r in summary["rejected"])
    assert [name for name, _ in rejected] == sorted(name for name, _ in case.rejected)
    for (_, error), (_, reason) in zip(rejected, sorted(case.rejected), strict=True):
        assert reason in error
    assert summary["imported"] == 1 + len(case.imported)
    assert summary["duplicates"] == case.duplicates
    new_names = Item.objects.filter(project=project).exclude(original_name="existing.png")
    assert sorted(new_names.values_list("original_name", flat=True)) == sorted(["good.png", *case.imported])
    assert_nothing_half_imported(project)


def test_stored_files_take_the_suffix_of_their_format(api, user):
    project = make_project(user)
    upload(api, project, [("page.html", png_bytes(1)), ("photo.png", noise_jpeg(2))])
    suffixes = dict(Item.objects.filter(project=project).values_list("original_name", "file"))
    assert suffixes["page.html"].endswith(".png") and suffixes["photo.png"].endswith(".jpg")


def test_exif_rotation_gives_displayed_size_and_upright_cache(api, user):
    project = make_project(user, input_size=32)
    upload(api, project, [("rotated.jpg", exif_rotated_jpeg())])
    item = Item.objects.get(project=project)
    assert (item.width, item.height) == (20, 40)
    array = cached(project, item).astype(int)
    top, bottom = array[8, 16], array[24, 16]
    assert top[0] > 200 and top[2] < 60, top  # red above
    assert bottom[2] > 200 and bottom[0] < 60, bottom  # blue below


def test_unusual_modes_decode_to_sensible_colours(api, user):
    project = make_project(user, input_size=32)
    files = [("grey16.png", grey16_png()), ("cmyk.jpg", cmyk_jpeg()), ("palette.png", palette_png())]
    files.append(("anim.gif", animated_gif()))
    upload(api, project, files)
    items = {item.original_name: item for item in Item.objects.filter(project=project)}
    grey = cached(project, items["grey16.png"]).astype(int)
    assert grey[1, 16, 0] < 20 and grey[30, 16, 0] > 235  # the 16-bit ramp is rescaled, not clipped
    assert tuple(cached(project, items["cmyk.jpg"])[16, 16]) == pytest.approx(RED, abs=8)
    palette = cached(project, items["palette.png"])
    assert tuple(palette[16, 4]) == (255, 255, 255)  # transparent on white
    assert tuple(palette[16, 28]) == RED
    assert tuple(cached(project, items["anim.gif"])[16, 16]) == RED  # the first frame


def test_thousands_of_tiny_files_in_one_zip(api, user):
    project = make_project(user, input_size=16)  # the smallest (models.INPUT_SIZE)
    members = {f"tiny/{i:04d}.png": png_bytes(1000 + i, size=4) for i in range(3000)}
    started = time.monotonic()
    response = upload(api, project, [("tiny.zip", zip_bytes(members))])
    elapsed = time.monotonic() - started
    assert response.json() == {"batch": 1, "imported": 3000, "duplicates": 0, "labeled": 0, "rejected": []}
    assert elapsed < 30, f"3000 tiny files took {elapsed:.1f} s"
    assert_nothing_half_imported(project)


@override_settings(MAX_UPLOAD_BYTES=50_000)
def test_api_refuses_a_body_over_the_upload_limit(api, user):
    project = make_project(user)
    response = upload(api, project, [("big.bmp", b"\0" * 60_000)])
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The upload is 58.7 KB; the limit is 48.8 KB per request.")
    assert not Item.objects.filter(project=project).exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1_000)
def test_api_refuses_form_fields_over_the_memory_limit(api, user):
    project = make_project(user)
    response = api.post(f"/api/projects/{project.id}/items/", {"note": "x" * 2_000}, format="multipart")
    assert response.status_code == 413
    assert "form data is larger than" in response.json()["detail"]


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=2)
def test_api_refuses_too_many_files(api, user):
    project = make_project(user)
    response = upload(api, project, [(f"{i}.png", png_bytes(i)) for i in range(3)])
    assert response.status_code == 400
    assert "Too many files in one request; the limit is 2" in response.json()["detail"]
    assert not Item.objects.filter(project=project).exists()


@override_settings(MAX_UPLOAD_BYTES=50_000)
def test_page_upload_over_the_limit_shows_a_message(user):
    project = make_project(user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = f"http://testserver/projects/{project.id}/"
    response = browser.post(
        f"/projects/{project.id}/upload/",
        data=multipart([("big.bmp", b"\0" * 60_000)]),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        HTTP_REFERER=page,
        follow=True,
    )
    assert response.status_code == 200
    assert "The upload is 58.7 KB; the limit is 48.8 KB per request." in response.content.decode()
    assert not Item.objects.filter(project=project).exists()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=2)
def test_page_upload_with_too_many_files_shows_a_message(user):
    project = make_project(user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(
        f"/projects/{project.id}/upload/",
        data=multipart([(f"{i}.png", png_bytes(i)) for i in range(3)]),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        HTTP_REFERER=f"http://testserver/projects/{project.id}/",
        follow=True,
    )
    assert "Too many files in one request" in response.content.decode()
    assert not Item.objects.filter(project=project).exists()
