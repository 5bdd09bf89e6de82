"""Closed-loop HTTP clients for ``bench_api``: each is one annotator labeling as the labeling page does.

``one-round-trip`` (the page today): the first item from ``/next``, then for each item its image and
``POST …/annotations/?next=1``, whose answer carries the next item. ``classic``: ``/next``, the
image, the annotation, three requests per label. ``floor``: ``GET /health/`` twice per loop, what the
stack costs without our work. Every client counts the bytes the server sent it (status line,
headers and body).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from typing import Any

import numpy as np

MODES = ("one-round-trip", "classic", "floor")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    array = np.array(values)
    return {f"p{q}": round(float(np.percentile(array, q)), 2) for q in (50, 95, 99)}


def response_size(response: http.client.HTTPResponse, body: bytes) -> int:
    """Bytes on the wire for ``response`` (chunk framing aside): status line, headers, blank line, body."""
    status_line = len(f"HTTP/1.1 {response.status} {response.reason}\r\n")
    headers = sum(len(name) + len(value) + 4 for name, value in response.getheaders())
    return status_line + headers + 2 + len(body)


class Client(threading.Thread):
    """One annotator on a keep-alive connection, looping until ``stop_at``; only what happens after
    ``start_at`` is measured."""

    def __init__(
        self, *, port: int, token: str, project_id: int, labels: list[str], start_at: float, stop_at: float, mode: str
    ):
        super().__init__(daemon=True)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.port, self.project_id, self.labels = port, project_id, labels
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.start_at, self.stop_at = start_at, stop_at
        self.timings: dict[str, list[float]] = {"next": [], "image": [], "annotate": []}
        self.served: list[int] = []
        self.tokens_ok: list[str] = []
        self.bytes_measured = 0
        self.labels_measured = 0
        self.errors = 0
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        """(status, body, milliseconds); status 0 when the connection failed (it is reopened)."""
        payload = json.dumps(body).encode() if body is not None else None
        began = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=self.headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, b"", (time.perf_counter() - began) * 1000
        if began >= self.start_at:
            self.bytes_measured += response_size(response, data)
        return response.status, data, (time.perf_counter() - began) * 1000

    def record(self, began: float, **timings: float) -> None:
        if began >= self.start_at:
            self.labels_measured += 1
            for name, ms in timings.items():
                self.timings[name].append(ms)

    def answer(self) -> dict[str, Any]:
        token = uuid.uuid4().hex
        return {"label": random.choice(self.labels), "client_token": token, "duration_ms": 900}

    def fetch_image(self, item: dict) -> float | None:
        status, _, ms = self.call("GET", item["image_url"])
        if status != 200:
            self.errors += 1
            return None
        return ms

    def run(self) -> None:
        try:
            {"one-round-trip": self.run_combined, "classic": self.run_classic, "floor": self.run_floor}[self.mode]()
        finally:
            self.connection.close()

    def run_combined(self) -> None:
        status, data, _ = self.call("GET", f"/api/projects/{self.project_id}/next/")
        item = json.loads(data) if status == 200 else None
        while item is not None and time.perf_counter() < self.stop_at:
            began = time.perf_counter()
            image_ms = self.fetch_image(item)
            body = self.answer()
            status, data, ms = self.call("POST", f"/api/items/{item['id']}/annotations/?next=1", body)
            if status not in (201, 204):
                self.errors += 1
                continue  # the same item again: the retry a page makes
            self.tokens_ok.append(body["client_token"])
            self.served.append(item["id"])
            if image_ms is not None:
                self.record(began, image=image_ms, annotate=ms)
            item = json.loads(data)["next"] if status == 201 else None

    def run_classic(self) -> None:
        while time.perf_counter() < self.stop_at:
            began = time.perf_counter()
            status, data, next_ms = self.call("GET", f"/api/projects/{self.project_id}/next/")
            if status == 204:
                break
            if status != 200:
                self.errors += 1
                continue
            item = json.loads(data)
            image_ms = self.fetch_image(item)
            body = self.answer()
            status, _, ms = self.call("POST", f"/api/items/{item['id']}/annotations/", body)
            if status != 201:
                self.errors += 1
                continue
            self.tokens_ok.append(body["client_token"])
            self.served.append(item["id"])
            if image_ms is not None:
                self.record(began, next=next_ms, image=image_ms, annotate=ms)

    def run_floor(self) -> None:
        while time.perf_counter() < self.stop_at:
            began = time.perf_counter()
            status, _, ms = self.call("GET", "/health/")
            status2, _, ms2 = self.call("GET", "/health/")
            if status == status2 == 200:
                self.record(began, next=ms, annotate=ms2)
            else:
                self.errors += 1


def duplicates(clients: list[Client]) -> int:
    """Items that more than one client labeled (each annotator's item must be theirs alone)."""
    owners: dict[int, int] = {}
    count = 0
    for index, client in enumerate(clients):
        for item_id in client.served:
            if owners.setdefault(item_id, index) != index:
                count += 1
    return count
