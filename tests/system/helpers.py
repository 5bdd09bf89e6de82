"""Helpers shared by the system tests: child processes (workers) with the test's broker and database, a digits
project, and threads of annotators that label through the HTTP API of a real gunicorn."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotator import gunicorn_process
from annotator.models import Item, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.tasks import train_project_task
from tests.factories import digits_pngs, make_project, make_user


def child_env(broker_url: str) -> dict[str, str]:
    """Environment for workers and gunicorn: the test database, DATA_DIR and broker, fast fault timers."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "fault-tests-" + uuid.uuid4().hex,
        "DATABASE_URL": gunicorn_process.database_url(connection.settings_dict),
        "DB_CONN_MAX_AGE": "0",
        "DATA_DIR": str(settings.DATA_DIR),
        "REDIS_URL": broker_url,
        "TRAINING_LOCK_SECONDS": "4",
        "TRAINING_RESEND_SECONDS": "2",
        "RECONCILE_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
        "LOG_LEVEL": "WARNING",
    }


def start_worker(broker_url: str, name: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "annotator", "worker", "-Q", "training,default"]
    command += ["-P", "solo", "-c", "1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    command += ["--loglevel", "WARNING"]
    return subprocess.Popen(command, env=child_env(broker_url), cwd=settings.BASE_DIR)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def digits_project(n_images: int, n_labels: int, name: str = "Digits") -> Project:
    """A cnn project of digits with ``n_labels`` labeled, and a first model version published."""
    manager = make_user(f"manager-{name.lower()}")
    project = make_project(manager, name=name, labels=[str(d) for d in range(10)], retrain_every=10_000)
    images, truth = digits_pngs(n_images)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(data)) for i, data in enumerate(images)], user=manager
    )
    for item, label in zip(Item.objects.filter(project=project).order_by("id")[:n_labels], truth, strict=False):
        fresh = Item.objects.select_related("project").get(id=item.id)
        annotation_create(item=fresh, user=manager, label=str(label))
    Project.objects.filter(id=project.id).update(training_requested=True)
    assert train_project_task(project.id) == 1
    return project


def request_training(project: Project) -> None:
    """Ask for a retrain as a lost request looks: the workers' reconciliation pass sends it (this
    process's own Celery app stays on the session's broker)."""
    overdue = timezone.now() - timedelta(hours=1)
    Project.objects.filter(id=project.id).update(training_requested=True, training_requested_at=overdue)


class Annotator(threading.Thread):
    """One person: next → label, until the queue is empty. Records when it held which item."""

    def __init__(self, port: int, token: str, project_id: int):
        super().__init__(daemon=True)
        self.port, self.token, self.project_id = port, token, project_id
        # (item, next answered, label sent): inside the server's lease, so overlaps are real ones
        self.holds: list[tuple[int, float, float]] = []
        self.acknowledged: list[str] = []
        self.failures: list[str] = []

    def call(self, conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while True:
                status, data = self.call(conn, "GET", f"/api/projects/{self.project_id}/next/")
                if status == 204:
                    return
                if status != 200:
                    self.failures.append(f"next {status} {data[:200]!r}")
                    return
                leased_at = time.monotonic()
                item_id = json.loads(data)["id"]
                token = uuid.uuid4().hex
                body = {"label": "cat" if item_id % 2 else "dog", "client_token": token, "duration_ms": 500}
                sent_at = time.monotonic()
                status, data = self.call(conn, "POST", f"/api/items/{item_id}/annotations/", body)
                if status != 201:
                    self.failures.append(f"annotate {status} {data[:200]!r}")
                    return
                self.holds.append((item_id, leased_at, sent_at))
                self.acknowledged.append(token)
        except (OSError, http.client.HTTPException) as exc:
            self.failures.append(f"connection: {exc!r}")
        finally:
            conn.close()


def run_annotators(port: int, project, users, cls: type[Annotator] = Annotator) -> list[Annotator]:
    threads = [cls(port, Token.objects.create(user=u).key, project.id) for u in users]
    for thread in threads:
        thread.times = {}
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "an annotator did not finish in 240 s"
    return threads
