"""Export jobs stream: their peak Python memory hardly grows with the number of items, and the
``bench_export`` command that measures this at scale reports its figures."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotator import benchdata
from annotator.formats.exports import CLASS_EXPORT_FORMATS
from annotator.models import BoxRole, Item, ItemBox, ItemClass, Project
from annotator.selectors.exports import export_box_rows, export_rows

pytestmark = pytest.mark.django_db

SMALL, LARGE = 200, 2000
MB = 1024 * 1024
# Streaming exports measured 0.4-1.7 MB at 200 items and 2.5-4.6 MB at 2000 (the database
# iterator holds a chunk of up to 2000 rows); holding every row measured 8.8-11.3 MB at 2000.
# Zips (imagefolder, or any format with the images) write their central directory through a
# temporary file (annotator.formats.zipstream); with zipfile's in-memory one they measured 8 MB at 10k items
# and 50 MB at 100k in ``bench_export``.
# Box projects (rows with their boxes, read 100 items per query) measured 1.0-1.2 MB at 200 items and
# 3.0-3.1 MB at 2000, 1.7 -> 3.9 MB with the images; before an export dropped each item's FieldFile
# (a reference cycle with its item) after zipping its image, 2.1 -> 6.5 MB with the images.
ALLOWED_GROWTH = 1.5
ALLOWED_EXTRA = 3 * MB


def peaks(fmt: str, small: Project, large: Project, *, images: bool = False) -> tuple[int, int]:
    return tuple(
        benchdata.traced_peak(lambda p=p: benchdata.export_run(project=p, fmt=fmt, images=images))[1]
        for p in (small, large)
    )


def flat(small_peak: int, large_peak: int) -> bool:
    return large_peak < ALLOWED_GROWTH * small_peak + ALLOWED_EXTRA


@pytest.fixture
def projects() -> tuple[Project, Project]:
    small = benchdata.labeled_project_create(name="small", n_items=SMALL)
    large = benchdata.labeled_project_create(name="large", n_items=LARGE)
    return small, large


def boxes_project_create(*, name: str, n_items: int) -> Project:
    """A box project of ``n_items`` labeled 16 x 16 items: every fifth with nothing in it, the others
    with one to three consensus boxes (a labeled project made a box one, its classes the classes present)."""
    project = benchdata.labeled_project_create(name=name, n_items=n_items)
    Project.objects.filter(id=project.id).update(kind="boxes")
    project.refresh_from_db()
    class_ids = list(project.classes.order_by("index").values_list("id", flat=True))
    items = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    boxes = [
        ItemBox(
            item_id=item_id,
            role=BoxRole.CONSENSUS,
            label_class_id=class_ids[(i + k) % len(class_ids)],
            x=k * 4.25,
            y=1.5,
            w=3.5,
            h=10.75,
        )
        for i, item_id in enumerate(items)
        for k in range(i % 5 and 1 + i % 3)
    ]
    ItemBox.objects.bulk_create(boxes, batch_size=2000)
    nothing = [item_id for i, item_id in enumerate(items) if i % 5 == 0]
    ItemClass.objects.filter(item_id__in=nothing).delete()
    return project


@pytest.fixture
def box_projects() -> tuple[Project, Project]:
    return boxes_project_create(name="small", n_items=SMALL), boxes_project_create(name="large", n_items=LARGE)


def test_export_peak_memory_hardly_grows_with_the_items(projects):
    # Given labeled projects of 200 and 2000 items
    # When each format is exported from both through the job path, with the Python heap traced
    measured = {fmt: peaks(fmt, *projects) for fmt in CLASS_EXPORT_FORMATS}
    measured["jsonl with images"] = peaks("jsonl", *projects, images=True)
    # Then ten times the items takes less than 1.5 times the memory plus a chunk of rows, in every format
    table = {fmt: f"{s / MB:.2f} MB -> {b / MB:.2f} MB" for fmt, (s, b) in measured.items()}
    assert all(flat(s, b) for s, b in measured.values()), table


def test_box_export_peak_memory_hardly_grows_with_the_items(box_projects, monkeypatch):
    # Given box projects of 200 and 2000 labeled items, with 1 to 3 boxes or nothing in each
    assert ItemBox.objects.filter(item__project=box_projects[1]).count() == 3200
    # When box formats are exported from both through the job path, with the Python heap traced (the
    # text formats share their rows: CSV stands for JSON Lines; COCO goes with the images)
    measured = {fmt: peaks(fmt, *box_projects) for fmt in ("csv", "yolo", "voc")}
    measured["coco with images"] = peaks("coco", *box_projects, images=True)
    # Then ten times the items takes less than 1.5 times the memory plus a chunk of rows, in every format
    table = {fmt: f"{s / MB:.2f} MB -> {b / MB:.2f} MB" for fmt, (s, b) in measured.items()}
    assert all(flat(s, b) for s, b in measured.values()), table
    # And the check fails a box export that reads all its rows, with their boxes, into a list first
    streaming = export_box_rows
    monkeypatch.setattr("annotator.services.exports.export_box_rows", lambda **kwargs: iter(list(streaming(**kwargs))))
    small_peak, large_peak = peaks("yolo", *box_projects)
    assert not flat(small_peak, large_peak), (small_peak / MB, large_peak / MB)


def test_the_check_fails_an_export_that_holds_every_row(projects, monkeypatch):
    # Given an export that reads all its rows into a list before writing them
    streaming = export_rows
    monkeypatch.setattr("annotator.services.exports.export_rows", lambda **kwargs: iter(list(streaming(**kwargs))))
    # When it is measured like the real ones
    small_peak, large_peak = peaks("csv", *projects)
    # Then its memory is not flat
    assert not flat(small_peak, large_peak), (small_peak / MB, large_peak / MB)


def test_bench_export_writes_its_figures(tmp_path):
    # Given no projects
    out = tmp_path / "bench.json"
    # When the benchmark runs with 300 items
    # (the formats of its classification projects: box formats are refused them)
    formats = ",".join(CLASS_EXPORT_FORMATS)
    command = ["bench_export", "--items", "300", "--formats", formats, "--json", str(out)]
    call_command(*command, stdout=io.StringIO(), stderr=io.StringIO())
    # Then it writes every format's figures and removes what it made
    result = json.loads(out.read_text())
    assert result["items"] == 300 and result["items_small"] == 30
    assert set(result["formats"]) == set(CLASS_EXPORT_FORMATS)
    for figures in result["formats"].values():
        assert {"seconds", "items_per_s", "bytes", "peak_mb_small", "peak_mb"} <= set(figures)
        assert figures["bytes"] > 0
    assert not Project.objects.exists()
