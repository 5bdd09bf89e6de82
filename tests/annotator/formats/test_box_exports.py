"""``annotator.formats.box_exports``: every box export format read back by the readers of
``annotator.formats.boxes`` (or ``csv``/``json`` for the text ones) gives the same boxes, images
with nothing in them are there, names stay unique, and no database is needed."""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
from types import SimpleNamespace

import pytest

from annotator.formats import box_exports
from annotator.formats.boxes import Box, read_coco, read_voc, read_yolo, read_yolo_classes
from annotator.formats.exports import (
    BOX_EXPORT_FORMATS,
    CLASS_EXPORT_FORMATS,
    EXPORT_FORMATS,
    NameSet,
    export_format_problem,
    export_formats,
)
from annotator.kinds import KINDS

CLASSES = ["car", "person"]
CREATED = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


def row(n: int, filename: str, width: int, height: int, boxes: list[Box], stored: str = ".png") -> dict:
    item = SimpleNamespace(
        id=n, width=width, height=height, sha256=f"sha-{n}", file=SimpleNamespace(name=f"x/{n}{stored}")
    )
    return {"item": item, "filename": filename, "boxes": boxes, "annotator": "alice", "created": CREATED}


def rows() -> list[dict]:
    return [
        row(1, "street/a.jpg", 200, 100, [Box("car", 10, 20, 30, 40), Box("person", 0.5, 1.25, 100, 50.75)], ".jpg"),
        row(2, "empty.png", 64, 48, []),  # nothing here
        row(3, "other/a.jpg", 12000, 9000, [Box("person", 11000.57, 8000.33, 999.43, 999.67)], ".jpg"),
        row(4, "A.JPG", 30, 60, [Box("car", 1, 2, 3, 50)], ".jpg"),  # a name that clashes with a.jpg on macOS
    ]


def image_bytes(item) -> io.BytesIO:
    return io.BytesIO(f"image {item.id}".encode())


def same_boxes(got: list[Box], want: list[Box]) -> None:
    assert [b.label for b in got] == [b.label for b in want]
    for p, q in zip(got, want, strict=True):
        assert (p.x, p.y, p.w, p.h) == pytest.approx((q.x, q.y, q.w, q.h), abs=0.01)


def test_each_kind_offers_its_formats_and_the_others_are_refused_by_name():
    assert export_formats(KINDS["boxes"]) == BOX_EXPORT_FORMATS == ("csv", "jsonl", "coco", "yolo", "voc")
    assert export_formats(KINDS["classification"]) == export_formats(KINDS["multi_label"]) == CLASS_EXPORT_FORMATS
    assert set(EXPORT_FORMATS) == set(BOX_EXPORT_FORMATS) | set(CLASS_EXPORT_FORMATS)
    assert all(export_format_problem(f, KINDS["boxes"]) is None for f in BOX_EXPORT_FORMATS)
    refused = export_format_problem("imagefolder", KINDS["boxes"])
    assert refused == "Export format 'imagefolder' is not for box projects; valid formats: csv, jsonl, coco, yolo, voc."
    assert "valid formats: csv, jsonl, coco, imagefolder." in export_format_problem("yolo", KINDS["classification"])
    assert export_format_problem("pdf", KINDS["boxes"]).startswith("Unknown export format 'pdf'")


def test_csv_has_a_row_per_box_and_one_empty_row_for_nothing_here():
    # When the rows are written as CSV
    table = list(csv.DictReader(io.StringIO("".join(box_exports.box_csv_lines(rows())), newline="")))
    # Then the header is the documented one, each box a row, and the empty image one row without a box
    assert list(table[0]) == ["filename", "width", "height", "label", "x", "y", "w", "h", "annotator", "created"]
    assert [r["filename"] for r in table] == ["street/a.jpg", "street/a.jpg", "empty.png", "other/a.jpg", "A.JPG"]
    assert table[2] == {
        "filename": "empty.png",
        "width": "64",
        "height": "48",
        "label": "",
        "x": "",
        "y": "",
        "w": "",
        "h": "",
        "annotator": "alice",
        "created": CREATED.isoformat(),
    }
    assert (table[0]["x"], table[1]["y"], table[3]["x"]) == ("10", "1.25", "11000.57")
    # And read back, the boxes are the same
    for source in rows():
        got = [
            Box(r["label"], float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]))
            for r in table
            if r["filename"] == source["filename"] and r["label"]
        ]
        same_boxes(got, source["boxes"])


def test_jsonl_has_a_line_per_image_with_its_boxes():
    lines = [json.loads(line) for line in "".join(box_exports.box_jsonl_lines(rows())).splitlines()]
    assert [line["filename"] for line in lines] == ["street/a.jpg", "empty.png", "other/a.jpg", "A.JPG"]
    assert (lines[1]["width"], lines[1]["height"], lines[1]["boxes"]) == (64, 48, [])
    assert {"annotator", "created", "sha256"} <= set(lines[0])
    for line, source in zip(lines, rows(), strict=True):
        same_boxes([Box(**b) for b in line["boxes"]], source["boxes"])


def test_coco_loads_with_pycocotools_and_reads_back_the_same_boxes(tmp_path):
    from pycocotools.coco import COCO

    path = tmp_path / "coco.json"
    path.write_text("".join(box_exports.box_coco_chunks(rows(), CLASSES)))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    images = coco.loadImgs(coco.getImgIds())
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [
        ("street/a.jpg", 200, 100),
        ("empty.png", 64, 48),
        ("other/a.jpg", 12000, 9000),
        ("A.JPG", 30, 60),
    ]
    first = coco.loadAnns(coco.getAnnIds(imgIds=[images[0]["id"]]))
    assert [a["bbox"] for a in first] == [[10, 20, 30, 40], [0.5, 1.25, 100, 50.75]]
    assert [a["area"] for a in first] == [1200, pytest.approx(5075)] and {a["iscrowd"] for a in first} == {0}
    assert [a["category_id"] for a in first] == [1, 2]
    assert coco.getAnnIds(imgIds=[images[1]["id"]]) == []
    answers, problems = read_coco(path.read_bytes())
    assert problems == []
    for answer, source in zip(answers, rows(), strict=True):
        same_boxes(answer.boxes, source["boxes"])


@pytest.mark.parametrize("images", [False, True])
def test_yolo_zip_reads_back_the_same_boxes_with_unique_stems(images):
    out = io.BytesIO()
    count = box_exports.write_yolo(rows(), out, CLASSES, image_bytes if images else None)
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert count == 4 and archive.testzip() is None
    labels = ["labels/a.txt", "labels/empty.txt", "labels/a_1.txt", "labels/A_2.txt"]
    pictures = ["images/a.jpg", "images/empty.png", "images/a_1.jpg", "images/A_2.jpg"] if images else []
    assert sorted(archive.namelist()) == sorted(["data.yaml", "classes.txt", *labels, *pictures])
    assert read_yolo_classes(archive.read("data.yaml"), name="data.yaml") == CLASSES
    assert read_yolo_classes(archive.read("classes.txt"), name="classes.txt") == CLASSES
    assert archive.read("labels/empty.txt") == b""
    if images:
        assert archive.read("images/a_1.jpg") == b"image 3"
    for name, source in zip(labels, rows(), strict=True):
        item = source["item"]
        got = read_yolo(archive.read(name), classes=CLASSES, width=item.width, height=item.height)
        same_boxes(got, source["boxes"])


@pytest.mark.parametrize("images", [False, True])
def test_voc_zip_reads_back_the_same_boxes_and_sizes(images):
    out = io.BytesIO()
    assert box_exports.write_voc(rows(), out, image_bytes if images else None) == 4
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    files = ["Annotations/a.xml", "Annotations/empty.xml", "Annotations/a_1.xml", "Annotations/A_2.xml"]
    pictures = ["images/a.jpg", "images/empty.png", "images/a_1.jpg", "images/A_2.jpg"] if images else []
    assert sorted(archive.namelist()) == sorted(files + pictures)
    for name, picture, source in zip(files, pictures or [None] * 4, rows(), strict=True):
        answer = read_voc(archive.read(name))
        # The XML names the image in the zip, or without the images the original file
        assert answer.filename == (picture.split("/")[1] if picture else source["filename"].split("/")[-1])
        assert (answer.width, answer.height) == (source["item"].width, source["item"].height)
        same_boxes(answer.boxes, source["boxes"])
    assert b"<object>" not in archive.read("Annotations/empty.xml")


def test_stems_are_unique_without_case_and_never_empty():
    taken = NameSet()
    names = [box_exports.unique_stem(f, taken) for f in ["a.jpg", "A.png", "a_1.jpg", "dir\\a.tif", ".jpg", ""]]
    taken.close()
    assert names == ["a", "A_1", "a_1_1", "a_2", ".jpg", "image"]
    assert [box_exports.pixels(v) for v in (12.0, 12.5, 0.125, 12345.678)] == ["12", "12.5", "0.12", "12345.68"]
