"""Faults, for real: a Celery worker killed with SIGKILL in the middle of training, and the broker
stopped while annotators work. Real gunicorn, real workers, a real Redis of the test's own (so that
it can be stopped), the test database (PostgreSQL in CI). Each test is bounded in time."""

from __future__ import annotations

import http.client
import json
import signal
import time
import uuid

import pytest
from rest_framework.authtoken.models import Token

from annotator import embedded_redis, gunicorn_process
from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.selectors.model_versions import model_version_current
from annotator.services.members import membership_add
from tests.factories import digits_pngs, make_project, make_user, wait_for
from tests.system.helpers import child_env, digits_project, request_training, start_worker, stop

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_killed_mid_training_leaves_the_last_model_serving(broker):
    # Given a project serving model version 1, and a worker training version 2
    project = digits_project(n_images=240, n_labels=120)
    v1 = model_version_current(project=project)
    worker = start_worker(broker["url"], "doomed")
    try:
        request_training(project)
        training = wait_for(
            lambda: ModelVersion.objects.filter(project=project, number=2, status="training", progress__gt=0).first(),
            120,
            "version 2 to start training",
        )
        # When the worker is killed with SIGKILL in the middle of it
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        # Then version 1 keeps serving, with its pre-labels, and version 2 is not published
        assert model_version_current(project=project).number == v1.number
        unlabeled = Item.objects.filter(project=project, status="unlabeled")
        assert set(unlabeled.values_list("pred_version_id", flat=True)) == {v1.id}
        training.refresh_from_db()
        assert training.status == "training"

        # When a worker starts again, with no manual step
        worker = start_worker(broker["url"], "phoenix")
        # Then the interrupted run is marked failed and the project trains again
        wait_for(
            lambda: ModelVersion.objects.filter(project=project, number=3, status="ready").exists(),
            180,
            "version 3 to be trained after the crash",
        )
        training.refresh_from_db()
        assert training.status == "failed" and "interrupted" in training.error
        assert model_version_current(project=project).number == 3
    finally:
        stop(worker)


class Annotator:
    """An HTTP client labeling through the real server."""

    def __init__(self, port: int, token: str, project_id: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.project_id = project_id
        self.acknowledged: list[str] = []

    def label_one(self) -> int:
        self.conn.request("GET", f"/api/projects/{self.project_id}/next/", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            return response.status
        item = json.loads(body)
        token = uuid.uuid4().hex
        payload = json.dumps({"label": "1", "client_token": token})
        self.conn.request("POST", f"/api/items/{item['id']}/annotations/", body=payload, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        if response.status == 201:
            self.acknowledged.append(token)
        return response.status


def test_labeling_goes_on_while_redis_is_down_and_training_catches_up(broker):
    # Given a project serving version 1, the web server and a worker on the test's own Redis
    project = digits_project(n_images=160, n_labels=40)
    Project.objects.filter(id=project.id).update(retrain_every=5)
    port = gunicorn_process.free_port()
    web = gunicorn_process.start(port, workers=2, threads=4, env=child_env(broker["url"]))
    worker = start_worker(broker["url"], "steady")
    try:
        user = make_user("annotator")
        membership_add(project=project, user=user)
        person = Annotator(port, Token.objects.create(user=user).key, project.id)

        # When Redis stops while they label
        embedded_redis.stop(broker["process"])
        assert not embedded_redis.ping(broker["socket"])
        began = time.monotonic()
        statuses = [person.label_one() for _ in range(12)]
        took = time.monotonic() - began
        print(f"12 labels with Redis down: {took:.1f} s")

        # Then every label is acknowledged and stored, and no version was trained meanwhile
        assert statuses == [201] * 12
        # and no label waited out the broker's connection back-off (6 s a try by default: over 50 s here)
        assert took < 30, took
        stored = Annotation.objects.filter(client_token__in=person.acknowledged, active=True).count()
        assert stored == 12
        assert Project.objects.get(id=project.id).training_requested
        assert not ModelVersion.objects.filter(project=project, number__gt=1).exists()

        # When Redis comes back, with no manual step
        broker["process"] = embedded_redis.start(broker["socket"])
        # Then the pending retrain is sent again and a new version is published
        wait_for(
            lambda: ModelVersion.objects.filter(project=project, number=2, status="ready").exists(),
            180,
            "the retrain requested while Redis was down",
        )
        assert ModelVersion.objects.get(project=project, number=2).n_labels >= 52
    finally:
        stop(worker)
        gunicorn_process.stop(web)


def test_web_restart_during_an_upload_gives_an_error_and_imports_nothing_partial(broker):
    # Given a project, and gunicorn serving it
    manager = make_user("uploader")
    project = make_project(manager, name="Uploads")
    token = Token.objects.create(user=manager).key
    images, _ = digits_pngs(40)
    boundary = "----annotator-test-boundary"
    parts = []
    for i, data in enumerate(images):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
        parts.append(head.encode() + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    port = gunicorn_process.free_port()
    web = gunicorn_process.start(port, workers=1, threads=2, env=child_env(broker["url"]))
    try:
        # When the server restarts after half of the upload was sent
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", f"/api/projects/{project.id}/items/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        web.kill()
        web.wait(timeout=30)
        # Then the client gets an error, not a success
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.send(body[len(body) // 2 :])
            conn.getresponse().read()
        # and nothing of the upload was imported
        assert not Item.objects.filter(project=project).exists()

        # When the client retries once the server is back, everything is imported once
        web = gunicorn_process.start(port, workers=1, threads=2, env=child_env(broker["url"]))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Token {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
        conn.request("POST", f"/api/projects/{project.id}/items/", body=body, headers=headers)
        response = conn.getresponse()
        summary = json.loads(response.read())
        assert response.status == 201, summary
        assert summary["imported"] + summary["duplicates"] == len(images)
        assert Item.objects.filter(project=project).count() == summary["imported"]
    finally:
        gunicorn_process.stop(web)
