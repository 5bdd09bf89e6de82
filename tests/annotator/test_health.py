"""Health endpoints: the web process (database, optionally the broker) and the Celery workers."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import wait_for


@pytest.mark.django_db
def test_web_health_reports_the_database_and_the_broker():
    response = Client().get("/health/?broker")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_worker_health_is_503_without_workers():
    response = Client().get("/health/workers/")
    assert response.status_code == 503
    assert response.json()["workers"] == []


def test_worker_health_lists_the_running_worker_and_its_queues(celery_worker):
    # The worker answers pings once its control channel is up (a moment after it starts)
    response = wait_for(
        lambda: (r := Client().get("/health/workers/")).status_code == 200 and r, 30, "the worker to answer a ping"
    )
    body = response.json()
    assert len(body["workers"]) == 1
    assert body["queues"][body["workers"][0]] == ["default", "training"]
