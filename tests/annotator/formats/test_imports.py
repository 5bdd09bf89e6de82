"""File checks on import: every bad file is rejected by name with a reason; good ones pass."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from annotator.formats import imports
from tests.factories import png_bytes, zip_bytes

LIMITS = imports.Limits(max_pixels=10_000_000, max_zip_ratio=100)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header claiming a huge image, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    )


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"just some text", "not a readable image"),
        (png_bytes(1, size=64)[:200], "truncated"),
        (jpeg_bytes()[:300], "could not be decoded"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not a readable image"),
        (bomb_png(50_000, 50_000), "too large"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(data, reason):
    result = imports.check_image("f.jpg", data, limits=LIMITS)
    assert isinstance(result, imports.Rejected)
    assert result.name == "f.jpg"
    assert reason in result.error


def test_good_image_is_measured_and_hashed():
    result = imports.check_image("a.jpg", jpeg_bytes(), limits=LIMITS)
    assert isinstance(result, imports.Candidate)
    assert (result.width, result.height, result.suffix, len(result.sha256)) == (64, 64, ".jpg", 64)


def test_zip_refuses_traversal_bombs_and_nested_archives_but_keeps_good_files():
    archive = zip_bytes(
        {
            "../evil.png": png_bytes(1),
            "ok/good.png": png_bytes(2),
            "inner.zip": zip_bytes({"x.png": png_bytes(3)}),
            "zeros.png": b"\0" * 2_000_000,
            "__MACOSX/._good.png": b"junk",
        }
    )
    results = list(imports.iter_zip("up.zip", io.BytesIO(archive), limits=LIMITS, labels={"ok"}))
    by_name = {r.name: r for r in results}
    assert isinstance(by_name["ok/good.png"], imports.Candidate) and by_name["ok/good.png"].label == "ok"
    assert "unsafe path" in by_name["up.zip/../evil.png"].error
    assert "nested zip" in by_name["up.zip/inner.zip"].error
    assert "zip bomb" in by_name["up.zip/zeros.png"].error
    assert len(results) == 4  # the __MACOSX entry is ignored


def test_not_a_zip():
    (result,) = imports.iter_zip("x.zip", io.BytesIO(b"nope"), limits=LIMITS, labels=set())
    assert "not a readable zip" in result.error


def test_zip_with_too_many_members():
    archive = zip_bytes({f"{i}.png": b"x" for i in range(5)})
    limits = imports.Limits(max_zip_members=3)
    (result,) = imports.iter_zip("many.zip", io.BytesIO(archive), limits=limits, labels=set())
    assert "holds 5 files" in result.error


def test_manifest_refuses_files_reached_through_a_link_out_of_the_folder(tmp_path):
    # Given a folder whose "linkdir" is a link to a folder outside it, and "inside" a link within it
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "real").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "x.png").write_bytes(png_bytes(1))
    (root / "real" / "y.png").write_bytes(png_bytes(2))
    (root / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    (root / "inside").symlink_to(root / "real", target_is_directory=True)
    rows = [("linkdir/x.png", ""), ("inside/y.png", ""), ("real/y.png", "")]
    # When a manifest names files through both links and directly
    results = {r.name: r for r in imports.iter_manifest(root, rows, limits=LIMITS, labels=set())}
    # Then the file outside the folder is refused by name; the ones inside are read
    assert isinstance(results["linkdir/x.png"], imports.Rejected)
    assert "outside the folder" in results["linkdir/x.png"].error
    assert isinstance(results["inside/y.png"], imports.Candidate)
    assert isinstance(results["real/y.png"], imports.Candidate)
