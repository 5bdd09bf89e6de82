"""Sending Celery tasks from the services, by name: services never import ``annotator.tasks`` (the tasks
import the services), so each task is named here and the Celery app sends it by that name, to the queue
that ``CELERY_TASK_ROUTES`` gives it. A broker that is down never fails the caller: the failure is
logged, and the database keeps what was asked so that the workers' reconciliation can ask again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

from annotator.celery import app

logger = logging.getLogger(__name__)

#: The tasks of ``annotator/tasks.py`` that services send.
TRAIN_PROJECT_TASK = "annotator.tasks.train_project_task"
COLD_START_PROJECT_TASK = "annotator.tasks.cold_start_project_task"
REVIEW_PROJECT_TASK = "annotator.tasks.review_project_task"
IMPORT_JOB_TASK = "annotator.tasks.import_job_task"
EXPORT_JOB_TASK = "annotator.tasks.export_job_task"


def send(task: str, *args: Any, meanwhile: str) -> Exception | None:
    """Send the task named ``task`` with ``args`` now; ``None`` once the broker has it, otherwise the
    error, logged with ``meanwhile`` (what becomes of the work until it is sent again)."""
    try:
        app.send_task(task, args=args, retry=False)
    except OperationalError as exc:
        logger.warning("broker unavailable (%s): %s", exc, meanwhile)
        return exc
    except Exception as exc:
        logger.exception("could not send %s: %s", task, meanwhile)
        return exc
    return None


def enqueue(task: str, *args: Any, meanwhile: str, on_failure: Callable[[Exception], None] | None = None) -> None:
    """Send the task once the current transaction commits (at once outside one), so that a worker
    never sees uncommitted rows; ``on_failure`` gets the error when it could not be sent."""

    def after_commit() -> None:
        error = send(task, *args, meanwhile=meanwhile)
        if error is not None and on_failure is not None:
            on_failure(error)

    transaction.on_commit(after_commit)
