"""Background jobs (``Job``): imports of a server folder, a manifest or uploaded files, and exports to a
file, queued here and run by a worker (``job_run``) with their progress, summary and file recorded."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from time import monotonic
from typing import Any, BinaryIO, TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotator import paths
from annotator.formats.exports import EXPORT_FORMATS, export_format_problem
from annotator.formats.imports import Candidate, Rejected, iter_manifest, read_manifest
from annotator.kinds import kind_of
from annotator.models import Job, Project
from annotator.services.enqueue import EXPORT_JOB_TASK, IMPORT_JOB_TASK, enqueue
from annotator.services.errors import ServiceError
from annotator.services.exports import export_file_write
from annotator.services.imports import (
    folder_candidates,
    import_folder_checked,
    import_limits,
    items_import,
    upload_candidates,
)

logger = logging.getLogger(__name__)

#: Every export format of every kind; a job is refused one its project's kind lacks (``export_formats``).
JOB_EXPORT_FORMATS = EXPORT_FORMATS
JOB_PROGRESS_EVERY_S = 0.5
JOB_REJECTED_KEPT = 1000

T = TypeVar("T")


def job_import_request(*, project: Project, user: User | None, folder: str, manifest: BinaryIO | None = None) -> Job:
    """Queue an import of a server folder, or of the files a manifest CSV (``filename,label``) names
    relative to it. The manifest is kept under ``DATA_DIR/jobs/`` for the worker."""
    root = import_folder_checked(folder)
    with transaction.atomic():
        job = Job.objects.create(project=project, kind=Job.Kind.IMPORT, params={"folder": str(root)}, created_by=user)
        if manifest is not None:
            target = paths.data_dir() / "jobs" / f"manifest_{job.id}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                shutil.copyfileobj(manifest, out, 1024 * 1024)
            job.params = {**job.params, "manifest": str(target)}
            job.save(update_fields=["params"])
        _job_enqueue(job)
    return job


def job_upload_import_request(*, project: Project, user: User | None, files: Sequence[tuple[str, BinaryIO]]) -> Job:
    """Queue an import of uploaded images and zips: the files are kept under ``DATA_DIR/jobs/`` for
    the worker (and removed once it has imported them), so a large upload returns at once."""
    if not files:
        raise ServiceError("Attach one or more images or .zip files.")
    with transaction.atomic():
        job = Job.objects.create(project=project, kind=Job.Kind.IMPORT, params={}, created_by=user)
        folder = paths.data_dir() / "jobs" / f"upload_{job.id}"
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for n, (name, fileobj) in enumerate(files):
            with (folder / str(n)).open("wb") as out:
                shutil.copyfileobj(fileobj, out, 1024 * 1024)
            names.append(name)
        job.params = {"uploads": str(folder), "names": names}
        job.save(update_fields=["params"])
        _job_enqueue(job)
    return job


def job_export_request(
    *,
    project: Project,
    user: User | None,
    fmt: str,
    images: bool = False,
    only_reviewed: bool = False,
    include_ambiguous: bool = False,
) -> Job:
    """Queue an export to a file under ``DATA_DIR/exports/``, in one of the formats of the project's
    kind (``export_formats``); ``images`` zips the image files alongside."""
    problem = export_format_problem(fmt, kind_of(project))
    if problem is not None:
        raise ServiceError(problem)
    params = {"format": fmt, "images": images, "only_reviewed": only_reviewed, "include_ambiguous": include_ambiguous}
    return _job_create(project=project, user=user, kind=Job.Kind.EXPORT, params=params)


def job_rerun(*, job: Job, user: User | None) -> Job:
    """Queue a new job of the same kind with the same parameters."""
    return _job_create(project=job.project, user=user, kind=job.kind, params=dict(job.params))


def _job_create(*, project: Project, user: User | None, kind: str, params: dict[str, Any]) -> Job:
    with transaction.atomic():
        job = Job.objects.create(project=project, kind=kind, params=params, created_by=user)
        _job_enqueue(job)
    return job


def _job_enqueue(job: Job) -> None:
    """Send the job to a worker on commit; a job that could not be sent is failed, saying why."""
    job_id = job.id

    def unsent(exc: Exception) -> None:
        Job.objects.filter(id=job_id).update(
            status=Job.Status.FAILED, error=f"could not be queued: {exc}", finished=timezone.now()
        )

    task = IMPORT_JOB_TASK if job.kind == Job.Kind.IMPORT else EXPORT_JOB_TASK
    enqueue(task, job_id, meanwhile=f"job {job_id} fails", on_failure=unsent)


def job_run(*, job_id: int) -> None:
    """Run a job (the worker's side): running, then done with its summary (and file), or failed with
    the error. A job redelivered after a lost worker runs again from the start."""
    started = Job.objects.filter(id=job_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.RUNNING, progress=0.0
    )
    if not started:
        return
    job = Job.objects.select_related("project", "created_by").get(id=job_id)
    try:
        summary, relpath = _job_import(job) if job.kind == Job.Kind.IMPORT else _job_export(job)
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        error = str(exc) if isinstance(exc, ServiceError) else f"{exc.__class__.__name__}: {exc}"
        Job.objects.filter(id=job_id).update(status=Job.Status.FAILED, error=error, finished=timezone.now())
        return
    Job.objects.filter(id=job_id).update(
        status=Job.Status.DONE, progress=1.0, summary=summary, file=relpath, finished=timezone.now()
    )


def _with_progress(rows: Iterable[T], *, job_id: int, total: int) -> Iterator[T]:
    """Pass ``rows`` through, writing the job's progress (at most every ``JOB_PROGRESS_EVERY_S``)."""
    last = monotonic()
    for n, row in enumerate(rows, 1):
        yield row
        if total and monotonic() - last >= JOB_PROGRESS_EVERY_S:
            last = monotonic()
            Job.objects.filter(id=job_id).update(progress=min(n / total, 0.99))


def _upload_total(path: Path, name: str) -> int:
    """How many files an upload brings: the members of a zip, else one."""
    if not name.lower().endswith(".zip"):
        return 1
    try:
        with zipfile.ZipFile(path) as archive:
            return len(archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return 1


def _job_import(job: Job) -> tuple[dict[str, Any], str]:
    labels = set(job.project.classes.values_list("name", flat=True))
    limits = import_limits()
    manifest = job.params.get("manifest")
    uploads = job.params.get("uploads")
    root = None if uploads else import_folder_checked(job.params.get("folder", ""))
    total: int
    candidates: Iterator[Candidate | Rejected]
    with contextlib.ExitStack() as stack:
        if uploads:
            folder = Path(uploads)
            if not folder.is_dir():
                raise ServiceError("The uploaded files are gone: they are removed once imported; upload them again.")
            staged = [(name, folder / str(n)) for n, name in enumerate(job.params.get("names", []))]
            total = sum(_upload_total(path, name) for name, path in staged)
            opened = [(name, stack.enter_context(path.open("rb"))) for name, path in staged]
            candidates = upload_candidates(project=job.project, files=opened, limits=limits)
        else:
            assert root is not None  # set whenever the job has no uploads
            if manifest and kind_of(job.project).boxes:
                raise ServiceError(
                    "A manifest gives classes; a box project imports annotation files (COCO, YOLO, Pascal VOC "
                    "or Label Studio JSON) with the images instead."
                )
            if manifest:
                with open(manifest, "rb") as fh:
                    total = sum(1 for _ in read_manifest(fh))
                rows = read_manifest(stack.enter_context(open(manifest, "rb")))
                candidates = iter_manifest(root, rows, limits=limits, labels=labels)
            else:
                total = sum(len(files) for _, _, files in os.walk(root))
                candidates = folder_candidates(project=job.project, root=root, limits=limits)
        progress = _with_progress(candidates, job_id=job.id, total=total)
        summary = items_import(project=job.project, candidates=progress, user=job.created_by)
    if uploads:
        shutil.rmtree(uploads, ignore_errors=True)
    result = summary.as_dict()
    result["n_rejected"] = len(summary.rejected)
    result["rejected"] = summary.rejected[:JOB_REJECTED_KEPT]
    return result, ""


def _job_export(job: Job) -> tuple[dict[str, Any], str]:
    params = job.params
    return export_file_write(
        project=job.project,
        fmt=params["format"],
        images=bool(params.get("images")),
        only_reviewed=bool(params.get("only_reviewed")),
        include_ambiguous=bool(params.get("include_ambiguous")),
        prefix=f"job{job.id}-",
        progress=lambda rows, total: _with_progress(rows, job_id=job.id, total=total),
    )


def job_file_path(*, job: Job) -> Path | None:
    """The finished export file of a job, when it is there."""
    if job.status != Job.Status.DONE or not job.file:
        return None
    path = paths.data_dir() / job.file
    return path if path.is_file() else None
