"""Every Celery task: each takes ids, calls one service, and returns what it returns. Services send these
by name (``services.enqueue``) and never import this module; the queue of each is in
``CELERY_TASK_ROUTES`` (training, cold starts: ``training``; the rest: ``default``).

Also the workers' reconciliation: each worker, from its start and then every ``RECONCILE_SECONDS``,
puts training back on track after faults (``training_reconcile``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import connection

from annotator.services.jobs import job_run
from annotator.services.training import training_reconcile
from annotator.services.training_run import cold_start_run, review_scan_run, training_run

logger = logging.getLogger("annotator.reconcile")


@shared_task(acks_late=True, ignore_result=True)
def train_project_task(project_id: int) -> int | None:
    """Retrain the project's model, re-score its pool, and publish a new version (``training_run``)."""
    return training_run(project_id=project_id)


@shared_task(acks_late=True, ignore_result=True)
def cold_start_project_task(project_id: int) -> int:
    """Before the first model: a spread-out, typical batch at the head of the queue (``cold_start_run``)."""
    return cold_start_run(project_id=project_id)


@shared_task(acks_late=True, ignore_result=True)
def review_project_task(project_id: int, version_number: int | None = None) -> int | None:
    """Look for likely label errors (``review_scan_run``)."""
    return review_scan_run(project_id=project_id, version_number=version_number)


@shared_task(ignore_result=True)
def import_job_task(job_id: int) -> None:
    """A background import (``job_run``)."""
    job_run(job_id=job_id)


@shared_task(ignore_result=True)
def export_job_task(job_id: int) -> None:
    """A background export (``job_run``)."""
    job_run(job_id=job_id)


def _reconcile_forever(interval: float) -> None:
    """Every ``interval`` seconds, put training back on track after faults (``training_reconcile``)."""
    while True:
        try:
            resent = training_reconcile()
            if resent:
                logger.info("re-sent training requests of projects %s", resent)
        except Exception:
            logger.exception("training reconciliation failed; trying again later")
        finally:
            connection.close()
        time.sleep(interval)


@worker_ready.connect
def _start_reconciliation(**kwargs: Any) -> None:
    """Each worker reconciles at start and then periodically: runs interrupted by a dead worker are
    marked failed and requested again; requests lost while the broker was down are sent again;
    retrains a label should have requested (its request failed after commit) are requested."""
    if getattr(settings, "RECONCILE_SECONDS", 0) > 0:
        interval = float(settings.RECONCILE_SECONDS)
        threading.Thread(target=_reconcile_forever, args=(interval,), daemon=True, name="reconcile").start()
