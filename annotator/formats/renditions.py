"""What the pages show of a stored image. Each image gets, once, on import:

- a display rendition when the original is not fit to send as it is: a format browsers cannot show
  (TIFF), or a longest side over ``DISPLAY_MAX_SIDE`` (a 12-megapixel phone photo). It is the image
  as displayed (EXIF orientation applied, modes the model converts converted the same way), shrunk
  to fit, as WebP: lossy (quality 82) when shrunk, lossless when only converted.
  Smaller images in a browser format are sent as stored. The original stays for export and download;
- a thumbnail for the data browser (JPEG, at most ``THUMBNAIL_SIDE`` pixels), from the same decode.

Both sit beside the original under derived names. Items imported before renditions existed get
theirs on the first request (``display_ensure``). No HTTP and no database here.
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
RENDITION_SUFFIX = ".display.png"  # what earlier versions made for TIFF files (still served)
DISPLAY_SUFFIX = ".display.webp"
#: The longest side of a display rendition, by default (setting ``DISPLAY_MAX_SIDE``).
DISPLAY_MAX_SIDE = 1600
THUMBNAIL_SUFFIX = ".thumb.jpg"
#: The longest side of a thumbnail in pixels: sharp in the data browser's tiles on a 2x screen.
THUMBNAIL_SIDE = 256


def rendition_name(name: str) -> str:
    """The storage name of the rendition of the stored file ``name``: ``a/b.tif`` -> ``a/b.display.png``."""
    return derived_name(name, RENDITION_SUFFIX)


def thumbnail_name(name: str) -> str:
    """The storage name of the thumbnail of the stored file ``name``: ``a/b.png`` -> ``a/b.thumb.jpg``."""
    return derived_name(name, THUMBNAIL_SUFFIX)


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


def _flattened(img: Image.Image) -> Image.Image:
    """``img`` in a mode JPEG or WebP hold: RGB or L as they are, transparency as RGBA, the rest as
    the model converts it."""
    if img.mode in ("RGB", "L", "RGBA"):
        return img
    if img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return to_rgb(img)


def _encoded(img: Image.Image, *, lossless: bool) -> bytes:
    """``img`` as WebP: lossless (an image only converted), or at quality 82 (a shrunk photo: about
    a third smaller than JPEG at the same look, and it keeps transparency)."""
    out = io.BytesIO()
    if lossless:
        img.save(out, format="WEBP", lossless=True, method=4)
    else:
        img.save(out, format="WEBP", quality=82, method=4)
    return out.getvalue()


def _flat_thumbnail(img: Image.Image, side: int) -> bytes:
    """JPEG bytes of ``img`` shrunk to at most ``side`` (on white where it was transparent)."""
    small = img.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    if small.mode == "RGBA":
        flat = Image.new("RGB", small.size, "white")
        flat.paste(small, mask=small.getchannel("A"))
        small = flat
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()


def display_views(
    data: bytes, suffix: str, *, max_side: int = DISPLAY_MAX_SIDE, side: int = THUMBNAIL_SIDE
) -> tuple[tuple[bytes, str] | None, bytes]:
    """From one decode of an image file's ``data`` (stored with ``suffix``): its display rendition as
    (bytes, storage suffix), or ``None`` when the file is sent as it is, and its thumbnail (JPEG)."""
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        fits = max(img.size) <= max_side
        needed = suffix.lower() not in BROWSER_SUFFIXES or not fits
        if img.format == "JPEG":
            img.draft(img.mode, (max_side, max_side) if needed else (side, side))
        shown = _flattened(ImageOps.exif_transpose(img))
    thumbnail = _flat_thumbnail(shown, side)
    if not needed:
        return None, thumbnail
    if not fits:
        shown = shown.copy()
        shown.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return (_encoded(shown, lossless=fits), DISPLAY_SUFFIX), thumbnail


def derived_name(name: str, suffix: str) -> str:
    """``a/b.tif`` with ``suffix`` ``.display.webp`` -> ``a/b.display.webp``."""
    path = PurePosixPath(name)
    return str(path.with_name(path.stem + suffix))


def display_store(
    storage: Storage, name: str, data: bytes, *, max_side: int = DISPLAY_MAX_SIDE
) -> tuple[str, list[str]]:
    """Make and store the display rendition (if it needs one) and the thumbnail of the stored image
    ``name`` whose bytes are ``data``: (what browsers are sent: the rendition's name, "" for the
    original itself; every name written)."""
    rendition, thumbnail = display_views(data, PurePosixPath(name).suffix, max_side=max_side)
    written = [thumbnail_name(name)]
    _store(storage, written[0], thumbnail)
    if rendition is None:
        return "", written
    target = derived_name(name, rendition[1])
    _store(storage, target, rendition[0])
    return target, [*written, target]


def display_ensure(storage: Storage, name: str, *, max_side: int = DISPLAY_MAX_SIDE) -> str:
    """``display_store`` for an image stored before renditions were made on import: "" or the
    rendition's name (an earlier version's PNG rendition of a TIFF is kept and used)."""
    if storage.exists(rendition_name(name)):
        return rendition_name(name)
    with storage.open(name, "rb") as src:
        data = src.read()
    return display_store(storage, name, data, max_side=max_side)[0]
