"""Exports of box projects, downloaded now (``GET /api/projects/{id}/export/``) and written by a
background job (``POST /api/projects/{id}/exports/``): every format read back gives the boxes
stored, in pixels of the displayed image (EXIF turns applied), with the images that have nothing in
them, and COCO, YOLO and VOC zips with the images import into a new box project with the same
boxes; the formats offered follow the project's kind; box rows are read a chunk of items per query."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import PurePosixPath

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from annotator.formats.boxes import Box, read_coco, read_voc, read_yolo, read_yolo_classes
from annotator.formats.exports import BOX_EXPORT_FORMATS
from annotator.models import Item, Job, ReviewStatus
from annotator.selectors import exports as export_selectors
from annotator.services.annotations import annotation_create
from annotator.services.jobs import job_run
from annotator.services.projects import project_create
from tests.annotator.helpers import upload
from tests.factories import make_project, png_bytes

pytestmark = pytest.mark.django_db

CLASSES = ["car", "person"]
#: What the street project's export holds, in item order: (file name in the zips, displayed width,
#: height, boxes). Two images are both called b.png: the zips name the second b_1.
EXPECTED = [
    ("turned", 30, 60, [Box("car", 1, 2, 3, 50), Box("person", 20, 40, 9.5, 19.25)]),
    ("b", 24, 24, [Box("car", 1, 2, 3, 4)]),
    ("c", 24, 24, []),  # nothing here
    ("b_1", 24, 24, [Box("person", 0.5, 0.75, 10, 10.33), Box("person", 12, 12, 5, 5)]),
]
UPLOADED = ["turned.jpg", "b.png", "c.png", "b.png"]
SIZES = {name: (width, height) for name, width, height, _ in EXPECTED}


def rotated_jpeg() -> bytes:
    """Stored 60 x 30; its EXIF orientation 6 shows it turned a quarter: 30 wide, 60 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = io.BytesIO()
    Image.new("RGB", (60, 30), "gray").save(data, format="JPEG", exif=exif)
    return data.getvalue()


def boxes(*given: Box) -> list[dict]:
    return [{"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in given]


@pytest.fixture
def street(user):
    """A box project: a turned photo with a box only its displayed size holds, two images both named
    b.png, one with nothing in it, one unlabeled and one labeled but reviewed as ambiguous."""
    project = project_create(name="Street", labels=CLASSES, user=user, kind="boxes")
    photos = [rotated_jpeg(), png_bytes(1), png_bytes(3), png_bytes(2), png_bytes(4), png_bytes(5)]
    names = [*UPLOADED, "unlabeled.png", "unsure.png"]
    upload(project, list(zip(names, photos, strict=True)), user=user)
    items = list(Item.objects.filter(project=project).select_related("project").order_by("id"))
    for item, (_, _, _, given) in zip(items, EXPECTED, strict=False):
        annotation_create(item=item, user=user, boxes=boxes(*given))
    annotation_create(item=items[5], user=user, boxes=boxes(Box("car", 2, 2, 5, 5)))
    Item.objects.filter(id=items[5].id).update(review_status=ReviewStatus.AMBIGUOUS)
    return project


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def read_back(fmt: str, data: bytes) -> list[tuple[str, int | None, int | None, list[Box]]]:
    """The export ``data`` of ``fmt`` as ``(file name, width, height, boxes)`` per image, in file
    order, through the readers of ``formats.boxes`` (``csv`` and ``json`` for the text formats).
    The zips' files are named by stem; YOLO files hold no size (``None``: normalised to the image's)."""
    if fmt == "csv":
        images: list[tuple[str, int | None, int | None, list[Box]]] = []
        for r in csv.DictReader(io.StringIO(data.decode(), newline="")):
            if not images or images[-1][0] != r["filename"]:
                images.append((r["filename"], int(r["width"]), int(r["height"]), []))
            if r["label"]:
                images[-1][3].append(Box(r["label"], *(float(r[k]) for k in "xywh")))
        return images
    if fmt == "jsonl":
        records = [json.loads(line) for line in data.decode().splitlines()]
        return [(r["filename"], r["width"], r["height"], [Box(**b) for b in r["boxes"]]) for r in records]
    if fmt == "coco":
        answers, problems = read_coco(data)
        assert problems == []
        return [(a.filename, a.width, a.height, a.boxes) for a in answers]
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    if fmt == "yolo":
        classes = read_yolo_classes(archive.read("data.yaml"), name="data.yaml")
        assert classes == read_yolo_classes(archive.read("classes.txt"), name="classes.txt") == CLASSES
        labels = [n for n in archive.namelist() if n.startswith("labels/")]
        return [
            (
                stem(n),
                None,
                None,
                read_yolo(archive.read(n), classes=classes, width=SIZES[stem(n)][0], height=SIZES[stem(n)][1]),
            )
            for n in labels
        ]
    answers = {n: read_voc(archive.read(n)) for n in archive.namelist() if n.startswith("Annotations/")}
    return [(stem(n), a.width, a.height, a.boxes) for n, a in answers.items()]


def stem(name: str) -> str:
    return PurePosixPath(name).stem


def assert_same(found, expected=EXPECTED, names=None) -> None:
    """``found`` holds the expected images in order (named ``names``, default the stems), each with
    its size and boxes to 0.01 px."""
    assert [f[0] for f in found] == (names or [e[0] for e in expected])
    for (_, width, height, got), (name, want_width, want_height, want) in zip(found, expected, strict=True):
        assert (width or want_width, height or want_height) == (want_width, want_height), name
        assert [b.label for b in got] == [b.label for b in want], name
        for p, q in zip(got, want, strict=True):
            assert (p.x, p.y, p.w, p.h) == pytest.approx((q.x, q.y, q.w, q.h), abs=0.01), name


@pytest.mark.parametrize("fmt", BOX_EXPORT_FORMATS)
def test_each_format_downloaded_gives_back_the_boxes_in_displayed_pixels(api, street, fmt):
    # When a manager downloads the export
    response = api.get(f"/api/projects/{street.id}/export/?format={fmt}")
    # Then it reads back as the boxes stored: the turned photo's in its displayed 30 x 60 pixels,
    # the image with nothing in it present without boxes, the unlabeled and the ambiguous ones left out
    assert response.status_code == 200
    data = content(response)
    if fmt in {"yolo", "voc"}:
        assert response["Content-Type"] == "application/zip"
        assert response["Content-Disposition"] == f'attachment; filename="Street-labels-{fmt}.zip"'
        assert_same(read_back(fmt, data))
        # A download holds the labels only
        assert not any(n.startswith("images/") for n in zipfile.ZipFile(io.BytesIO(data)).namelist())
    else:
        # The text formats name each file as it was uploaded
        assert_same(read_back(fmt, data), names=UPLOADED)


def test_coco_export_loads_with_pycocotools(api, street, tmp_path):
    from pycocotools.coco import COCO

    # When the COCO file is downloaded and loaded by pycocotools
    path = tmp_path / "coco.json"
    path.write_bytes(content(api.get(f"/api/projects/{street.id}/export/?format=coco")))
    coco = COCO(str(path))
    # Then its categories are the classes in order, every labeled image is listed with its displayed size
    # (the one with nothing in it too), and each box is a bbox in pixels with its area
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [(1, "car"), (2, "person")]
    images = coco.loadImgs(coco.getImgIds())
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [
        ("turned.jpg", 30, 60),
        ("b.png", 24, 24),
        ("c.png", 24, 24),
        ("b.png", 24, 24),
    ]
    turned = coco.loadAnns(coco.getAnnIds(imgIds=[images[0]["id"]]))
    assert [(a["category_id"], a["bbox"], a["area"], a["iscrowd"]) for a in turned] == [
        (1, [1, 2, 3, 50], 150, 0),
        (2, [20, 40, 9.5, 19.25], pytest.approx(9.5 * 19.25, abs=0.01), 0),
    ]
    assert coco.getAnnIds(imgIds=[images[2]["id"]]) == []
    assert len(coco.getAnnIds(catIds=[2])) == 3


def test_ambiguous_items_only_with_include_ambiguous(api, street):
    # Given the image reviewed as ambiguous
    url = f"/api/projects/{street.id}/export/?format=jsonl"
    # Then it is left out, unless asked for
    assert [json.loads(line)["filename"] for line in content(api.get(url)).decode().splitlines()] == UPLOADED
    records = [json.loads(line) for line in content(api.get(url + "&include_ambiguous=1")).decode().splitlines()]
    assert [r["filename"] for r in records] == [*UPLOADED, "unsure.png"]
    assert records[-1]["boxes"] == [{"label": "car", "x": 2.0, "y": 2.0, "w": 5.0, "h": 5.0}]


def test_formats_follow_the_kind_and_the_others_are_a_400_naming_the_valid_ones(api, street, user):
    pets = make_project(user, labels=["cat", "dog"])
    # When a box project is asked for ImageFolder and a classification project for YOLO or VOC, now or as a job
    refused = {
        "box download": api.get(f"/api/projects/{street.id}/export/?format=imagefolder"),
        "box job": api.post(f"/api/projects/{street.id}/exports/", {"format": "imagefolder"}, format="json"),
        "class download": api.get(f"/api/projects/{pets.id}/export/?format=yolo"),
        "class job": api.post(f"/api/projects/{pets.id}/exports/", {"format": "voc"}, format="json"),
        "unknown": api.get(f"/api/projects/{street.id}/export/?format=pdf"),
    }
    # Then each is a 400 naming the formats the project's kind has, and no job is queued
    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 400)
    box_valid, class_valid = "csv, jsonl, coco, yolo, voc.", "csv, jsonl, coco, imagefolder."
    assert refused["box download"].json()["format"][0].endswith("is not for box projects; valid formats: " + box_valid)
    assert refused["box job"].json()["detail"].endswith(box_valid)
    assert refused["class download"].json()["format"][0].endswith(class_valid)
    assert refused["class job"].json()["detail"].endswith(class_valid)
    assert refused["unknown"].json()["format"][0] == f"Unknown export format 'pdf'; valid formats: {box_valid}"
    assert not Job.objects.exists()
    # And the project page's download too
    page = Client()
    page.force_login(user)
    assert page.get(f"/projects/{street.id}/export/?format=imagefolder").status_code == 400
    assert page.get(f"/projects/{pets.id}/export/?format=yolo").status_code == 400


def test_the_project_page_offers_the_kinds_formats(user, street):
    pets = make_project(user, labels=["cat", "dog"])
    page = Client()
    page.force_login(user)
    for project, offered in ((street, BOX_EXPORT_FORMATS), (pets, ("csv", "jsonl", "coco", "imagefolder"))):
        html = page.get(f"/projects/{project.id}/").content.decode()
        section = html[html.index('id="export"') : html.index('id="job-message"')]
        assert re.findall(r"\?format=(\w+)", section) == list(offered), project.kind
        assert re.findall(r'<option value="(\w+)">', section) == list(offered), project.kind


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco", "csv"])
def test_a_background_export_with_the_images_zips_them_with_the_labels(api, street, fmt):
    # When a manager queues an export with the images, and a worker runs it
    response = api.post(f"/api/projects/{street.id}/exports/", {"format": fmt, "images": True}, format="json")
    assert response.status_code == 202, response.json()
    job_run(job_id=response.json()["id"])
    job = Job.objects.get(id=response.json()["id"])
    assert job.status == Job.Status.DONE, job.error
    assert job.summary == {"items": 4, "format": fmt, "images": True, "bytes": job.summary["bytes"], "boxes": 5}
    download = api.get(f"/api/jobs/{job.id}/download/")
    ending = {"yolo": "-yolo.zip", "voc": "-voc.zip", "coco": "-coco.zip", "csv": ".zip"}[fmt]
    assert download["Content-Disposition"] == f'attachment; filename="street-labels{ending}"'
    data = content(download)
    archive = zipfile.ZipFile(io.BytesIO(data))
    stored = [item.file.read() for item in Item.objects.filter(project=street).order_by("id")[:4]]
    if fmt in {"yolo", "voc"}:
        # Then the labels read back as stored, each beside its image, as it was uploaded, under images/
        assert_same(read_back(fmt, data))
        pictures = [n for n in archive.namelist() if n.startswith("images/")]
        assert pictures == ["images/turned.jpg", "images/b.png", "images/c.png", "images/b_1.png"]
        assert [archive.read(n) for n in pictures] == stored
        if fmt == "voc":
            assert [read_voc(archive.read(f"Annotations/{stem(n)}.xml")).filename for n in pictures] == [
                "turned.jpg",
                "b.png",
                "c.png",
                "b_1.png",
            ]
    else:
        # Then the labels file names each image as it is in the zip, and reads back as stored
        found = read_back(fmt, archive.read("street-labels" + {"coco": "-coco.json", "csv": ".csv"}[fmt]))
        names = [name for name, *_ in found]
        assert_same(found, names=names)
        assert [archive.read(name) for name in names] == stored


def test_box_rows_are_read_a_chunk_of_items_per_query(street, monkeypatch):
    # Given box rows read two items at a time
    monkeypatch.setattr(export_selectors, "BOX_CHUNK", 2)
    # When the four exported images' rows are read
    with CaptureQueriesContext(connection) as queries:
        rows = list(export_selectors.export_box_rows(project=street))
    # Then the boxes took one query per chunk, not one per item
    assert [len(r["boxes"]) for r in rows] == [2, 1, 0, 2]
    assert sum("annotator_itembox" in q["sql"] for q in queries.captured_queries) == 2


def test_the_schema_describes_the_box_formats(db):
    schema = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    download = schema["paths"]["/api/projects/{project_id}/export/"]["get"]["parameters"]
    (fmt,) = [p for p in download if p["name"] == "format"]
    assert {"yolo", "voc", "imagefolder"} <= set(fmt["schema"]["enum"]) and "box projects" in fmt["description"]

    def resolved(node: dict) -> dict:
        node = node["allOf"][0] if "allOf" in node else node
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node

    body = schema["paths"]["/api/projects/{project_id}/exports/"]["post"]["requestBody"]["content"]
    job = resolved(resolved(body["application/json"]["schema"])["properties"]["format"])
    assert {"yolo", "voc", "imagefolder"} <= set(job["enum"])


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco", "csv", "jsonl"])
def test_an_export_with_the_images_imports_into_a_new_project_with_the_same_boxes(api, street, user, fmt):
    # Given an export with the images, written by a job
    response = api.post(f"/api/projects/{street.id}/exports/", {"format": fmt, "images": True}, format="json")
    job_run(job_id=response.json()["id"])
    data = content(api.get(f"/api/jobs/{response.json()['id']}/download/"))
    # When its zip is uploaded to a new box project
    again = project_create(name="Again", labels=CLASSES, user=user, kind="boxes")
    summary = upload(again, [("export.zip", data)], user=user)
    # Then every image comes back labeled, with the same boxes on the same displayed size
    assert (summary.imported, summary.labeled, summary.rejected) == (4, 4, [])
    rows = list(export_selectors.export_box_rows(project=again))
    found = [(r["filename"], r["item"].width, r["item"].height, r["boxes"]) for r in rows]
    assert_same(found, names=[r["filename"] for r in rows])
