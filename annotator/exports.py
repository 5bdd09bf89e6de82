"""File formats out: CSV rows and ImageFolder zip archives of labeled items. No HTTP here."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import IO, Any

CSV_COLUMNS = ["filename", "label", "annotator", "created"]


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Yield CSV text line by line (header first), so a response can stream it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(CSV_COLUMNS)
    yield take()
    for row in rows:
        writer.writerow([row["filename"], row["label"], row["annotator"], row["created"].isoformat()])
        yield take()


def imagefolder_name(label: str, filename: str, taken: set[str]) -> str:
    """``label/basename``, made unique within the archive."""
    base = PurePosixPath(filename.replace("\\", "/")).name or "image"
    stem, suffix = PurePosixPath(base).stem, PurePosixPath(base).suffix
    name, n = f"{label}/{base}", 1
    while name in taken:
        name = f"{label}/{stem}_{n}{suffix}"
        n += 1
    taken.add(name)
    return name


def write_imagefolder(rows: Iterable[dict[str, Any]], out: IO[bytes], open_file: Any) -> int:
    """Write a zip with one folder per class holding the item files; returns the file count.

    ``open_file(item)`` returns a readable binary file for an item.
    """
    taken: set[str] = set()
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for row in rows:
            name = imagefolder_name(row["label"], row["filename"], taken)
            with open_file(row["item"]) as src, archive.open(name, "w", force_zip64=True) as dst:
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
            count += 1
    return count
