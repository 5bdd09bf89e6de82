"""``bench_api`` end to end, small: gunicorn, the one-round-trip clients, the per-label figures."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from django.core.management import call_command

from annotator import cpu_meter
from annotator.models import Item, Project

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_short_run_labels_without_duplicates_and_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    call_command(
        "bench_api",
        "--items=300",
        "--annotators=2",
        "--seconds=2",
        "--warmup=1",
        "--web-workers=1",
        "--threads=2",
        "--files=2",
        "--photo-size=2400x1800",
        "--no-worker",
        f"--json={out}",
    )
    result = json.loads(out.read_text())
    assert result["mode"] == "one-round-trip"
    assert result["labels"] > 0 and result["duplicates"] == 0 and result["lost"] == 0 and result["errors"] == 0
    assert result["cpu_ms_per_label"]["web"] > 0
    assert 1 < result["queries_per_label"] < 40
    # Each label fetched the 1600-px rendition (about 210 KB here), not the 2400-px original (about 850 KB)
    assert 50_000 < result["bytes_per_label"] < 400_000
    assert not Project.objects.filter(name__startswith="bench-api").exists() and not Item.objects.exists()


def test_a_process_trees_cpu_counts_its_childrens_work():
    busy = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'x = sum(range(30_000_000))'])"
    process = subprocess.Popen(["python3", "-c", busy + "; import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        before = cpu_meter.tree_cpu_seconds(process.pid)
        deadline = time.monotonic() + 20
        while cpu_meter.tree_cpu_seconds(process.pid) - before < 0.3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cpu_meter.tree_cpu_seconds(process.pid) - before >= 0.3  # the reaped child's time is kept
    finally:
        process.kill()
        process.wait()
