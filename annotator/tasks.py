"""Celery tasks of the annotator app: background imports and exports (``Job``), thin wrappers
that load by id and call one service."""

from __future__ import annotations

from celery import shared_task

from annotator import services


@shared_task(ignore_result=True)
def import_job_task(job_id: int) -> None:
    services.job_run(job_id=job_id)


@shared_task(ignore_result=True)
def export_job_task(job_id: int) -> None:
    services.job_run(job_id=job_id)
