"""What the pages show of a stored image: browsers display PNG, JPEG (MPO as its first picture), GIF,
BMP and WebP as they are, but not TIFF; such a file gets a PNG rendition, made once, on first request,
and stored beside the original under a derived name. The data browser's thumbnails (JPEG, at most
``THUMBNAIL_SIDE`` pixels) are made and stored the same way. No HTTP and no database here.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from PIL import Image, ImageOps

from ml.data import _to_rgb as to_rgb  # the model's own conversion: 16-bit, float, CMYK... to RGB

#: Suffixes of the stored files (``imports.FORMAT_SUFFIX``) that browsers display as they are.
BROWSER_SUFFIXES = frozenset({".png", ".jpg", ".gif", ".bmp", ".webp"})
#: Modes that a PNG holds as they are (and browsers show, transparency included).
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
RENDITION_SUFFIX = ".display.png"
THUMBNAIL_SUFFIX = ".thumb.jpg"
#: The longest side of a thumbnail in pixels: sharp in the data browser's tiles on a 2x screen.
THUMBNAIL_SIDE = 256


def rendition_name(name: str) -> str:
    """The storage name of the rendition of the stored file ``name``: ``a/b.tif`` -> ``a/b.display.png``."""
    path = PurePosixPath(name)
    return str(path.with_name(path.stem + RENDITION_SUFFIX))


def png_rendition(src: BinaryIO) -> bytes:
    """The image in ``src`` (its first frame) as PNG bytes, as displayed: EXIF orientation applied,
    and modes that a PNG does not hold (16-bit, float, CMYK...) converted as the model's input is."""
    with Image.open(src) as img:
        img.seek(0)
        shown = ImageOps.exif_transpose(img)
        if shown.mode not in PNG_MODES:
            shown = to_rgb(shown)
        out = io.BytesIO()
        shown.save(out, format="PNG")
    return out.getvalue()


def thumbnail_name(name: str) -> str:
    """The storage name of the thumbnail of the stored file ``name``: ``a/b.png`` -> ``a/b.thumb.jpg``."""
    path = PurePosixPath(name)
    return str(path.with_name(path.stem + THUMBNAIL_SUFFIX))


def jpeg_thumbnail(src: BinaryIO, side: int = THUMBNAIL_SIDE) -> bytes:
    """The image in ``src`` (its first frame, as displayed) shrunk to at most ``side`` pixels on its
    longer side (never enlarged), as JPEG bytes on white where it was transparent."""
    with Image.open(src) as img:
        img.seek(0)
        img.draft(img.mode, (side, side))  # JPEG: decode at a reduced scale, much faster for photos
        shown = ImageOps.exif_transpose(img)
        if shown.mode in ("RGBA", "LA", "P", "PA"):
            shown = shown.convert("RGBA")
            flat = Image.new("RGB", shown.size, "white")
            flat.paste(shown, mask=shown.getchannel("A"))
            shown = flat
        elif shown.mode not in ("RGB", "L"):
            shown = to_rgb(shown)
        shown.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        shown.save(out, format="JPEG", quality=85)
    return out.getvalue()


def thumbnail_of(storage: Storage, name: str) -> str:
    """The storage name of the thumbnail of the stored image ``name``, made and stored on the first call."""
    target = thumbnail_name(name)
    if storage.exists(target):
        return target
    with storage.open(name, "rb") as src:
        data = jpeg_thumbnail(cast(BinaryIO, src))
    _store(storage, target, data)
    return target


def display_name(storage: Storage, name: str) -> str:
    """The storage name of what browsers are sent for the stored image ``name``: the file itself when
    browsers display its format, otherwise its PNG rendition, made and stored on the first call."""
    if PurePosixPath(name).suffix.lower() in BROWSER_SUFFIXES:
        return name
    target = rendition_name(name)
    if storage.exists(target):
        return target
    with storage.open(name, "rb") as src:
        data = png_rendition(cast(BinaryIO, src))  # a stored file reads like a binary file; Django's types do not say
    _store(storage, target, data)
    return target


def _store(storage: Storage, name: str, data: bytes) -> None:
    """Write ``data`` as ``name``, whole or not at all: a concurrent reader never sees half a file."""
    try:
        path = Path(storage.path(name))
    except NotImplementedError:  # not a local file system: the storage's own save, first one kept
        saved = storage.save(name, ContentFile(data))
        if saved != name:
            storage.delete(saved)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, getattr(storage, "file_permissions_mode", None) or 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
