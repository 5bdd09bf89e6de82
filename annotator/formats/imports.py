"""File formats in: uploads, zip archives and server folders become validated image files.

No HTTP and no database here: the functions yield ``Candidate`` objects (a readable image with
its bytes, size, hash and optional class label) or ``Rejected`` ones (a name and a reason).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from annotator.kinds.boxes import Box
from annotator.paths import is_under

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
# MPO is how Pillow opens the multi-picture JPEGs of many phone cameras.
FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "GIF": ".gif",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
}
#: EXIF orientations that turn the image a quarter: its displayed width is its stored height.
QUARTER_TURNS = {5, 6, 7, 8}
EXIF_ORIENTATION = 0x0112
IGNORED_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db"}


@dataclass
class Candidate:
    """A file that opened as an image."""

    name: str
    data: bytes
    sha256: str
    width: int
    height: int
    suffix: str
    label: str | None = None
    boxes: list[Box] | None = None  # box projects: the boxes an annotation file gives it ([]: nothing there)


@dataclass
class Rejected:
    name: str
    error: str


@dataclass
class Limits:
    max_pixels: int = 64_000_000
    max_file_bytes: int = 200 * 1024 * 1024
    max_zip_members: int = 100_000
    max_zip_ratio: int = 200


def check_image(name: str, data: bytes, *, limits: Limits, label: str | None = None) -> Candidate | Rejected:
    """Open ``data`` with Pillow and check that it is a complete image within the limits.

    Width and height are as displayed, after the EXIF orientation; an animated image counts
    as its first frame.
    """
    if not data:
        return Rejected(name, "empty file")
    if len(data) > limits.max_file_bytes:
        return Rejected(name, f"file is larger than {limits.max_file_bytes // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                fmt = img.format or ""
                if width * height > limits.max_pixels:
                    return Rejected(
                        name, f"image is too large ({width}×{height} pixels; the limit is {limits.max_pixels:,} pixels)"
                    )
                if fmt not in FORMAT_SUFFIX:
                    return Rejected(name, f"unsupported image format {fmt or 'unknown'}")
                img.load()
                if img.getexif().get(EXIF_ORIENTATION) in QUARTER_TURNS:
                    width, height = height, width
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Rejected(name, f"image is too large (more than {limits.max_pixels:,} pixels)")
    except UnidentifiedImageError:
        return Rejected(name, "not a readable image (unknown or unsupported format)")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or exc.__class__.__name__
        if "truncated" in reason.lower():
            reason = "image file is truncated"
        return Rejected(name, f"image could not be decoded: {reason}")
    digest = hashlib.sha256(data).hexdigest()
    return Candidate(name, data, digest, width, height, FORMAT_SUFFIX[fmt], label)


def _is_ignored(path: PurePosixPath) -> bool:
    return any(part in IGNORED_PARTS or part.startswith("._") for part in path.parts)


def _label_from_path(path: PurePosixPath, labels: set[str]) -> str | None:
    """The class of a file is the name of its nearest parent folder, when that is a class."""
    for parent in reversed(path.parts[:-1]):
        if parent in labels:
            return parent
    return None


def zip_member_problem(info: zipfile.ZipInfo, limits: Limits) -> str | None:
    """Why a zip member is not read (too large, or expanding like a zip bomb), or ``None``."""
    if info.file_size > limits.max_file_bytes:
        return f"file is larger than {limits.max_file_bytes // (1024 * 1024)} MB"
    if info.compress_size and info.file_size / info.compress_size > limits.max_zip_ratio:
        return f"compression ratio above {limits.max_zip_ratio}:1 (possible zip bomb)"
    return None


def iter_zip(
    name: str, fileobj: BinaryIO, *, limits: Limits, labels: set[str], skip: Callable[[str], bool] | None = None
) -> Iterator[Candidate | Rejected]:
    """Yield the images in a zip archive, refusing unsafe or oversized members by name."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejected(name, f"not a readable zip archive: {exc}")
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > limits.max_zip_members:
            yield Rejected(name, f"zip archive holds {len(members):,} files; the limit is {limits.max_zip_members:,}")
            return
        for info in members:
            member_name = f"{name}/{info.filename}"
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts:
                yield Rejected(member_name, "unsafe path in zip archive")
                continue
            if _is_ignored(path) or (skip is not None and skip(path.name)):
                continue
            if path.suffix.lower() == ".zip":
                yield Rejected(member_name, "nested zip archives are not imported")
                continue
            problem = zip_member_problem(info, limits)
            if problem is not None:
                yield Rejected(member_name, problem)
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                yield Rejected(member_name, f"could not be read from the zip archive: {exc}")
                continue
            result = check_image(str(path), data, limits=limits, label=_label_from_path(path, labels))
            if isinstance(result, Rejected):
                result.name = member_name
            yield result


def iter_uploads(
    files: Iterable[tuple[str, BinaryIO]],
    *,
    limits: Limits,
    labels: set[str],
    skip: Callable[[str], bool] | None = None,
) -> Iterator[Candidate | Rejected]:
    """Yield checked images from uploaded files; ``.zip`` files are expanded (members whose name
    ``skip`` accepts left out: the annotation files a box import reads itself)."""
    for name, fileobj in files:
        name = os.path.basename(name.replace("\\", "/")) or "unnamed"
        if name.lower().endswith(".zip"):
            yield from iter_zip(name, fileobj, limits=limits, labels=labels, skip=skip)
            continue
        data = fileobj.read(limits.max_file_bytes + 1)
        yield check_image(name, data, limits=limits)


def iter_folder(
    root: Path, *, limits: Limits, labels: set[str], skip: Callable[[str], bool] | None = None
) -> Iterator[Candidate | Rejected]:
    """Yield checked images below ``root``; a file inside a folder named after a class gets that label
    (files whose name ``skip`` accepts are left out)."""
    root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_PARTS and not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if _is_ignored(rel) or filename.startswith(".") or (skip is not None and skip(filename)):
                continue
            if path.is_symlink():
                yield Rejected(str(rel), "symbolic links are not followed")
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                yield Rejected(str(rel), f"not an image file type ({path.suffix or 'no extension'})")
                continue
            try:
                with path.open("rb") as fh:
                    data = fh.read(limits.max_file_bytes + 1)
            except OSError as exc:
                yield Rejected(str(rel), f"could not be read: {exc.strerror or exc}")
                continue
            yield check_image(str(rel), data, limits=limits, label=_label_from_path(rel, labels))


def read_manifest(fileobj: BinaryIO) -> Iterator[tuple[str, str]]:
    """Yield ``(filename, label)`` rows of a manifest CSV; a header row ``filename,label`` is skipped."""
    import csv

    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", newline="")
    for n, row in enumerate(csv.reader(text)):
        if not row or not any(cell.strip() for cell in row):
            continue
        filename, label = row[0].strip(), (row[1].strip() if len(row) > 1 else "")
        if n == 0 and filename.lower() == "filename":
            continue
        yield filename, label


def iter_manifest(
    root: Path, rows: Iterable[tuple[str, str]], *, limits: Limits, labels: set[str]
) -> Iterator[Candidate | Rejected]:
    """Yield checked images named by manifest rows, relative to ``root``, with the row's label.

    A file outside ``root`` (also through a linked folder), missing, or with a label that is not a
    class is rejected by name.
    """
    root = root.resolve()
    for filename, label in rows:
        rel = PurePosixPath(filename.replace("\\", "/"))
        if not filename or rel.is_absolute() or ".." in rel.parts:
            yield Rejected(filename or "(empty)", "file name must be relative to the folder, without '..'")
            continue
        if label and label not in labels:
            yield Rejected(filename, f"unknown label {label!r}; the classes are {', '.join(sorted(labels))}")
            continue
        path = root / rel
        if path.is_symlink():
            yield Rejected(filename, "symbolic links are not followed")
            continue
        # A folder on the way may be a link: what is read is the resolved file, and it must be inside ``root``.
        path = path.resolve()
        if not is_under(path, [root]):
            yield Rejected(filename, "the file is outside the folder (reached through a symbolic link)")
            continue
        try:
            with path.open("rb") as fh:
                data = fh.read(limits.max_file_bytes + 1)
        except OSError as exc:
            yield Rejected(filename, f"could not be read: {exc.strerror or exc}")
            continue
        yield check_image(str(rel), data, limits=limits, label=label or None)
