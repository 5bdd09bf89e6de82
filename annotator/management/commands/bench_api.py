"""``manage.py bench_api``: the labeling API under load, as annotators see it.

Starts the app under gunicorn against the configured database, fills a throwaway project with N
items (sharing a few image files) with random priorities and pre-labels, runs one HTTP client per
annotator, each with its own account, looping next → annotate, and reports latency percentiles,
labels per second, duplicates and lost labels. Everything it created is removed at the end.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import random
import statistics
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token

from annotator import gunicorn_process
from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services.members import membership_add
from annotator.services.projects import project_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User

N_FILES = 8
BATCH = 5000


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    array = np.array(values)
    return {f"p{q}": round(float(np.percentile(array, q)), 2) for q in (50, 95, 99)}


class Client(threading.Thread):
    """One annotator: a keep-alive connection looping GET next → POST annotation."""

    def __init__(
        self,
        *,
        port: int,
        token: str,
        project_id: int,
        labels: list[str],
        start_at: float,
        stop_at: float,
        floor: bool = False,
    ):
        super().__init__(daemon=True)
        self.floor = floor
        self.port, self.project_id, self.labels = port, project_id, labels
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.start_at, self.stop_at = start_at, stop_at
        self.next_ms: list[float] = []
        self.annotate_ms: list[float] = []
        self.served: list[int] = []
        self.tokens_ok: list[str] = []
        self.errors = 0
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        payload = json.dumps(body).encode() if body is not None else None
        began = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=self.headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, b"", (time.perf_counter() - began) * 1000
        return response.status, data, (time.perf_counter() - began) * 1000

    def run(self) -> None:
        if self.floor:
            self.run_floor()
            return
        while time.perf_counter() < self.stop_at:
            measured = time.perf_counter() >= self.start_at
            status, data, ms = self.call("GET", f"/api/projects/{self.project_id}/next/")
            if status == 204:
                break
            if status != 200:
                self.errors += 1
                continue
            item_id = json.loads(data)["id"]
            token = uuid.uuid4().hex
            body = {"label": random.choice(self.labels), "client_token": token, "duration_ms": 900}
            status2, _, ms2 = self.call("POST", f"/api/items/{item_id}/annotations/", body)
            if status2 == 201:
                self.tokens_ok.append(token)
                self.served.append(item_id)
                if measured:
                    self.next_ms.append(ms)
                    self.annotate_ms.append(ms2)
            else:
                self.errors += 1
        self.connection.close()

    def run_floor(self) -> None:
        """The same loop of two requests over ``/health/`` (one trivial query each): the stack's floor."""
        while time.perf_counter() < self.stop_at:
            measured = time.perf_counter() >= self.start_at
            status, _, ms = self.call("GET", "/health/")
            status2, _, ms2 = self.call("GET", "/health/")
            if status == status2 == 200:
                if measured:
                    self.next_ms.append(ms)
                    self.annotate_ms.append(ms2)
            else:
                self.errors += 1
        self.connection.close()


class Command(BaseCommand):
    help = "Benchmark next → annotate under concurrent annotators against gunicorn and the configured database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--annotators", type=int, default=20)
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--warmup", type=float, default=2, help="Seconds run but not measured, first.")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "4")))
        parser.add_argument("--threads", type=int, default=5, help="Threads per gunicorn worker.")
        parser.add_argument("--json", dest="json_path", help="Write the results here as JSON.")
        parser.add_argument(
            "--floor",
            action="store_true",
            help="Run the same clients against GET /health/ instead: what the stack costs without our work.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tag = uuid.uuid4().hex[:8]
        project: Project | None = None
        users: list[User] = []
        files: list[str] = []
        server = None
        try:
            project, users, files = self.fill(tag, options["items"], options["annotators"])
            port = gunicorn_process.free_port()
            server = gunicorn_process.start(port, workers=options["web_workers"], threads=options["threads"])
            result = self.load(project, users, port, options)
        finally:
            gunicorn_process.stop(server)
            self.cleanup(project, users, files)
        text = json.dumps(result, indent=2)
        self.stdout.write(text)
        if options["json_path"]:
            Path(options["json_path"]).write_text(text + "\n")

    def fill(self, tag: str, n_items: int, n_annotators: int) -> tuple[Project, list[User], list[str]]:
        started = time.perf_counter()
        User = get_user_model()
        owner = User.objects.create_user(username=f"bench-{tag}-owner")
        labels = [str(d) for d in range(10)]
        project = project_create(name=f"bench-api {tag}", labels=labels, user=owner, retrain_every=10)
        # Steady state of a busy project: a retrain is running, more labels coalesce into the next one.
        Project.objects.filter(id=project.id).update(
            training_requested=True, training_lock_until=timezone.now() + timedelta(hours=2)
        )
        version = ModelVersion.objects.create(
            project=project, number=1, status=ModelVersion.Status.READY, strategy=project.strategy, n_labels=0
        )
        class_ids = list(project.classes.order_by("index").values_list("id", flat=True))
        media = Path(settings.MEDIA_ROOT) / "bench" / tag
        media.mkdir(parents=True, exist_ok=True)
        files = []
        rng = np.random.default_rng(0)
        for i in range(N_FILES):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(buffer, format="PNG")
            (media / f"{i}.png").write_bytes(buffer.getvalue())
            files.append(f"bench/{tag}/{i}.png")
        for start in range(0, n_items, BATCH):
            Item.objects.bulk_create(
                Item(
                    project=project,
                    file=files[i % N_FILES],
                    original_name=f"item-{i}.png",
                    width=64,
                    height=64,
                    sha256=f"{tag}-{i}",
                    priority=random.random(),
                    score=random.random(),
                    pred_label_id=random.choice(class_ids),
                    pred_confidence=random.random(),
                    pred_version=version,
                )
                for i in range(start, min(n_items, start + BATCH))
            )
        users = [owner]
        for i in range(n_annotators):
            user = User.objects.create_user(username=f"bench-{tag}-{i}")
            membership_add(project=project, user=user)
            users.append(user)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Item._meta.db_table}")
        self.stderr.write(f"filled {n_items} items, {n_annotators} annotators in {time.perf_counter() - started:.1f} s")
        return project, users, [str(media / Path(f).name) for f in files]

    def load(self, project: Project, users: list, port: int, options: dict) -> dict:
        tokens = [Token.objects.create(user=u).key for u in users[1:]]
        labels = [str(d) for d in range(10)]
        began = time.perf_counter() + 0.5
        start_at = began + options["warmup"]
        stop_at = start_at + options["seconds"]
        clients = [
            Client(
                port=port,
                token=t,
                project_id=project.id,
                labels=labels,
                start_at=start_at,
                stop_at=stop_at,
                floor=options["floor"],
            )
            for t in tokens
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = min(time.perf_counter(), stop_at) - start_at
        owners: dict[int, int] = {}
        duplicates = 0
        for index, client in enumerate(clients):
            for item_id in client.served:
                if owners.setdefault(item_id, index) != index:
                    duplicates += 1
        sent = {token for client in clients for token in client.tokens_ok}
        stored = set(
            Annotation.objects.filter(item__project=project, active=True, client_token__in=sent).values_list(
                "client_token", flat=True
            )
        )
        next_ms = [ms for c in clients for ms in c.next_ms]
        annotate_ms = [ms for c in clients for ms in c.annotate_ms]
        return {
            **({"floor": "GET /health/ twice per loop instead of next and annotate"} if options["floor"] else {}),
            "items": options["items"],
            "annotators": options["annotators"],
            "database": "postgresql" if connection.vendor == "postgresql" else connection.vendor,
            "seconds": round(elapsed, 2),
            "next_ms": percentiles(next_ms),
            "annotate_ms": percentiles(annotate_ms),
            "labels_per_s": round(len(annotate_ms) / elapsed, 1) if elapsed > 0 else 0.0,
            "labels": len(sent),
            "duplicates": duplicates,
            "lost": len(sent - stored),
            "errors": sum(c.errors for c in clients),
            "mean_next_ms": round(statistics.fmean(next_ms), 2) if next_ms else None,
        }

    def cleanup(self, project: Project | None, users: list, files: list[str]) -> None:
        if project is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {Annotation._meta.db_table} WHERE item_id IN "
                    f"(SELECT id FROM {Item._meta.db_table} WHERE project_id = %s)",
                    [project.id],
                )
                cursor.execute(f"DELETE FROM {Item._meta.db_table} WHERE project_id = %s", [project.id])
            project.delete()
        for user in users:
            user.delete()
        for name in files:
            Path(name).unlink(missing_ok=True)
        if files:
            with contextlib.suppress(OSError):
                Path(files[0]).parent.rmdir()
