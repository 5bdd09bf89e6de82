"""``manage.py serve`` stops every process it started: started and stopped with Ctrl-C (SIGINT to its
process group) three times on a free port and a throwaway ``DATA_DIR``, with a web worker stuck in a
request, and with a second Ctrl-C during the stop, no process it started is left and nothing listens.

Its processes are found by a marker in their environment, which every descendant inherits, so one
that outlived its parent and was handed to init is still found."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from annotator import gunicorn_process
from annotator.management.commands.serve import spawn, stop_processes

MARKER = "SERVE_TEST_RUN"


def marked(value: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``MARKER=value``."""
    needle = f"{MARKER}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def kill_leftovers(value: str) -> None:
    """The test's own clean-up, so that a failure leaves nothing running either."""
    for pid in marked(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    """A migrated throwaway ``DATA_DIR`` with its own embedded Redis (no ``DATABASE_URL``/``REDIS_URL``)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL"}}
    env |= {"DATA_DIR": str(tmp_path / "data"), "DEBUG": "1", "TORCH_THREADS": "1", "RECONCILE_SECONDS": "0"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    return env


def test_ctrl_c_stops_every_process_serve_started(serve_env, tmp_path):
    # Three starts and stops: a plain Ctrl-C; Ctrl-C while a web worker is stuck in a request (a client
    # that sent half its headers: the worker ignores SIGTERM until gunicorn's graceful timeout); and
    # the same with a second Ctrl-C during the stop, which must kill at once and still leave nothing.
    for run, (stuck, twice) in enumerate([(False, False), (True, False), (True, True)]):
        port = gunicorn_process.free_port()
        value = uuid.uuid4().hex
        log = tmp_path / f"serve-{run}.log"
        command = [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "2"]
        with log.open("wb") as out:
            # Its own process group, as a shell's foreground job: Ctrl-C goes to the whole group.
            server = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env={**serve_env, MARKER: value},
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        client = None
        try:
            # Given serve up: the web server answering, both Celery workers ready (their pool started)
            ready = wait_until(lambda: listening(port) and log.read_text().count(" ready.") >= 2, 120)  # noqa: B023
            assert ready, f"serve did not start (run {run}):\n{log.read_text()[-3000:]}"
            started = marked(value)
            # serve, redis, gunicorn and its 2 workers, 2 Celery workers and their pool processes
            assert len(started) >= 8, started
            if stuck:
                client = socket.create_connection(("127.0.0.1", port))
                client.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                time.sleep(1)

            # When Ctrl-C is pressed (and pressed again a second later)
            began = time.monotonic()
            os.killpg(server.pid, signal.SIGINT)
            if twice:
                time.sleep(1)
                os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=60)
            took = time.monotonic() - began

            # Then, once serve has returned, none of its processes is left, and nothing listens on the port
            left = [] if wait_until(lambda: not marked(value), 3) else marked(value)  # noqa: B023
            assert left == [], f"run {run}: still running: {left}\n{log.read_text()[-3000:]}"
            assert not listening(port)
            print(f"run {run} (stuck={stuck}, twice={twice}): stopped in {took:.1f} s")
            if twice:
                assert took < 8, f"a second Ctrl-C should not wait out the grace period ({took:.1f} s)"
        finally:
            if client is not None:
                client.close()
            if server.poll() is None:
                server.kill()
                server.wait()
            kill_leftovers(value)


def test_stopping_kills_each_group_that_ignores_sigterm_and_its_children():
    # Given three processes in their own groups: one that ignores SIGTERM and whose child does too,
    # one that stops on SIGTERM, and one that has already exited
    value = uuid.uuid4().hex
    env = {**os.environ, MARKER: value}
    stubborn = spawn(["sh", "-c", "trap '' TERM; sleep 300 & sleep 300; wait"], env=env)
    polite = spawn(["sleep", "300"], env=env)
    gone = spawn(["true"], env=env)
    gone.wait()
    try:
        assert wait_until(lambda: len(marked(value)) == 4, 5)  # sh, its two sleeps, and the polite sleep
        # When they are stopped with a 1 s grace
        began = time.monotonic()
        stop_processes([stubborn, polite, gone], grace=1.0)
        # Then all are gone, the stubborn one's child too, soon after the grace
        assert marked(value) == []
        assert time.monotonic() - began < 5
        assert polite.returncode == -signal.SIGTERM
        assert stubborn.returncode == -signal.SIGKILL
    finally:
        kill_leftovers(value)


def test_stopping_in_a_hurry_skips_the_grace():
    # Given a process that ignores SIGTERM
    value = uuid.uuid4().hex
    stubborn = spawn(["sh", "-c", "trap '' TERM; sleep 300; true"], env={**os.environ, MARKER: value})
    try:
        assert wait_until(lambda: len(marked(value)) == 2, 5)  # sh has set its trap and started sleep
        # When it is stopped with a long grace, but in a hurry (a second Ctrl-C came)
        began = time.monotonic()
        stop_processes([stubborn], grace=60.0, hurry=lambda: True)
        # Then it is killed at once
        assert time.monotonic() - began < 5
        assert stubborn.returncode == -signal.SIGKILL
    finally:
        kill_leftovers(value)


def test_an_error_while_stopping_still_kills_everything():
    # Given a process that ignores SIGTERM
    value = uuid.uuid4().hex
    stubborn = spawn(["sh", "-c", "trap '' TERM; sleep 300; true"], env={**os.environ, MARKER: value})
    try:
        assert wait_until(lambda: len(marked(value)) == 2, 5)

        # When something fails during the stop's grace
        def broken() -> bool:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            stop_processes([stubborn], grace=60.0, hurry=broken)
        # Then the group was killed all the same
        assert marked(value) == []
        assert stubborn.returncode == -signal.SIGKILL
    finally:
        kill_leftovers(value)
