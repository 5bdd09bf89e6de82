"""Training: asking for a retrain (requests coalesce into one follow-up run), the run's lock and
heartbeat, publishing or failing a model version, the cold start before the first model, and the
workers' reconciliation that puts all of it back on track after a fault.

The run itself (load the arrays, call ``ml``, write the files) is ``training_run``; this module is
what it and the labels write through.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import DateTimeField, Exists, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator import paths
from annotator.formats.predictions import predictions_write
from annotator.models import Item, ModelVersion, Project
from annotator.selectors.classes import class_order
from annotator.services.enqueue import COLD_START_PROJECT_TASK, TRAIN_PROJECT_TASK, enqueue, send

logger = logging.getLogger(__name__)


def labeled_count(*, project_id: int) -> int:
    return Item.objects.filter(project_id=project_id, status=Item.Status.LABELED).count()


def training_maybe_request(*, project_id: int) -> bool:
    """Request a retrain once ``retrain_every`` labels have come in since the last version began.

    Cheap on every label: nothing to do while a request is pending, and otherwise it counts at
    most ``retrain_every`` items labeled since the last version began (an index range scan).
    """
    project = Project.objects.filter(id=project_id).only("id", "retrain_every", "training_requested").first()
    if project is None or project.training_requested:
        return False
    last = ModelVersion.objects.filter(project_id=project_id).order_by("-number").values_list("created", flat=True)
    recent = Item.objects.filter(project_id=project_id, status=Item.Status.LABELED)
    if last:
        recent = recent.filter(labeled_at__gt=last[0])
    if recent.order_by()[: project.retrain_every].count() >= project.retrain_every:
        training_request(project_id=project_id)
        return True
    return False


def _counter_key(project_id: int) -> str:
    return f"annotator:labels-since-request:{project_id}"


def training_label_counted(*, project_id: int, retrain_every: int) -> bool:
    """``training_maybe_request`` for one new label, gated by a counter in the shared cache (Redis in
    production): the labels since the project's last request are counted by an increment, and the
    exact check (three queries) runs only once there are ``retrain_every`` of them. The counter can
    only run ahead of the exact count (it restarts when a request is made, before the version that
    request trains begins), so no retrain comes later than before; should the cache be unreachable
    or have lost the counter, the exact check runs or the count restarts (a retrain at most
    ``retrain_every`` labels late)."""
    key = _counter_key(project_id)
    try:
        try:
            counted = cache.incr(key)
        except ValueError:  # no counter yet: start it, unless a concurrent label just did
            counted = 1 if cache.add(key, 1, timeout=None) else cache.incr(key)
    except Exception:  # any cache failure: fall back to the exact check
        logger.warning("project %s: label counter unavailable; counting in the database", project_id, exc_info=True)
        counted = retrain_every
    if counted < retrain_every:
        return False
    requested = training_maybe_request(project_id=project_id)
    if requested:
        with contextlib.suppress(Exception):
            cache.set(key, 0, timeout=None)
    return requested


INTERRUPTED = "interrupted: the worker stopped during training"


def training_request_overdue(*, project: Project, now: datetime) -> bool:
    """A pending request older than ``TRAINING_RESEND_SECONDS`` with no run holding the lock."""
    if not project.training_requested or project.training_requested_at is None:
        return False
    waited = (now - project.training_requested_at).total_seconds()
    locked = project.training_lock_until is not None and project.training_lock_until > now
    return waited > settings.TRAINING_RESEND_SECONDS and not locked


def training_resend(*, project_id: int) -> bool:
    """Send a pending request again (its message may have been lost while the broker was down).
    One caller wins per resend period, so a busy project does not flood the broker. Callers never
    queue behind the project's row: whoever finds it locked leaves the resend to its holder or to
    the next caller, so that many annotators' resends cannot pile up on it (on PostgreSQL)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
    due = Project.objects.filter(id=project_id, training_requested=True, training_requested_at__lt=cutoff).filter(
        Q(training_lock_until__isnull=True) | Q(training_lock_until__lt=now)
    )
    with transaction.atomic():
        if not due.select_for_update(skip_locked=True, no_key=True).values_list("id", flat=True):
            return False
        won = due.update(training_requested_at=now)
    if won:
        _training_send(project_id)
    return bool(won)


def training_reconcile() -> list[int]:
    """Put training back on track after a fault; returns the projects it re-sent.

    A run whose worker died (its version still says training, its heartbeat lock expired) is marked
    failed and requested again; a request that waited past ``TRAINING_RESEND_SECONDS`` without a
    run is sent again; a project with ``retrain_every`` new labels and no request (the label's own
    request failed after its commit, e.g. in a deadlock) is requested now; a project that needs a
    cold start and has none (its items arrived while the broker was down) gets one. Workers run this
    when they start, and every few minutes.
    """
    now = timezone.now()
    stale = ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).filter(
        Q(project__training_lock_until__isnull=True) | Q(project__training_lock_until__lt=now)
    )
    with transaction.atomic():
        dead = list(stale.values_list("project_id", flat=True))
        stale.update(status=ModelVersion.Status.FAILED, error=INTERRUPTED, finished=now)
        old = now - timedelta(seconds=settings.TRAINING_RESEND_SECONDS + 1)
        Project.objects.filter(id__in=dead).update(training_requested=True, training_requested_at=old)
    cutoff = now - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
    pending = Project.objects.filter(training_requested=True, training_requested_at__lt=cutoff).filter(
        Q(training_lock_until__isnull=True) | Q(training_lock_until__lt=now)
    )
    resent = [
        project_id for project_id in pending.values_list("id", flat=True) if training_resend(project_id=project_id)
    ]
    cold = cold_start_reconcile()
    return (
        resent
        + [project_id for project_id in _labeled_since_last_version() if training_maybe_request(project_id=project_id)]
        + [project_id for project_id in cold if project_id not in resent]
    )


def _labeled_since_last_version() -> list[int]:
    """Projects with no request pending and a label newer than their latest version (one query)."""
    last = ModelVersion.objects.filter(project=OuterRef("pk")).order_by("-number").values("created")[:1]
    newer = Item.objects.filter(project=OuterRef("pk"), status=Item.Status.LABELED, labeled_at__gt=OuterRef("last"))
    since = Coalesce(Subquery(last), Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField()))
    projects = Project.objects.filter(training_requested=False).annotate(last=since)
    return list(projects.filter(Exists(newer)).values_list("id", flat=True))


def training_request(*, project_id: int) -> None:
    """Ask for a retrain. Requests made while one runs coalesce into a single follow-up run."""
    now = timezone.now()
    flipped = Project.objects.filter(id=project_id, training_requested=False).update(
        training_requested=True, training_requested_at=now
    )
    lock_free = (
        Project.objects.filter(id=project_id)
        .filter(Q(training_lock_until__isnull=True) | Q(training_lock_until__lt=now))
        .exists()
    )
    if flipped or lock_free:
        enqueue(TRAIN_PROJECT_TASK, project_id, meanwhile=_training_waits(project_id))


def _training_send(project_id: int) -> None:
    """Send the project's training now (the request is already recorded)."""
    send(TRAIN_PROJECT_TASK, project_id, meanwhile=_training_waits(project_id))


def _training_waits(project_id: int) -> str:
    return f"training of project {project_id} stays requested"


def training_begin(*, project_id: int) -> ModelVersion | None:
    """Take the project's training lock and open a new version; ``None`` if another run holds it
    or nothing is requested."""
    now = timezone.now()
    got = (
        Project.objects.filter(id=project_id, training_requested=True)
        .filter(Q(training_lock_until__isnull=True) | Q(training_lock_until__lt=now))
        .update(training_requested=False, training_lock_until=now + timedelta(seconds=settings.TRAINING_LOCK_SECONDS))
    )
    if not got:
        return None
    project = Project.objects.get(id=project_id)
    with transaction.atomic():
        ModelVersion.objects.filter(project_id=project_id, status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED, error=INTERRUPTED, finished=now
        )
        number = (ModelVersion.objects.filter(project_id=project_id).aggregate(n=Max("number"))["n"] or 0) + 1
        return ModelVersion.objects.create(
            project=project,
            number=number,
            strategy=project.strategy,
            model_family=project.model_family,
            n_labels=labeled_count(project_id=project_id),
        )


class TrainingHeartbeat(threading.Thread):
    """Renews a running version's training lock from a background thread until stopped, so that the
    lock outlives slow phases of a live run but not a dead worker."""

    def __init__(self, version_id: int):
        super().__init__(daemon=True, name=f"training-heartbeat-{version_id}")
        self.version_id = version_id
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(1.0, settings.TRAINING_LOCK_SECONDS / 4)
        try:
            while not self.stopped.wait(interval):
                until = timezone.now() + timedelta(seconds=settings.TRAINING_LOCK_SECONDS)
                Project.objects.filter(
                    model_versions__id=self.version_id, model_versions__status=ModelVersion.Status.TRAINING
                ).update(training_lock_until=until)
        except Exception:
            logger.exception("training heartbeat of version %s stopped", self.version_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def training_end(*, project_id: int) -> None:
    """Release the training lock; run again if requests came in meanwhile."""
    Project.objects.filter(id=project_id).update(training_lock_until=None)
    if Project.objects.filter(id=project_id, training_requested=True).exists():
        _training_send(project_id)


def model_version_publish(
    *,
    version: ModelVersion,
    item_ids: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    scores: np.ndarray,
    priorities: np.ndarray,
    metrics: dict[str, Any],
    weights: str,
    confidence: np.ndarray | None = None,
    held_out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> ModelVersion:
    """Write every pre-label and priority, then mark the version ready, in one transaction.

    ``probs`` is (N, C) mean class probabilities for ``item_ids``; ``scores``, ``priorities`` and
    ``confidence`` (the chance the pre-label is right; default: the top probability) are (N,).
    ``held_out``: the labeled items' out-of-fold predictions, ``(item_ids (L,), probs (L, C),
    confidence (L,))``, rows with NaN left out; they become those items' predictions (the ones the
    version's confusion matrix counts), leaving their scores and priorities as they are.
    """
    class_ids = class_order(project_id=version.project_id).ids

    def predictions(ids: Sequence[int] | np.ndarray, p: np.ndarray, sure: np.ndarray) -> list[Item]:
        best = p.argmax(axis=1) if len(p) else np.zeros(0, dtype=int)
        return [
            Item(
                id=int(item_id),
                pred_label_id=class_ids[int(best[i])],
                pred_confidence=round(float(sure[i]), 4),
                pred_probs=[round(float(x), 4) for x in p[i]],
                pred_version_id=version.id,
            )
            for i, item_id in enumerate(ids)
        ]

    sure = confidence if confidence is not None else probs.max(axis=1) if len(probs) else np.zeros(0)
    items = predictions(item_ids, probs, sure)
    for i, item in enumerate(items):
        item.score, item.priority = float(scores[i]), float(priorities[i])
    labeled = predictions(*held_out) if held_out is not None else []
    predicted = ["pred_label", "pred_confidence", "pred_probs", "pred_version"]
    if weights:  # kept for the items' histories: what this version guessed, per item
        every = items + labeled
        predictions_write(
            paths.predictions_path(weights),
            np.array([item.id for item in every], dtype=np.int64),
            np.array([item.pred_label_id for item in every], dtype=np.int64),
            np.array([item.pred_confidence for item in every], dtype=np.float32),
        )
    with transaction.atomic():
        # The project row lock orders this against a cold start writing priorities.
        Project.objects.select_for_update().filter(id=version.project_id).first()
        Item.objects.bulk_update(items, [*predicted, "score", "priority"], batch_size=500)
        Item.objects.bulk_update(labeled, predicted, batch_size=500)
        version.status = ModelVersion.Status.READY
        version.metrics = metrics
        version.weights = weights
        version.progress = 1.0
        version.finished = timezone.now()
        version.save(update_fields=["status", "metrics", "weights", "progress", "finished"])
    return version


def model_version_fail(*, version: ModelVersion, error: str) -> None:
    ModelVersion.objects.filter(id=version.id).update(
        status=ModelVersion.Status.FAILED, error=error[:5000], finished=timezone.now()
    )


def model_version_progress(*, version_id: int, progress: float) -> None:
    """Record how far a running version is, 0..1 (only while it is still training), and renew the
    project's training lock: the lock is a heartbeat, so a run whose worker died frees it soon."""
    updated = ModelVersion.objects.filter(id=version_id, status=ModelVersion.Status.TRAINING).update(
        progress=min(max(float(progress), 0.0), 1.0)
    )
    if updated:
        until = timezone.now() + timedelta(seconds=settings.TRAINING_LOCK_SECONDS)
        Project.objects.filter(model_versions__id=version_id).update(training_lock_until=until)


def cold_start_request(*, project_id: int) -> None:
    """After an import, before any model: have a worker pick a spread-out first batch (on commit).
    If the broker is down, the workers' reconciliation asks again (``cold_start_reconcile``)."""
    if ModelVersion.objects.filter(project_id=project_id, status=ModelVersion.Status.READY).exists():
        return
    Project.objects.filter(id=project_id).update(cold_start_requested_at=timezone.now())
    enqueue(COLD_START_PROJECT_TASK, project_id, meanwhile=_cold_start_waits(project_id))


def _cold_start_waits(project_id: int) -> str:
    return f"the cold start of project {project_id} waits for the workers, who will ask again"


def cold_start_pending() -> list[int]:
    """Projects that need a cold start and were not asked for one lately: no ready model, items to
    label, and no cold-start order since their latest import (one query)."""
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
    ready = ModelVersion.objects.filter(project=OuterRef("pk"), status=ModelVersion.Status.READY)
    unlabeled = Item.objects.filter(project=OuterRef("pk"), status=Item.Status.UNLABELED)
    newer = unlabeled.filter(created__gt=OuterRef("cold_start_at"))
    projects = (
        Project.objects.filter(~Exists(ready), Exists(unlabeled))
        .filter(Q(cold_start_at__isnull=True) | Exists(newer))
        .filter(Q(cold_start_requested_at__isnull=True) | Q(cold_start_requested_at__lt=cutoff))
    )
    return list(projects.values_list("id", flat=True))


def cold_start_reconcile() -> list[int]:
    """Ask for the cold start of every project that needs one (``cold_start_pending``); returns them."""
    pending = cold_start_pending()
    for project_id in pending:
        Project.objects.filter(id=project_id).update(cold_start_requested_at=timezone.now())
        send(COLD_START_PROJECT_TASK, project_id, meanwhile=_cold_start_waits(project_id))
    return pending


def items_cold_start_publish(*, project_id: int, item_ids: Sequence[int]) -> int:
    """Put ``item_ids`` first in the queue, in that order, unless a model already ranks it.

    Priorities 1 < p <= 2, above the random [0, 1) ones of a fresh import. Returns how many
    items were updated (0 if a ready model version exists by now).
    """
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project_id).first()
        if ModelVersion.objects.filter(project_id=project_id, status=ModelVersion.Status.READY).exists():
            return 0
        k = len(item_ids)
        items = [Item(id=int(item_id), priority=1.0 + (k - i) / k) for i, item_id in enumerate(item_ids)]
        Item.objects.bulk_update(items, ["priority"], batch_size=500)
        Project.objects.filter(id=project_id).update(cold_start_at=timezone.now())
    return len(items)
