"""Export formats: JSON Lines with predictions, and COCO JSON that pycocotools loads."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from annotator.models import Item
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from tests.factories import make_project, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(user):
    project = make_project(user, labels=["cat", "dog", "bird"])
    items_import_uploads(project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(i))) for i in range(4)], user=user)
    items = list(Item.objects.filter(project=project).order_by("id"))
    Item.objects.filter(id=items[0].id).update(
        pred_label=project.classes.get(name="dog"), pred_confidence=0.75, score=0.4
    )
    for item, label in zip(items[:3], ["dog", "bird", "dog"], strict=True):
        item.refresh_from_db()
        annotation_create(item=item, user=user, label=label)
    return project


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_jsonl_carries_prediction_confidence_and_score(api, labeled):
    response = api.get(f"/api/projects/{labeled.id}/export/?format=jsonl")
    assert response.status_code == 200
    records = [json.loads(line) for line in body(response).decode().splitlines()]
    assert [r["label"] for r in records] == ["dog", "bird", "dog"]
    assert records[0]["prediction"] == "dog" and records[0]["confidence"] == 0.75 and records[0]["score"] == 0.4
    assert records[1]["prediction"] is None
    assert {"filename", "annotator", "created", "width", "height", "sha256"} <= set(records[0])


def test_coco_loads_with_pycocotools(api, labeled, tmp_path):
    from pycocotools.coco import COCO

    response = api.get(f"/api/projects/{labeled.id}/export/?format=coco")
    assert response.status_code == 200
    path = tmp_path / "coco.json"
    path.write_bytes(body(response))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog", "bird"]
    assert len(coco.getImgIds()) == 3
    dog = coco.getCatIds(catNms=["dog"])[0]
    assert len(coco.getAnnIds(catIds=[dog])) == 2
    first = coco.loadImgs(coco.getImgIds())[0]
    assert first["width"] == 24 and first["file_name"].endswith(".png")


def test_empty_project_exports_are_valid(user):
    project = make_project(user)
    client = APIClient()
    client.force_authenticate(user)
    coco = json.loads(body(client.get(f"/api/projects/{project.id}/export/?format=coco")))
    assert coco["images"] == [] and coco["annotations"] == [] and len(coco["categories"]) == 2
    assert body(client.get(f"/api/projects/{project.id}/export/?format=jsonl")) == b""


def test_imagefolder_names_stay_unique_and_keep_the_stored_format():
    from annotator.formats import exports

    # Given three files of one class with the same base name (one from a Windows path)
    taken = exports.NameSet()
    names = [exports.imagefolder_name("cat", f, taken) for f in ["a/x.png", "b\\x.png", "x.png", ".png"]]
    # Then each gets its own name in the class folder, the first one unchanged
    assert names == ["cat/x.png", "cat/x_1.png", "cat/x_2.png", "cat/.png"]
    assert "cat/x_1.png" in taken and "dog/x.png" not in taken
    taken.close()
    assert exports.name_parts("dir\\sub/photo.tar.jpg") == ("photo.tar", ".jpg")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted(start):
    import csv
    import datetime

    from annotator.formats import exports

    # Given a labeled item whose file name, class and annotator start with a formula character
    created = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    evil = f'{start}HYPERLINK("http://x")'
    rows = [
        {"filename": evil + ".png", "labels": [evil], "annotator": evil, "created": created},
        {"filename": "plain.png", "labels": ["cat", evil], "annotator": "alice", "created": created},
    ]
    # When it is written as CSV
    text = "".join(exports.csv_lines(rows))
    # Then each such cell starts with a single quote (OWASP), and the others are as they were
    header, first, second = list(csv.reader(io.StringIO(text, newline="")))
    assert header == ["filename", "label", "annotator", "created"]
    assert first == ["'" + evil + ".png", "'" + evil, "'" + evil, created.isoformat()]
    assert second == ["plain.png", "cat;" + evil, "alice", created.isoformat()]
