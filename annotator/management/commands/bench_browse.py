"""``manage.py bench_browse``: the data browser's reads at scale.

Fills a throwaway project of N labeled items (``benchdata.labeled_project_create``: pre-labels,
scores, one annotation each), spreads them over five import batches, makes one guess in ten "dog"
(so that the confusion cell "given cat, predicted dog" holds items) and flags one in a hundred for
review, then times the calls the browser page makes, through the whole stack in this process (DRF's
test client, a signed-in manager): a page of 60 items under each filter and order, a deep page, an
item's history, and a thumbnail made then served from storage. Per call: the median and the slowest
wall milliseconds over ``--repeats`` runs, and the SQL queries of one run. Everything it created is
removed unless ``--keep``.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from annotator import benchdata
from annotator.formats import renditions
from annotator.models import Annotation, Item, ItemClass, ReviewReason, ReviewStatus

PAGE = 60
BATCHES = 5


def _calls(project_id: int, user_id: int, n_items: int, item_id: int) -> dict[str, str]:
    """The browser's calls, by name -> path."""
    items = f"/api/projects/{project_id}/items/?page_size={PAGE}"
    last = max(1, -(-n_items // PAGE))
    return {
        "first page (id)": items,
        "newest": f"{items}&order=-id",
        "most worth labeling (-score)": f"{items}&order=-score",
        "least confident": f"{items}&order=confidence",
        "given cat": f"{items}&label=cat",
        "predicted dog": f"{items}&predicted=dog",
        "confusion cell cat x dog": f"{items}&label=cat&predicted=dog",
        "confidence 0.2-0.4, most confident": f"{items}&conf_min=0.2&conf_max=0.4&order=-confidence",
        "flagged for review": f"{items}&flagged=true",
        "import batch 3": f"{items}&batch=3",
        "one annotator's labels": f"{items}&annotator={user_id}",
        "status labeled, by score": f"{items}&status=labeled&order=-score",
        "last page": f"{items}&page={last}",
        "item history": f"/api/items/{item_id}/history/",
    }


def _time(client: APIClient, path: str, repeats: int) -> dict[str, Any]:
    connection.queries_log.clear()  # a full log (9,000 queries) would count none
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    if response.status_code != 200:
        raise CommandError(f"{path}: {response.status_code} {response.content[:200]!r}")
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path)
        seconds.append(time.perf_counter() - started)
    body = response.json()
    return {
        "path": path,
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "queries": len(queries),
        "count": body.get("count"),
    }


class Command(BaseCommand):
    help = "Time the data browser's list, history and thumbnail calls on a project of --items items."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--repeats", type=int, default=7)
        parser.add_argument("--json", type=Path, help="Also write the figures here.")
        parser.add_argument("--keep", action="store_true", help="Keep the project afterwards.")

    def handle(self, *args: Any, **options: Any) -> None:
        n, repeats = options["items"], options["repeats"]
        user = User.objects.create_user(username=f"bench-browse-{uuid.uuid4().hex[:8]}")
        self.stdout.write(f"filling a project of {n} items ({connection.vendor})...")
        started = time.perf_counter()
        project = benchdata.labeled_project_create(name="bench-browse", n_items=n, user=user)
        try:
            ids = Item.objects.filter(project=project).order_by("id").values_list("id", flat=True)
            first = ids.first() or 0
            size = -(-n // BATCHES)
            Item.objects.filter(project=project).update(batch=(F("id") - first) / size + 1)
            # benchdata's guesses are all right; make one in ten "dog" so the matrix has off-diagonal cells
            dog = project.classes.get(name="dog").id
            Item.objects.filter(project=project, id__in=ids[::10]).update(pred_label_id=dog)
            flagged = Item.objects.filter(project=project, id__in=ids[::100])
            flagged.update(review_status=ReviewStatus.FLAGGED, review_reason=ReviewReason.LABEL_ISSUE)
            if connection.vendor == "postgresql":
                # As autovacuum leaves a table: statistics, and the visibility map that lets counts
                # read the indexes only.
                with connection.cursor() as cursor:
                    for model in (Item, ItemClass, Annotation):
                        cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
            fill_s = time.perf_counter() - started
            client = APIClient()
            client.force_authenticate(user)
            item = Item.objects.filter(project=project).order_by("id")[n // 2]
            calls = {
                name: _time(client, path, repeats) for name, path in _calls(project.id, user.id, n, item.id).items()
            }
            storage, name = item.file.storage, str(item.file.name)
            storage.delete(renditions.thumbnail_name(name))
            started = time.perf_counter()
            made = client.get(f"/api/items/{item.id}/thumbnail/")
            b"".join(made.streaming_content)  # type: ignore[attr-defined]  # a FileResponse
            first_ms = (time.perf_counter() - started) * 1000
            calls["thumbnail, served"] = _time_file(client, f"/api/items/{item.id}/thumbnail/", repeats)
            calls["thumbnail, first request (made)"] = {"median_ms": round(first_ms, 2)}
        finally:
            if not options["keep"]:
                benchdata.labeled_project_delete(project)
                user.delete()
        result = {
            "benchmark": "bench_browse",
            "date": timezone.now().date().isoformat(),
            "database": connection.vendor,
            "items": n,
            "page_size": PAGE,
            "repeats": repeats,
            "fill_seconds": round(fill_s, 1),
            "calls": calls,
        }
        width = max(len(name) for name in calls)
        for name, figures in calls.items():
            extra = f"  {figures['queries']} queries" if "queries" in figures else ""
            slowest = f" (max {figures['max_ms']:.1f})" if "max_ms" in figures else ""
            self.stdout.write(f"{name:<{width}}  {figures['median_ms']:8.1f} ms{slowest}{extra}")
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n")
            self.stdout.write(f"wrote {options['json']}")


def _time_file(client: APIClient, path: str, repeats: int) -> dict[str, Any]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        b"".join(response.streaming_content)  # type: ignore[attr-defined]  # a FileResponse
        seconds.append(time.perf_counter() - started)
    return {
        "path": path,
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }
