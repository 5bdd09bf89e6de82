"""Decoding every common image mode, and the array cache under concurrent appends."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import PAD_VALUE, cache_append, cache_len, cache_read, decode_image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def assert_close(pixel: np.ndarray, expected: tuple[int, ...], tol: int = 0) -> None:
    assert np.abs(pixel.astype(int) - np.array(expected)).max() <= tol, (pixel, expected)


def test_rgb_square_is_resized_to_size(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (50, 50), RED).save(path)
    out = decode_image(path, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert (out == RED).all()


def test_non_square_is_centered_on_grey(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), BLUE).save(path)
    out = decode_image(str(path), 20)
    # 40x20 -> 20x10, pasted at rows 5..14
    assert (out[5:15] == BLUE).all()
    assert (out[:5] == PAD_VALUE).all() and (out[15:] == PAD_VALUE).all()


def test_grayscale_gives_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1)), mode="L").save(path)
    out = decode_image(path, 16)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    np.testing.assert_array_equal(out[0, :, 0], np.arange(0, 256, 16))


def test_rgba_transparent_becomes_white(tmp_path):
    pixels = np.zeros((8, 8, 4), dtype=np.uint8)
    pixels[:, :4] = (*RED, 255)  # opaque red left half; right half fully transparent black
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, mode="RGBA").save(path)
    out = decode_image(path, 8)
    assert (out[:, :4] == RED).all()
    assert (out[:, 4:] == WHITE).all()


def test_la_and_bilevel(tmp_path):
    la = Image.new("LA", (4, 4), (0, 0))  # transparent black
    la.save(tmp_path / "la.png")
    assert (decode_image(tmp_path / "la.png", 4) == WHITE).all()
    Image.new("1", (4, 4), 1).save(tmp_path / "one.png")
    assert (decode_image(tmp_path / "one.png", 4) == WHITE).all()


def test_palette_with_transparency_becomes_white(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, *GREEN] + [0] * (254 * 3))
    img.paste(1, (0, 0, 4, 8))  # left half palette index 1 (green); right half index 0
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)
    reopened = Image.open(path)
    assert reopened.mode == "P" and "transparency" in reopened.info
    out = decode_image(path, 8)
    assert (out[:, :4] == GREEN).all()
    assert (out[:, 4:] == WHITE).all()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16).repeat(4, axis=0)  # (4, 4)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    path = tmp_path / "deep.png"
    img.save(path)
    for src in (img, path):
        if isinstance(src, Image.Image):
            buffer = io.BytesIO()
            src.save(buffer, format="TIFF")
            buffer.seek(0)
            src = buffer
        out = decode_image(src, 4)
        np.testing.assert_array_equal(out[0, :, 0], [0, 64, 128, 255])


def test_thirty_two_bit_integer_mode(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 0]], dtype=np.int32).repeat(4, axis=0)
    img = Image.fromarray(values, mode="I") if int(Image.__version__.split(".")[0]) < 11 else Image.fromarray(values)
    assert img.mode == "I"
    path = tmp_path / "int.tiff"
    img.save(path)
    out = decode_image(path, 4)
    np.testing.assert_array_equal(out[0, :, 1], [0, 100, 255, 0])


def test_cmyk(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    img.save(tmp_path / "cmyk.tiff")
    img.save(tmp_path / "cmyk.jpg", quality=95)
    assert (decode_image(tmp_path / "cmyk.tiff", 8) == RED).all()
    assert_close(decode_image(tmp_path / "cmyk.jpg", 8)[4, 4], RED, tol=10)


def test_exif_orientation_6_is_rotated(tmp_path):
    # Given a stored 40x20 JPEG, red left half and blue right half, tagged "rotate 90 CW"
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20], pixels[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    # When decoded into a 40x40 square
    out = decode_image(path, 40)
    # Then it stands upright (20 wide, 40 tall): red on top, blue below, grey at the sides
    assert_close(out[5, 20], RED, tol=10)
    assert_close(out[35, 20], BLUE, tol=10)
    assert_close(out[20, 2], (PAD_VALUE,) * 3)
    assert_close(out[20, 37], (PAD_VALUE,) * 3)


def test_large_jpeg_uses_draft_and_keeps_content(tmp_path):
    pixels = np.zeros((400, 800, 3), dtype=np.uint8)
    pixels[:, :400], pixels[:, 400:] = GREEN, BLUE
    path = tmp_path / "big.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    out = decode_image(path, 32)
    assert out.shape == (32, 32, 3)
    assert_close(out[16, 4], GREEN, tol=12)
    assert_close(out[16, 28], BLUE, tol=12)
    assert_close(out[2, 16], (PAD_VALUE,) * 3)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    out = decode_image(path, 8)
    assert (out == RED).all()


def test_file_object_source():
    buffer = io.BytesIO()
    Image.new("RGB", (5, 5), GREEN).save(buffer, format="PNG")
    buffer.seek(0)
    assert (decode_image(buffer, 5) == GREEN).all()


# --- cache ---------------------------------------------------------------------------


def test_cache_round_trip(tmp_path):
    path = tmp_path / "nested" / "dir" / "cache.bin"
    assert cache_len(path, 4) == 0
    a = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    b = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    assert cache_append(path, a) == [0, 1, 2]
    assert cache_append(path, b) == [3, 4]
    assert cache_len(path, 4) == 5
    out = cache_read(path, [4, 0, 0], 4)
    assert out.shape == (3, 4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.stack([b[1], a[0], a[0]]))
    np.testing.assert_array_equal(cache_read(path, np.arange(5), 4), np.concatenate([a, b]))
    assert cache_read(path, [], 4).shape == (0, 4, 4, 3)


def test_cache_read_out_of_range_is_a_clear_error(tmp_path):
    path = tmp_path / "cache.bin"
    cache_append(path, np.zeros((2, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(IndexError, match="2 rows"):
        cache_read(path, [0, 2], 4)
    with pytest.raises(IndexError):
        cache_read(path, [-1], 4)
    with pytest.raises(IndexError):
        cache_read(tmp_path / "missing.bin", [0], 4)


def test_cache_append_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError):
        cache_append(tmp_path / "c.bin", np.zeros((2, 4, 5, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        cache_append(tmp_path / "c.bin", np.zeros((2, 4, 4, 3), dtype=np.float32))


def test_cache_append_drops_a_torn_tail(tmp_path):
    path = tmp_path / "cache.bin"
    cache_append(path, np.zeros((1, 4, 4, 3), dtype=np.uint8))
    with open(path, "ab") as f:
        f.write(b"\x01" * 10)  # a writer died mid-row
    assert cache_len(path, 4) == 1
    assert cache_append(path, np.full((1, 4, 4, 3), 7, dtype=np.uint8)) == [1]
    assert (cache_read(path, [1], 4) == 7).all()
    assert path.stat().st_size == 2 * 4 * 4 * 3


_APPEND_MANY = """
import json, sys
import numpy as np
from ml.data import cache_append
path, writer, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assigned = []
for i in range(rounds):
    batch = np.empty((2, 8, 8, 3), dtype=np.uint8)
    batch[..., 0], batch[..., 1] = writer, i
    batch[0, ..., 2], batch[1, ..., 2] = 0, 1
    assigned.append((i, [int(r) for r in cache_append(path, batch)]))
print(json.dumps(assigned))
"""


def test_concurrent_appends_get_distinct_rows(tmp_path):
    # Given two processes (fresh interpreters, not forks of this threaded one) appending at once
    path = tmp_path / "shared.bin"
    rounds = 40
    root = Path(__file__).resolve().parents[2]
    procs = {
        w: subprocess.Popen(
            [sys.executable, "-c", _APPEND_MANY, str(path), str(w), str(rounds)], cwd=root, stdout=subprocess.PIPE
        )
        for w in (1, 2)
    }
    results = {}
    for w, p in procs.items():
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results[w] = json.loads(out)
    # Then every row went to exactly one append, and holds what that append wrote
    all_rows = [row for assigned in results.values() for _, rows in assigned for row in rows]
    assert sorted(all_rows) == list(range(2 * 2 * rounds))
    assert cache_len(path, 8) == 2 * 2 * rounds
    for writer, assigned in results.items():
        for i, rows in assigned:
            assert rows[1] == rows[0] + 1
            got = cache_read(path, rows, 8)
            assert (got[..., 0] == writer).all() and (got[..., 1] == i).all()
            assert (got[0, ..., 2] == 0).all() and (got[1, ..., 2] == 1).all()
