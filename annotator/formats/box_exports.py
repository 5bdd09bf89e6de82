"""File formats out for box projects: CSV (a row per box), JSON Lines (a line per image), COCO JSON,
and YOLO and Pascal VOC zips, written from the export's rows (``selectors.exports.export_box_rows``:
``item``, ``filename``, ``boxes`` ...). Boxes are in pixels of the displayed image, which is what
``Item.width``/``height`` give; an image with no boxes ("nothing here") is written too, as an image
without objects. No HTTP and no database here; the files themselves are those of ``formats.boxes``.

Text formats are generators of chunks and zips are written member by member, with flat memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from annotator.formats.boxes import BoxAnswer, coco_chunks, voc_xml, yolo_data_yaml, yolo_text
from annotator.formats.exports import NameSet, csv_row, name_parts
from annotator.formats.zipstream import ZipWriter

BOX_CSV_COLUMNS = ["filename", "width", "height", "label", "x", "y", "w", "h", "annotator", "created"]

Row = dict[str, Any]
#: ``open_file(item)``: a readable, seekable binary file of an item's image.
OpenFile = Callable[[Any], Any]


def box_answer(row: Row) -> BoxAnswer:
    """The row's image as ``formats.boxes`` writes it: its name, displayed size and boxes."""
    item = row["item"]
    return BoxAnswer(row["filename"], list(row["boxes"]), width=item.width, height=item.height)


def pixels(value: float) -> str:
    """A coordinate as text: to 0.01 px, without a trailing ``.0`` (``12``, ``12.5``, ``12345.67``)."""
    rounded = round(float(value), 2)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def box_csv_lines(rows: Iterable[Row]) -> Iterator[str]:
    """CSV with a row per box (header first): ``filename,width,height,label,x,y,w,h,annotator,created``;
    an image with nothing in it is one row with the label and box cells empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(csv_row(BOX_CSV_COLUMNS))
    yield take()
    for row in rows:
        item = row["item"]
        image = [row["filename"], item.width, item.height]
        who = [row["annotator"], row["created"].isoformat()]
        boxes = [[b.label, pixels(b.x), pixels(b.y), pixels(b.w), pixels(b.h)] for b in row["boxes"]]
        for cells in boxes or [["", "", "", "", ""]]:
            writer.writerow(csv_row(image + cells + who))
        yield take()


def box_jsonl_lines(rows: Iterable[Row]) -> Iterator[str]:
    """One JSON object per labeled image: ``filename``, ``width``, ``height``, ``boxes`` (each
    ``{"label", "x", "y", "w", "h"}``; empty: nothing here), who labeled it and when."""
    for row in rows:
        item = row["item"]
        record = {
            "filename": row["filename"],
            "width": item.width,
            "height": item.height,
            "boxes": [{"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in row["boxes"]],
            "annotator": row["annotator"],
            "n_annotations": row.get("n_annotations"),
            "agreement": row.get("agreement"),
            "created": row["created"].isoformat(),
            "sha256": item.sha256,
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


def box_coco_chunks(rows: Iterable[Row], classes: Sequence[str]) -> Iterator[str]:
    """COCO JSON of the rows (``formats.boxes.coco_chunks``): every image with its size, also those
    with no boxes; category ids from 1 in ``classes`` order."""
    return coco_chunks((box_answer(row) for row in rows), classes)


def unique_stem(filename: str, taken: NameSet) -> str:
    """The stem of ``filename``'s last part (``image`` when it has none), with ``_1``, ``_2`` ...
    added when an earlier file of the archive took it; compared without case, as macOS and Windows
    would unpack them into one file."""
    stem = name_parts(filename)[0] or "image"
    name, n = stem, 1
    while name.casefold() in taken:
        name = f"{stem}_{n}"
        n += 1
    taken.add(name.casefold())
    return name


def _text_member(archive: ZipWriter, name: str, text: str | bytes) -> None:
    archive.add(name, io.BytesIO(text.encode("utf-8") if isinstance(text, str) else text))


def _image_member(archive: ZipWriter, folder: str, stem: str, row: Row, open_file: OpenFile) -> str:
    """Store the row's image as ``folder/<stem><stored suffix>``; returns that name."""
    item = row["item"]
    name = f"{folder}/{stem}{name_parts(item.file.name)[1]}"
    with open_file(item) as src:
        archive.add(name, src)
    return name


def write_yolo(rows: Iterable[Row], out: IO[bytes], classes: Sequence[str], open_file: OpenFile | None = None) -> int:
    """A YOLO dataset zip: ``data.yaml`` and ``classes.txt`` (class ids from 0 in ``classes`` order),
    ``labels/<stem>.txt`` per image (``class cx cy w h`` normalised; empty: nothing here) and, with
    ``open_file``, ``images/<stem><suffix>`` beside it. Stems are the original names', made unique.
    Returns the number of images."""
    taken = NameSet()
    count = 0
    with ZipWriter(out) as archive, contextlib.closing(taken):
        _text_member(archive, "data.yaml", yolo_data_yaml(classes))
        _text_member(archive, "classes.txt", "".join(name + "\n" for name in classes))
        for row in rows:
            item = row["item"]
            stem = unique_stem(row["filename"], taken)
            if open_file is not None:
                _image_member(archive, "images", stem, row, open_file)
            text = yolo_text(row["boxes"], classes=classes, width=item.width, height=item.height)
            _text_member(archive, f"labels/{stem}.txt", text)
            count += 1
    return count


def write_voc(rows: Iterable[Row], out: IO[bytes], open_file: OpenFile | None = None) -> int:
    """A Pascal VOC zip: ``Annotations/<stem>.xml`` per image (an image with nothing in it has no
    ``object``) and, with ``open_file``, ``images/<stem><suffix>``, which the XML's ``filename`` and
    ``path`` then name; without, they name the original file. Returns the number of images."""
    taken = NameSet()
    count = 0
    with ZipWriter(out) as archive, contextlib.closing(taken):
        for row in rows:
            stem = unique_stem(row["filename"], taken)
            answer = box_answer(row)
            if open_file is not None:
                answer.filename = _image_member(archive, "images", stem, row, open_file)
            _text_member(archive, f"Annotations/{stem}.xml", voc_xml(answer))
            count += 1
    return count
