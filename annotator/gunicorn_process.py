"""Run the app under gunicorn in a child process: for the API benchmark and the load tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A ``DATABASE_URL`` naming the database of a Django connection's settings (the test database too)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{settings_dict['NAME']}"


def start(
    port: int, *, workers: int = 3, threads: int = 8, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.Popen:
    """Start gunicorn on ``127.0.0.1:port`` and return once it accepts connections."""
    environment = {"DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY") or uuid.uuid4().hex}
    environment = {**os.environ, **environment, "LOG_LEVEL": "WARNING", **(env or {})}
    command = [sys.executable, "-m", "gunicorn", "annotator.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--threads", str(threads), "--keep-alive", "30"]
    command += ["--log-level", "warning"]
    server = subprocess.Popen(command, env=environment, cwd=settings.BASE_DIR)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("gunicorn exited while starting") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"gunicorn did not start within {timeout:.0f} s")


def stop(server: subprocess.Popen | None) -> None:
    """Stop gunicorn gracefully, or kill it after 20 s."""
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
