"""Fixtures for the system tests: a Redis broker of the test's own, that it may stop and start again."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from annotator import embedded_redis


@pytest.fixture
def broker(tmp_path):
    """A Redis server of this test's own on a unix socket, that the test may stop and start again."""
    socket_path = Path(f"/tmp/annotator-fault-{uuid.uuid4().hex[:8]}.sock")
    process = embedded_redis.start(socket_path)
    state = {"process": process, "socket": socket_path, "url": f"redis+socket://{socket_path}"}
    yield state
    embedded_redis.stop(state["process"])
    socket_path.unlink(missing_ok=True)
