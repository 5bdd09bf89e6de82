"""File formats out: CSV, JSON Lines, COCO JSON and ImageFolder zips of labeled items, and which
formats each task kind offers (box projects' writers are in ``formats.box_exports``). No HTTP here.

Text formats are generators of chunks so that a response can stream them with flat memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import posixpath
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from annotator.formats.zipstream import ZipWriter
from annotator.kinds.base import Kind

#: The formats of classification (and multi-label) projects: an image's classes.
CLASS_EXPORT_FORMATS = ("csv", "jsonl", "coco", "imagefolder")
#: The formats of box projects: an image's object boxes.
BOX_EXPORT_FORMATS = ("csv", "jsonl", "coco", "yolo", "voc")
#: Every format the tool exports labels in, for downloads and background jobs alike; which of them a
#: project offers follows its kind (``export_formats``).
EXPORT_FORMATS = tuple(dict.fromkeys(CLASS_EXPORT_FORMATS + BOX_EXPORT_FORMATS))
#: How the pages name each format.
EXPORT_FORMAT_NAMES = {
    "csv": "CSV",
    "jsonl": "JSON Lines",
    "coco": "COCO JSON",
    "imagefolder": "ImageFolder zip",
    "yolo": "YOLO zip",
    "voc": "Pascal VOC zip",
}
#: The formats written as zips (the others are one text file, zipped only with the images).
ZIP_FORMATS = frozenset({"imagefolder", "yolo", "voc"})
CSV_COLUMNS = ["filename", "label", "annotator", "created"]
#: A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_formats(kind: Kind) -> tuple[str, ...]:
    """The formats a project of ``kind`` exports in: boxes in YOLO and Pascal VOC, classes in ImageFolder."""
    return BOX_EXPORT_FORMATS if kind.boxes else CLASS_EXPORT_FORMATS


def export_format_problem(fmt: str, kind: Kind) -> str | None:
    """Why a project of ``kind`` cannot be exported as ``fmt`` (naming the formats it can), or ``None``."""
    valid = export_formats(kind)
    if fmt in valid:
        return None
    if fmt in EXPORT_FORMATS:
        what = "box" if kind.boxes else "classification"
        return f"Export format {fmt!r} is not for {what} projects; valid formats: {', '.join(valid)}."
    return f"Unknown export format {fmt!r}; valid formats: {', '.join(valid)}."


def csv_row(values: Iterable[Any]) -> list[str]:
    """A row for ``csv.writer``, each cell as text with a single quote before a leading formula
    character (OWASP's advice on CSV injection), so that a spreadsheet shows it instead of running
    it. Every CSV the tool writes goes through this."""
    cells = ["" if value is None else str(value) for value in values]
    return ["'" + cell if cell.startswith(FORMULA_STARTS) else cell for cell in cells]


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Yield CSV text line by line (header first), so a response can stream it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(csv_row(CSV_COLUMNS))
    yield take()
    for row in rows:
        label = ";".join(row["labels"])
        writer.writerow(csv_row([row["filename"], label, row["annotator"], row["created"].isoformat()]))
        yield take()


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per labeled item, with the model's prediction, confidence and score."""
    for row in rows:
        record = {
            "filename": row["filename"],
            "label": row["label"],
            "labels": row["labels"],
            "annotator": row["annotator"],
            "n_annotations": row.get("n_annotations"),
            "agreement": row.get("agreement"),
            "created": row["created"].isoformat(),
            "width": row["item"].width,
            "height": row["item"].height,
            "sha256": row["item"].sha256,
            "prediction": row.get("prediction"),
            "confidence": row.get("confidence"),
            "score": row.get("score"),
            "model_version": row.get("model_version"),
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


def coco_chunks(rows: Iterable[dict[str, Any]], classes: list[str]) -> Iterator[str]:
    """COCO JSON with image-level annotations (no boxes; one per class of the image), streamed.

    ``images`` and ``annotations`` are written in one pass: annotations are kept back in a
    temporary file until the images list is closed.
    """
    category = {name: i + 1 for i, name in enumerate(classes)}
    yield '{"info": {"description": "Image-level labels exported by Active Annotator"}, "licenses": [], '
    yield '"categories": ' + json.dumps([{"id": i, "name": n, "supercategory": ""} for n, i in category.items()])
    yield ', "images": ['
    with tempfile.TemporaryFile("w+", encoding="utf-8") as held:
        first, n = True, 0
        for row in rows:
            item = row["item"]
            image = {"id": item.id, "file_name": row["filename"], "width": item.width, "height": item.height}
            yield ("" if first else ", ") + json.dumps(image, ensure_ascii=False)
            first = False
            for label in row["labels"]:
                n += 1
                annotation = {"id": n, "image_id": item.id, "category_id": category[label], "iscrowd": 0}
                held.write(("" if n == 1 else ", ") + json.dumps(annotation))
        yield '], "annotations": ['
        held.seek(0)
        while chunk := held.read(1024 * 1024):
            yield chunk
    yield "]}"


def name_parts(filename: str) -> tuple[str, str]:
    """``(stem, suffix)`` of a file name's last part, ``/`` or ``\\`` separated. Not with pathlib:
    it interns every part it parses, memory that would grow with the items of an export."""
    stem, suffix = posixpath.splitext(posixpath.basename(filename.replace("\\", "/")))
    return stem, suffix


def with_stored_suffix(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its file named after the original name and the suffix of the stored file's format."""
    stem = name_parts(row["filename"])[0] or "image"
    return {**row, "filename": stem + name_parts(row["item"].file.name)[1]}


class NameSet:
    """A set of names kept on disk (a temporary SQLite database), so that checking a zip's member
    names for clashes takes the same memory at a million members as at ten."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database on disk, removed on close
        self._db.execute("CREATE TABLE names (name TEXT PRIMARY KEY) WITHOUT ROWID")

    def __contains__(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM names WHERE name = ?", (name,)).fetchone() is not None

    def add(self, name: str) -> None:
        self._db.execute("INSERT INTO names VALUES (?)", (name,))

    def close(self) -> None:
        self._db.close()


def imagefolder_name(label: str, filename: str, taken: set[str] | NameSet) -> str:
    """``label/basename``, made unique within the archive."""
    stem, suffix = name_parts(filename)
    base = stem + suffix or "image"
    name, n = f"{label}/{base}", 1
    while name in taken:
        name = f"{label}/{stem}_{n}{suffix}"
        n += 1
    taken.add(name)
    return name


def write_imagefolder(rows: Iterable[dict[str, Any]], out: IO[bytes], open_file: Any) -> int:
    """Write a zip with one folder per class holding the item files; returns the file count.
    An image of a multi-label project is in the folder of each of its classes.

    ``open_file(item)`` returns a readable binary file for an item.
    """
    taken = NameSet()
    count = 0
    with ZipWriter(out) as archive, contextlib.closing(taken):
        for row in rows:
            for label in row["labels"]:
                name = imagefolder_name(label, row["filename"], taken)
                with open_file(row["item"]) as src:
                    archive.add(name, src)
                count += 1
    return count
