"""``manage.py bench_export``: background exports at scale, and whether their memory stays flat.

Fills two throwaway projects, one of N labeled items and one of N/10, then runs each export format
through the job path the worker runs (``services.job_run``, in this process, no broker). Per format
it reports the wall time, items/s and file size of the export of N items, and the peak memory of
the export of N/10 items against N items: the Python heap by tracemalloc (in runs of their own, as
tracing slows Python down) and the growth of the process's peak RSS (in the timed runs). Flat
memory means the two peaks are about equal. Everything it created is removed unless ``--keep``.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from annotator import benchdata
from annotator.formats.exports import CLASS_EXPORT_FORMATS
from annotator.models import Project

MB = 1024 * 1024

T = TypeVar("T")


def _rss_peak_reset() -> int | None:
    """Reset the peak RSS of this process to its current RSS (Linux); the current RSS, bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_bytes("VmRSS")
    except OSError:
        return None


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _rss_growth(run: Callable[[], T]) -> tuple[T, float, int | None]:
    """``run()``, its wall seconds, and how far the process's peak RSS rose above the RSS before it
    (bytes; from ``ru_maxrss`` where the peak cannot be reset, then only growth past the old peak)."""
    before = _rss_peak_reset()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    peak = _proc_status_bytes("VmHWM") if before is not None else None
    if before is not None and peak is not None:
        return value, seconds, peak - before
    return value, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before


class Command(BaseCommand):
    help = "Benchmark export jobs (csv, jsonl, coco, imagefolder): speed, file size and peak memory at N/10 vs N items."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--formats", default=",".join(CLASS_EXPORT_FORMATS))
        parser.add_argument("--images", action="store_true", help="Zip the image files alongside the text formats.")
        parser.add_argument("--keep", action="store_true", help="Keep the projects and export files.")
        parser.add_argument("--json", dest="json_path", help="Write the results here as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        n_items = options["items"]
        formats = [f.strip() for f in options["formats"].split(",") if f.strip()]
        unknown = [f for f in formats if f not in CLASS_EXPORT_FORMATS]
        if unknown or not formats:
            raise CommandError(f"Unknown formats {unknown}; valid: {', '.join(CLASS_EXPORT_FORMATS)}.")
        if n_items < 10:
            raise CommandError("--items must be at least 10.")
        tag = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
        projects: list[Project] = []
        try:
            started = time.perf_counter()
            for n, size in ((n_items // 10, "small"), (n_items, "large")):
                projects.append(benchdata.labeled_project_create(name=f"bench_export {tag} {size}", n_items=n))
            setup_s = time.perf_counter() - started
            self.stderr.write(f"filled {n_items} + {n_items // 10} labeled items in {setup_s:.1f} s")
            result = {
                "items": n_items,
                "items_small": n_items // 10,
                "images": options["images"],
                "database": connection.vendor,
                "setup_seconds": round(setup_s, 1),
                "formats": {
                    fmt: self.measure(projects, fmt, images=options["images"], keep=options["keep"]) for fmt in formats
                },
            }
        finally:
            if not options["keep"]:
                for project in projects:
                    benchdata.labeled_project_delete(project)
        self.report(result)
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(result, indent=2) + "\n")

    def measure(self, projects: list[Project], fmt: str, *, images: bool, keep: bool) -> dict[str, Any]:
        """Timed runs (with the RSS growth) of both projects, then traced runs of both."""
        figures: dict[str, Any] = {}
        for project, suffix in zip(projects, ("_small", ""), strict=True):
            job, seconds, rss = _rss_growth(partial(benchdata.export_run, project=project, fmt=fmt, images=images))
            if not suffix:
                figures |= {
                    "seconds": round(seconds, 2),
                    "items_per_s": round(job.summary["items"] / seconds),
                    "bytes": job.summary["bytes"],
                }
            figures[f"rss_growth_mb{suffix}"] = round(rss / MB, 1) if rss is not None else None
            if not keep:
                benchdata.export_file_delete(job)
        for project, suffix in zip(projects, ("_small", ""), strict=True):
            job, peak = benchdata.traced_peak(partial(benchdata.export_run, project=project, fmt=fmt, images=images))
            figures[f"peak_mb{suffix}"] = round(peak / MB, 2)
            if not keep:
                benchdata.export_file_delete(job)
        self.stderr.write(f"{fmt}: {figures}")
        return figures

    def report(self, result: dict[str, Any]) -> None:
        n, small = result["items"], result["items_small"]
        log = self.stdout.write
        log(f"export of {n} labeled items ({result['database']}{', images zipped' if result['images'] else ''})")
        log(
            f"{'format':<12}{'seconds':>9}{'items/s':>10}{'MB file':>10}"
            f"{f'heap MB @{small}':>17}{f'heap MB @{n}':>17}{f'RSS +MB @{small}':>17}{f'RSS +MB @{n}':>17}"
        )
        for fmt, f in result["formats"].items():
            log(
                f"{fmt:<12}{f['seconds']:>9.2f}{f['items_per_s']:>10}{f['bytes'] / MB:>10.1f}"
                f"{f['peak_mb_small']:>17.2f}{f['peak_mb']:>17.2f}{_num(f['rss_growth_mb_small']):>17}"
                f"{_num(f['rss_growth_mb']):>17}"
            )
        log("heap MB: tracemalloc peak of the Python heap during the export (separate, untimed runs);")
        log("RSS +MB: rise of the process's peak RSS during the timed export.")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
