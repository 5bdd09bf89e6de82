"""``annotator/services/imports.py``: storing uploads, zips and folders, counting duplicates and rejections."""

from __future__ import annotations

import pytest

from annotator.models import Annotation, Item
from annotator.services.imports import items_import_folder
from tests.annotator.helpers import upload
from tests.factories import label_of, make_project, png_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def test_import_counts_duplicates_and_rejects_bad_files_but_keeps_the_rest(user):
    project = make_project(user)
    summary = upload(
        project,
        [("a.png", png_bytes(1)), ("b.png", png_bytes(2)), ("a-again.png", png_bytes(1)), ("notes.jpg", b"hello")],
    )
    assert (summary.imported, summary.duplicates) == (2, 1)
    assert summary.rejected == [{"name": "notes.jpg", "error": "not a readable image (unknown or unsupported format)"}]
    items = list(Item.objects.filter(project=project).order_by("original_name"))
    assert [i.original_name for i in items] == ["a.png", "b.png"]
    assert all(i.width == 24 and i.height == 24 and len(i.sha256) == 64 for i in items)
    assert all(i.cache_row is not None for i in items)
    # A second upload of the same file is a duplicate too.
    assert upload(project, [("c.png", png_bytes(2))]).duplicates == 1


def test_import_zip_takes_labels_from_class_folders(user):
    project = make_project(user)
    archive = zip_bytes({"cat/1.png": png_bytes(1), "dog/2.png": png_bytes(2), "other/3.png": png_bytes(3)})
    summary = upload(project, [("pets.zip", archive)], user)
    assert (summary.imported, summary.labeled) == (3, 2)
    labels = {i.original_name: label_of(i) for i in Item.objects.filter(project=project)}
    assert labels == {"cat/1.png": "cat", "dog/2.png": "dog", "other/3.png": None}
    assert Annotation.objects.filter(source="import").count() == 2


def test_import_folder(user, tmp_path):
    project = make_project(user)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "x.png").write_bytes(png_bytes(5))
    (tmp_path / "y.png").write_bytes(png_bytes(6))
    (tmp_path / "readme.txt").write_text("not an image")
    summary = items_import_folder(project=project, root=tmp_path, user=None)
    assert (summary.imported, summary.labeled) == (2, 1)
    assert summary.rejected[0]["name"] == "readme.txt"
