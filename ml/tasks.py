"""Celery tasks of the model: thin wrappers that call the workers' runs in ``annotator.training``."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def train_project_task(project_id: int) -> int | None:
    """Retrain the project's model, re-score its pool, and publish a new version (``training_run``)."""
    from annotator.training import training_run

    return training_run(project_id=project_id)


@shared_task(acks_late=True, ignore_result=True)
def cold_start_project_task(project_id: int) -> int:
    """Before the first model: a spread-out, typical batch at the head of the queue (``cold_start_run``)."""
    from annotator.training import cold_start_run

    return cold_start_run(project_id=project_id)


@shared_task(acks_late=True, ignore_result=True)
def review_project_task(project_id: int, version_number: int | None = None) -> int | None:
    """Look for likely label errors (``review_scan_run``)."""
    from annotator.training import review_scan_run

    return review_scan_run(project_id=project_id, version_number=version_number)
