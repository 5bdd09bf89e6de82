"""``annotator/api/exports.py``: CSV and ImageFolder exports."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from tests.annotator.helpers import files
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def test_export_csv_and_imagefolder(api, project, user):
    pid = project["id"]
    api.post(
        f"/api/projects/{pid}/items/",
        files(("a.png", png_bytes(1)), ("b.png", png_bytes(2)), ("c.png", png_bytes(3))),
        format="multipart",
    )
    labels = {}
    for label in ["cat", "dog"]:
        item = api.get(f"/api/projects/{pid}/next/").json()
        api.post(f"/api/items/{item['id']}/annotations/", {"label": label}, format="json")
        labels[item["filename"]] = label
    response = api.get(f"/api/projects/{pid}/export/?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["filename"]: r["label"] for r in rows} == labels
    assert {r["annotator"] for r in rows} == {"alice"}
    assert list(rows[0]) == ["filename", "label", "annotator", "created"]

    response = api.get(f"/api/projects/{pid}/export/?format=imagefolder")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(f"{label}/{name}" for name, label in labels.items())
    assert api.get(f"/api/projects/{pid}/export/?format=pdf").status_code == 400
