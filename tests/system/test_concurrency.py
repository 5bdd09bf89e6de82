"""Twenty annotators at once against gunicorn on the test database (PostgreSQL in CI): nobody holds
an item someone else holds, nothing acknowledged is lost, every item ends labeled exactly k times."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotator import gunicorn_process
from annotator.models import Annotation, Item
from annotator.services.members import membership_add
from tests.factories import make_project, make_user, png_bytes
from tests.system.helpers import run_annotators

N_ANNOTATORS = 20


@pytest.fixture
def server(transactional_db):
    """gunicorn serving the app from the test database."""
    env = {
        "DATABASE_URL": gunicorn_process.database_url(connection.settings_dict),
        "DATA_DIR": str(settings.DATA_DIR),
        "DB_CONN_MAX_AGE": "0",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    port = gunicorn_process.free_port()
    process = gunicorn_process.start(port, workers=2, threads=8, env=env)
    yield port
    gunicorn_process.stop(process)


def fill(project, n_items: int) -> None:
    name = f"concurrency/{uuid.uuid4().hex}.png"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(0))
    Item.objects.bulk_create(
        Item(project=project, file=name, original_name=f"{i}.png", width=24, height=24, sha256=f"{i}", priority=i % 7)
        for i in range(n_items)
    )


@pytest.mark.parametrize(("k", "n_items"), [(1, 300), (2, 120)])
def test_twenty_annotators_never_collide_and_lose_nothing(server, k, n_items):
    # Given a project of n items needing k labels each, and 20 annotators on the real server
    manager = make_user("manager")
    project = make_project(manager, retrain_every=100_000, labels_per_item=k)
    fill(project, n_items)
    users = [make_user(f"annotator{i}") for i in range(N_ANNOTATORS)]
    for user in users:
        membership_add(project=project, user=user)

    # When they all label at once until the queue is empty
    threads = run_annotators(server, project, users)

    # Then no request failed
    assert [f for t in threads for f in t.failures] == []
    # and no item was held by two annotators at the same time (k = 1: never served twice at all)
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for thread in threads:
        for item_id, start, end in thread.holds:
            spans[item_id].append((start, end))
    for item_id, item_spans in spans.items():
        item_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(item_spans):
            assert start >= end, f"item {item_id} was held by two annotators at once"
    served = Counter(item_id for t in threads for item_id, _, _ in t.holds)
    assert set(served.values()) == {k}
    # and no one got the same item twice
    for thread in threads:
        mine = [item_id for item_id, _, _ in thread.holds]
        assert len(mine) == len(set(mine))
    # and every acknowledged label is stored, every item labeled by exactly k people
    acknowledged = [token for t in threads for token in t.acknowledged]
    stored = set(
        Annotation.objects.filter(item__project=project, active=True, client_token__in=acknowledged).values_list(
            "client_token", flat=True
        )
    )
    assert len(acknowledged) == n_items * k
    assert stored == set(acknowledged)
    per_item = Counter(Annotation.objects.filter(item__project=project, active=True).values_list("item_id", flat=True))
    assert len(per_item) == n_items and set(per_item.values()) == {k}
    assert not Item.objects.filter(project=project).exclude(status=Item.Status.LABELED).exists()
    assert set(Item.objects.filter(project=project).values_list("n_annotations", flat=True)) == {k}
    # and the work was spread over the annotators
    assert sum(1 for t in threads if t.holds) >= N_ANNOTATORS // 2
