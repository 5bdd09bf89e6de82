"""Image decoding and the per-project image cache.

Images are decoded once, on import, into square ``(size, size, 3)`` uint8 arrays and
appended as fixed-size rows to one row file per project (``ml.rowfile``); training and
scoring read rows back through a read-only memory map and never touch the original files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ml import rowfile

#: Grey used to pad the short side of non-square images. After the model's
#: normalisation (``ml.models.cnn.to_tensor``) it is ~0, the same as the zero padding the
#: convolutions and the crop augmentation use, so padding carries no signal.
PAD_VALUE = 128

#: Colour that transparent pixels are composited onto.
BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def decode_image(src: str | os.PathLike | BinaryIO, size: int) -> np.ndarray:
    """Decode an image file into a padded square RGB array of shape (size, size, 3) uint8.

    EXIF orientation is applied; animated images give their first frame; transparent
    pixels are composited on white; 16-bit and 32-bit greyscale are rescaled (not
    clipped) to 8 bits. The image is resized, keeping its aspect ratio, so that its
    longer side is ``size``, and centred on a ``PAD_VALUE`` grey square.
    Raises ``PIL.UnidentifiedImageError`` / ``OSError`` for unreadable files; guarding
    against decompression bombs is the caller's job.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    with Image.open(src) as img:
        img.seek(0)
        if img.format == "JPEG":
            # Let libjpeg decode at a reduced scale (still >= size on both sides).
            img.draft("RGB", (size, size))
        rgb = _to_rgb(ImageOps.exif_transpose(img))
    w, h = rgb.size
    scale = size / max(w, h)
    new_w, new_h = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    if (new_w, new_h) != (w, h):
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    canvas.paste(rgb, ((size - new_w) // 2, (size - new_h) // 2))
    return np.array(canvas, dtype=np.uint8)


def decode_displayed(src: str | os.PathLike | BinaryIO, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image as displayed (EXIF orientation applied, RGB as ``decode_image`` converts it),
    shrunk, keeping its aspect ratio, so that its longer side is at most ``max_side``: (h, w, 3)
    uint8, and the displayed image's full (width, height)."""
    with Image.open(src) as img:
        img.seek(0)
        size = _displayed_size(img)  # from the header, before a JPEG draft shrinks what is decoded
        if img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))
        rgb = _to_rgb(ImageOps.exif_transpose(img))
    w, h = rgb.size
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.array(rgb, dtype=np.uint8), size


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of ``img`` as displayed: swapped for the EXIF orientations that turn it a quarter."""
    w, h = img.size
    return (h, w) if img.getexif().get(0x0112) in {5, 6, 7, 8} else (w, h)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any common Pillow mode to mode RGB."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES or mode in {"I", "F"}:
        return Image.fromarray(_grey_to_uint8(np.asarray(img), mode)).convert("RGB")
    return img.convert("RGB")


def _grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Rescale a (H, W) greyscale array of more than 8 bits to (H, W) uint8.

    16-bit data (and 32-bit integer data within 0..65535, which is how Pillow opens
    some 16-bit files) maps 0..65535 linearly onto 0..255; float data within 0..1 maps
    onto 0..255; anything else is stretched from its own minimum to its maximum.
    """
    x = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.uint8)
    lo, hi = float(x.min()), float(x.max())
    if mode in _SIXTEEN_BIT_MODES or (mode == "I" and lo >= 0 and hi <= 65535):
        x = x * (255.0 / 65535.0)
    elif mode == "F" and lo >= 0 and hi <= 1:
        x = x * 255.0
    else:
        x = (x - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(x)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _row_shape(size: int) -> tuple[int, int, int]:
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return (size, size, 3)


def cache_append(path: Path, arrays: np.ndarray) -> list[int]:
    """Append images to the cache at ``path`` (a ``ml.rowfile`` row file of uint8 images).

    Safe for several processes at once (``ml.rowfile.locked``); a torn tail left by a writer
    that died mid-append (its rows were never handed out) is truncated away first.

    Parameters
    ----------
    path : Path
        The cache file; created with its folder when missing.
    arrays : (N, S, S, 3) uint8
        Decoded images (``decode_image``).

    Returns
    -------
    list of int
        The N row indices assigned, in order.
    """
    arrays = np.ascontiguousarray(arrays)
    if arrays.dtype != np.uint8 or arrays.ndim != 4 or arrays.shape[3] != 3 or arrays.shape[1] != arrays.shape[2]:
        raise ValueError(f"expected (N, size, size, 3) uint8, got {arrays.shape} {arrays.dtype}")
    with rowfile.locked(path, _row_shape(arrays.shape[1]), np.uint8) as writer:
        return list(writer.append(arrays))


def cache_len(path: Path, size: int) -> int:
    """Number of complete (size, size, 3) rows in the cache; 0 if it does not exist."""
    return rowfile.row_count(path, _row_shape(size), np.uint8)


def cache_read(path: Path, rows: Sequence[int] | np.ndarray, size: int) -> np.ndarray:
    """Rows of the image cache.

    Parameters
    ----------
    path : Path
        The cache file.
    rows : (K,) int
        Row indices; they may repeat and come in any order.
    size : int
        The cache's image side S.

    Returns
    -------
    (K, S, S, 3) uint8

    Raises
    ------
    IndexError
        Naming the cache length, if any row is out of range.
    """
    return rowfile.read_rows(path, rows, _row_shape(size), np.uint8)
