"""A bounded load test: 50 annotators against gunicorn on the test database (PostgreSQL in CI)
while a real worker retrains: no 5xx, no item held by two people at once, no acknowledged label
lost; the latencies are printed (speed is a benchmark figure, not asserted here)."""

from __future__ import annotations

import io
import itertools
import time
from collections import defaultdict

import numpy as np
import pytest
from django.utils import timezone

from annotator import gunicorn_process
from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from tests.factories import digits_pngs, make_project, make_user, wait_for
from tests.system.helpers import Annotator, child_env, request_training, run_annotators, start_worker, stop

pytestmark = pytest.mark.django_db(transaction=True)

N_ANNOTATORS = 50
N_ITEMS = 600
N_FIRST = 40


class TimedAnnotator(Annotator):
    """An annotator that also times each call, counts server errors, and looks 20 ms at each image."""

    def call(self, conn, method, path, body=None):
        if method == "POST":
            time.sleep(0.02)
        began = time.perf_counter()
        status, data = super().call(conn, method, path, body)
        self.times.setdefault(method, []).append((time.perf_counter() - began) * 1000)
        if status >= 500:
            self.failures.append(f"{method} {path}: {status}")
        return status, data


def test_fifty_annotators_while_a_worker_retrains(broker):
    # Given a project of digits that retrains every 40 labels, gunicorn, and a worker
    manager = make_user("manager")
    project = make_project(manager, labels=["cat", "dog"], retrain_every=40, model_family="pretrained")
    images, _ = digits_pngs(N_ITEMS)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(d)) for i, d in enumerate(images)], user=manager
    )
    users = [make_user(f"annotator{i}") for i in range(N_ANNOTATORS)]
    for user in users:
        membership_add(project=project, user=user)
    port = gunicorn_process.free_port()
    web = gunicorn_process.start(port, workers=2, threads=8, env=child_env(broker["url"]))
    worker = start_worker(broker["url"], "load")
    try:
        # and a first model, trained by the worker on the first labels
        for item in Item.objects.select_related("project").filter(project=project).order_by("id")[:N_FIRST]:
            annotation_create(item=item, user=manager, label="cat" if item.id % 2 else "dog")
        request_training(project)
        wait_for(lambda: ModelVersion.objects.filter(project=project, status="ready").exists(), 120, "version 1")
        # (and the label-error scan that follows it, which the one worker runs before any retrain)
        scanned = Project.objects.filter(id=project.id, review_scanned_at__isnull=False)
        wait_for(scanned.exists, 120, "version 1's review scan")

        # When 50 people label at once until the queue is empty
        began = timezone.now()
        annotators = run_annotators(port, project, users, cls=TimedAnnotator)
        ended = timezone.now()
    finally:
        stop(worker)
        gunicorn_process.stop(web)

    # Then no call failed or answered 5xx
    assert [f for a in annotators for f in a.failures] == []
    # and no item was held by two people at once, and none was served twice
    spans = defaultdict(list)
    for a in annotators:
        for item_id, start, end in a.holds:
            spans[item_id].append((start, end))
    for item_spans in spans.values():
        item_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(item_spans):
            assert start >= end
    assert all(len(s) == 1 for s in spans.values()) and len(spans) == N_ITEMS - N_FIRST
    # and every acknowledged label is stored
    acknowledged = [t for a in annotators for t in a.acknowledged]
    stored = Annotation.objects.filter(client_token__in=acknowledged, active=True).count()
    assert stored == len(acknowledged) == N_ITEMS - N_FIRST
    assert not Item.objects.filter(project=project).exclude(status="labeled").exists()
    # and the worker was retraining meanwhile
    assert ModelVersion.objects.filter(project=project, number__gte=2, created__range=(began, ended)).exists()

    for method in ("GET", "POST"):
        values = np.array([ms for a in annotators for ms in a.times.get(method, [])])
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        name = "next" if method == "GET" else "annotate"
        print(f"\n{name}: {len(values)} calls, p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
