"""CPU time spent by process trees and by PostgreSQL backends, for the benchmarks' per-label figures.

A reading is the user + system seconds of every live process of a tree plus what its members'
reaped children used; the difference of two readings is what the tree spent between them (a child
that exits between the readings without being waited for by its parent is missed; gunicorn and
Celery wait for theirs). Backends are found by their ``application_name`` in ``pg_stat_activity``.
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil  # type: ignore[import-untyped]
from django.db import connection


def _seconds(process: psutil.Process, *, reaped: bool) -> float:
    times = process.cpu_times()
    spent = times.user + times.system
    return spent + (times.children_user + times.children_system if reaped else 0.0)


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds used so far by process ``root_pid``, its live descendants and the children they reaped."""
    try:
        root = psutil.Process(root_pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in members:
        try:
            total += _seconds(process, reaped=True)
        except psutil.NoSuchProcess:
            continue
    return total


def pids_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds used so far by each live process of ``pids`` (those gone are left out)."""
    out = {}
    for pid in pids:
        try:
            out[pid] = _seconds(psutil.Process(pid), reaped=False)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def backend_pids(application_name: str) -> list[int]:
    """The PostgreSQL backends connected with ``application_name`` (empty on other databases)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return [row[0] for row in cursor.fetchall()]


class BackendMeter:
    """CPU of the backends of one ``application_name`` between ``start()`` and ``stop()``: backends
    that connect in between count from zero, those that disconnect in between count up to the last
    ``sample()`` that saw them (call it now and then)."""

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def start(self) -> None:
        self.first = pids_cpu_seconds(backend_pids(self.application_name))
        self.last = dict(self.first)

    def sample(self) -> None:
        self.last.update(pids_cpu_seconds(backend_pids(self.application_name)))

    def stop(self) -> float:
        """CPU seconds the backends spent since ``start()``."""
        self.sample()
        return sum(seconds - self.first.get(pid, 0.0) for pid, seconds in self.last.items())
