"""``manage.py bench_api``: the labeling API under load, as annotators see it.

Starts the app under gunicorn against the configured database and the product's two Celery workers,
fills a throwaway project with N items (sharing a few 12-megapixel photos, each with its display
rendition and its row in the image cache, as an import leaves them) with random priorities and
pre-labels, runs one HTTP client per annotator, each with its own account, labeling as the page does
(``api_load``), and reports latency percentiles, labels per second, duplicates, lost labels, and per
label the CPU of the web server, of its database backends and of the workers, the queries and the
bytes sent. The workers retrain on the product's own trigger (``retrain_every`` labels). Everything
it created is removed at the end.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotator import cpu_meter, embedded_redis, gunicorn_process, paths
from annotator.api_load import Client, duplicates, percentiles
from annotator.benchdata import labeled_project_delete, phone_photo
from annotator.formats.renditions import display_store
from annotator.management.commands.serve import spawn, stop_processes, worker_commands
from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services.members import membership_add
from annotator.services.projects import project_create
from ml import data as ml_data

if TYPE_CHECKING:
    import subprocess

    from django.contrib.auth.models import User

BATCH = 5000
WEB_APP = "annotator-bench-web"
WORKER_APP = "annotator-bench-worker"
#: Labels whose queries are counted, in process, after the load.
QUERY_SAMPLE = 50


def child_database_url(application_name: str) -> str:
    """This process's database as a ``DATABASE_URL`` whose connections carry ``application_name``."""
    url = gunicorn_process.database_url(connection.settings_dict)
    return url if connection.vendor != "postgresql" else f"{url}?application_name={application_name}"


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


class Command(BaseCommand):
    help = "Benchmark labeling under concurrent annotators against gunicorn, the workers and the configured database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--annotators", type=int, default=20)
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--warmup", type=float, default=5, help="Seconds run but not measured, first.")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "4")))
        parser.add_argument("--threads", type=int, default=5, help="Threads per gunicorn worker.")
        parser.add_argument("--files", type=int, default=8, help="Distinct photos the items share.")
        parser.add_argument("--photo-size", default="4032x3024", help="WIDTHxHEIGHT of the photos (12 MP).")
        parser.add_argument("--retrain-every", type=int, default=10)
        parser.add_argument("--json", dest="json_path", help="Write the results here as JSON.")
        parser.add_argument("--classic", action="store_true", help="Three requests per label: next, image, annotate.")
        parser.add_argument("--no-worker", action="store_true", help="Run without the Celery workers.")
        parser.add_argument(
            "--floor",
            action="store_true",
            help="Run the same clients against GET /health/ instead: what the stack costs without our work.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        mode = "floor" if options["floor"] else "classic" if options["classic"] else "one-round-trip"
        with_workers = not options["no_worker"] and mode != "floor"
        tag = uuid.uuid4().hex[:8]
        project: Project | None = None
        users: list[User] = []
        server = broker = None
        workers: list[subprocess.Popen] = []
        try:
            project, users = self.fill(tag, options)
            if not settings.REDIS_URL and not embedded_redis.ping(settings.REDIS_SOCKET):
                broker = embedded_redis.start(settings.REDIS_SOCKET, new_session=True)
            port = gunicorn_process.free_port()
            web_env = {"DATABASE_URL": child_database_url(WEB_APP), "DATA_DIR": str(settings.DATA_DIR)}
            server = gunicorn_process.start(
                port, workers=options["web_workers"], threads=options["threads"], env=web_env
            )
            if with_workers:
                workers = self.start_workers()
            result = self.load(project, users, port, server, workers, mode, options)
            if mode != "floor":
                result["queries_per_label"] = self.queries_per_label(project, users[1], mode)
        finally:
            stop_processes(workers, grace=10)
            gunicorn_process.stop(server)
            if broker is not None:
                stop_processes([broker], grace=5)
            if project is not None:
                self.cleanup(project)
            for user in users:
                user.delete()
        text = json.dumps(result, indent=2)
        self.stdout.write(text)
        if options["json_path"]:
            Path(options["json_path"]).write_text(text + "\n")

    def fill(self, tag: str, options: dict) -> tuple[Project, list[User]]:
        """The project, its owner first and then one annotator per client."""
        started = time.perf_counter()
        User = get_user_model()
        owner = User.objects.create_user(username=f"bench-{tag}-owner")
        labels = [str(d) for d in range(10)]
        project = project_create(
            name=f"bench-api {tag}", labels=labels, user=owner, retrain_every=options["retrain_every"]
        )
        users = [owner]
        try:
            self.fill_items(project, tag, options)
            for i in range(options["annotators"]):
                user = User.objects.create_user(username=f"bench-{tag}-{i}")
                membership_add(project=project, user=user)
                users.append(user)
        except BaseException:
            self.cleanup(project)
            for user in users:
                user.delete()
            raise
        elapsed = time.perf_counter() - started
        self.stderr.write(f"filled {options['items']} items, {options['annotators']} annotators in {elapsed:.1f} s")
        return project, users

    def fill_items(self, project: Project, tag: str, options: dict) -> None:
        """The photos stored as an import stores them (original, rendition, thumbnail, cache row) and
        the items sharing them; an earlier model version's pre-labels on every item."""
        width, height = parse_size(options["photo_size"])
        version = ModelVersion.objects.create(
            project=project, number=1, status=ModelVersion.Status.READY, strategy=project.strategy, n_labels=0
        )
        class_ids = list(project.classes.order_by("index").values_list("id", flat=True))
        stored, arrays = [], []
        for i in range(options["files"]):
            data = phone_photo(i, (width, height))
            name = default_storage.save(f"projects/{project.id}/bench-{tag}-{i}.jpg", ContentFile(data))
            display, _ = display_store(default_storage, name, data)
            stored.append((name, display))
            arrays.append(ml_data.decode_image(io.BytesIO(data), project.input_size))
        rows = ml_data.cache_append(paths.cache_path(project.id, project.input_size), np.stack(arrays))
        n_items = options["items"]
        for start in range(0, n_items, BATCH):
            Item.objects.bulk_create(
                Item(
                    project=project,
                    file=stored[i % len(stored)][0],
                    display=stored[i % len(stored)][1],
                    cache_row=rows[i % len(rows)],
                    original_name=f"item-{i}.jpg",
                    width=width,
                    height=height,
                    sha256=f"{tag}-{i:07d}".ljust(64, "0"),
                    priority=random.random(),
                    score=random.random(),
                    pred_label_id=random.choice(class_ids),
                    pred_confidence=random.random(),
                    pred_version=version,
                )
                for i in range(start, min(n_items, start + BATCH))
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Item._meta.db_table}")

    def start_workers(self) -> list[subprocess.Popen]:
        """The two workers ``make run`` starts, on this database (their connections named ``WORKER_APP``)."""
        cores = max(1, len(os.sched_getaffinity(0)))
        secret = os.environ.get("SECRET_KEY") or uuid.uuid4().hex
        base = {**os.environ, "DEBUG": "0", "SECRET_KEY": secret, "LOG_LEVEL": "WARNING"}
        base.update(DATABASE_URL=child_database_url(WORKER_APP), DATA_DIR=str(settings.DATA_DIR))
        workers = []
        for command, env in worker_commands(sys.executable, cores, loglevel="WARNING"):
            workers.append(spawn(command, env={**base, **env}))
        return workers

    def load(
        self,
        project: Project,
        users: list,
        port: int,
        server: subprocess.Popen,
        workers: list[subprocess.Popen],
        mode: str,
        options: dict,
    ) -> dict:
        tokens = [Token.objects.create(user=u).key for u in users[1:]]
        labels = [str(d) for d in range(10)]
        start_at = time.perf_counter() + 0.5 + options["warmup"]
        stop_at = start_at + options["seconds"]
        clients = [
            Client(
                port=port,
                token=t,
                project_id=project.id,
                labels=labels,
                start_at=start_at,
                stop_at=stop_at,
                mode=mode,
            )
            for t in tokens
        ]
        for client in clients:
            client.start()
        time.sleep(max(0.0, start_at - time.perf_counter()))
        web_db, worker_db = cpu_meter.BackendMeter(WEB_APP), cpu_meter.BackendMeter(WORKER_APP)
        web_db.start()
        worker_db.start()
        web_before = cpu_meter.tree_cpu_seconds(server.pid)
        workers_before = sum(cpu_meter.tree_cpu_seconds(w.pid) for w in workers)
        versions_before = ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY).count()
        while any(c.is_alive() for c in clients) and time.perf_counter() < stop_at:
            time.sleep(1.0)
            web_db.sample()
            worker_db.sample()
        web_cpu = cpu_meter.tree_cpu_seconds(server.pid) - web_before
        workers_cpu = sum(cpu_meter.tree_cpu_seconds(w.pid) for w in workers) - workers_before
        db_cpu, workers_db_cpu = web_db.stop(), worker_db.stop()
        elapsed = min(time.perf_counter(), stop_at) - start_at
        versions = ModelVersion.objects.filter(project=project, status=ModelVersion.Status.READY).count()
        for client in clients:
            client.join()
        sent = {token for client in clients for token in client.tokens_ok}
        stored = set(
            Annotation.objects.filter(item__project=project, active=True, client_token__in=sent).values_list(
                "client_token", flat=True
            )
        )
        n_measured = sum(c.labels_measured for c in clients)
        timings = {name: [ms for c in clients for ms in c.timings[name]] for name in ("next", "image", "annotate")}
        per_label = 1000 / n_measured if n_measured else 0.0
        postgres = connection.vendor == "postgresql"
        notes = {
            "floor": "GET /health/ twice per loop instead of labeling",
            "classic": "three requests per label: GET next, GET the image, POST the annotation",
            "one-round-trip": (
                "two requests per label: GET the image, POST the annotation with ?next=1 (next_ms is that call)"
            ),
        }
        return {
            "mode": mode,
            "loop": notes[mode],
            "items": options["items"],
            "annotators": options["annotators"],
            "database": "postgresql" if postgres else connection.vendor,
            "seconds": round(elapsed, 2),
            "next_ms": percentiles(timings["annotate" if mode == "one-round-trip" else "next"]),
            "annotate_ms": percentiles(timings["annotate"]),
            "image_ms": percentiles(timings["image"]),
            "labels_per_s": round(n_measured / elapsed, 1) if elapsed > 0 else 0.0,
            "labels": len(sent),
            "duplicates": duplicates(clients),
            "lost": len(sent - stored),
            "errors": sum(c.errors for c in clients),
            "mean_next_ms": round(statistics.fmean(timings["next"]), 2) if timings["next"] else None,
            "cpu_ms_per_label": {
                "web": round(web_cpu * per_label, 2),
                "db": round(db_cpu * per_label, 2) if postgres else None,
                "worker": round((workers_cpu + workers_db_cpu) * per_label, 2) if workers else None,
            },
            "cpu_s": {
                "web": round(web_cpu, 2),
                "db": round(db_cpu, 2),
                "workers": round(workers_cpu, 2),
                "workers_db": round(workers_db_cpu, 2),
            },
            "versions_published": versions - versions_before,
            "bytes_per_label": round(sum(c.bytes_measured for c in clients) / n_measured) if n_measured else None,
            "photo": options["photo_size"],
        }

    def queries_per_label(self, project: Project, user: User, mode: str) -> float:
        """Database queries per label on the web side, counted in this process over ``QUERY_SAMPLE``
        labels made through the same URLs, middleware and token authentication as the clients'."""
        token = Token.objects.get(user=user).key
        client = DjangoClient(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
        labels = 0
        item = None
        if mode == "one-round-trip":  # the page's start, not part of each label
            response = client.get(f"/api/projects/{project.id}/next/")
            item = response.json() if response.status_code == 200 else None
        with CaptureQueriesContext(connection) as captured:
            for i in range(QUERY_SAMPLE):
                if mode == "classic":
                    response = client.get(f"/api/projects/{project.id}/next/")
                    if response.status_code != 200:
                        break
                    item = response.json()
                if item is None:
                    break
                client.get(item["image_url"])
                body = {"label": "0", "client_token": f"q-{uuid.uuid4().hex}-{i}"}
                suffix = "?next=1" if mode == "one-round-trip" else ""
                response = client.post(
                    f"/api/items/{item['id']}/annotations/{suffix}", body, content_type="application/json"
                )
                if response.status_code not in (200, 201):
                    break
                labels += 1
                item = response.json().get("next") if mode == "one-round-trip" else None
                if item is None and mode == "one-round-trip":
                    break
        return round(len(captured.captured_queries) / labels, 2) if labels else 0.0

    def cleanup(self, project: Project) -> None:
        labeled_project_delete(project)
