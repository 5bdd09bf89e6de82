"""Export jobs stream: their peak Python memory hardly grows with the number of items, and the
``bench_export`` command that measures this at scale reports its figures."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotator import benchdata
from annotator.models import Project
from annotator.selectors.exports import export_rows
from annotator.services.jobs import JOB_EXPORT_FORMATS

pytestmark = pytest.mark.django_db

SMALL, LARGE = 200, 2000
MB = 1024 * 1024
# Streaming exports measured 0.4-1.7 MB at 200 items and 2.5-4.6 MB at 2000 (the database
# iterator holds a chunk of up to 2000 rows); holding every row measured 8.8-11.3 MB at 2000.
# Zips (imagefolder, or any format with the images) write their central directory through a
# temporary file (annotator.formats.zipstream); with zipfile's in-memory one they measured 8 MB at 10k items
# and 50 MB at 100k in ``bench_export``.
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


def test_export_peak_memory_hardly_grows_with_the_items(projects):
    # Given labeled projects of 200 and 2000 items
    # When each format is exported from both through the job path, with the Python heap traced
    measured = {fmt: peaks(fmt, *projects) for fmt in JOB_EXPORT_FORMATS}
    measured["jsonl with images"] = peaks("jsonl", *projects, images=True)
    # Then ten times the items takes less than 1.5 times the memory plus a chunk of rows, in every format
    table = {fmt: f"{s / MB:.2f} MB -> {b / MB:.2f} MB" for fmt, (s, b) in measured.items()}
    assert all(flat(s, b) for s, b in measured.values()), table


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
    call_command("bench_export", "--items", "300", "--json", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    # Then it writes every format's figures and removes what it made
    result = json.loads(out.read_text())
    assert result["items"] == 300 and result["items_small"] == 30
    assert set(result["formats"]) == set(JOB_EXPORT_FORMATS)
    for figures in result["formats"].values():
        assert {"seconds", "items_per_s", "bytes", "peak_mb_small", "peak_mb"} <= set(figures)
        assert figures["bytes"] > 0
    assert not Project.objects.exists()
