"""Throwaway labeled projects for benchmarks and memory tests: many items made with bulk inserts
that share a few small stored image files, exports run in-process through the job path, and the
peak memory of a call.
"""

from __future__ import annotations

import contextlib
import gc
import io
import shutil
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from PIL import Image

from annotator import paths
from annotator.demo import render_digits
from annotator.formats.renditions import thumbnail_name
from annotator.models import Annotation, AnnotationClass, Item, ItemClass, Job, Project
from annotator.services.annotations import annotation_create
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_folder
from annotator.services.jobs import JOB_EXPORT_FORMATS, job_file_path, job_run
from annotator.services.projects import project_create

N_FILES = 4
BATCH = 5000
T = TypeVar("T")


def _png(seed: int, size: int = 16) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def labeled_project_create(
    *,
    name: str,
    n_items: int,
    labels: Sequence[str] = ("cat", "dog", "bird"),
    user: User | None = None,
) -> Project:
    """A project of ``n_items`` labeled items, each with one active annotation (by ``user``, or an
    import without one) and a pre-label; the items share ``N_FILES`` 16×16 PNG files. On PostgreSQL
    the tables are analyzed afterwards."""
    project = project_create(name=name, labels=list(labels), user=user)
    class_ids = list(project.classes.order_by("index").values_list("id", flat=True))
    files: list[str] = []
    try:
        for i in range(N_FILES):
            files.append(default_storage.save(f"projects/{project.id}/bench-{i}.png", ContentFile(_png(i))))
        source = Annotation.Source.HUMAN if user is not None else Annotation.Source.IMPORT
        now = timezone.now()
        for start in range(0, n_items, BATCH):
            batch = range(start, min(n_items, start + BATCH))
            items = Item.objects.bulk_create(
                Item(
                    project=project,
                    file=files[i % N_FILES],
                    original_name=f"item-{i:07d}.png",
                    width=16,
                    height=16,
                    sha256=f"bench-{i}",
                    status=Item.Status.LABELED,
                    labeled_at=now + timedelta(microseconds=i),
                    n_annotations=1,
                    agreement=1.0,
                    pred_label_id=class_ids[(i * 7) % len(class_ids)],
                    pred_confidence=(i % 100) / 100,
                    score=(i % 37) / 37,
                )
                for i in batch
            )
            given = [class_ids[i % len(class_ids)] for i in batch]
            annotations = Annotation.objects.bulk_create(
                Annotation(item_id=item.id, user=user, source=source) for item in items
            )
            AnnotationClass.objects.bulk_create(
                AnnotationClass(annotation_id=a.id, label_class_id=c) for a, c in zip(annotations, given, strict=True)
            )
            ItemClass.objects.bulk_create(
                ItemClass(item_id=item.id, label_class_id=c) for item, c in zip(items, given, strict=True)
            )
        if connection.vendor == "postgresql":
            # Fresh statistics, as autovacuum would gather: without them the planner reads the
            # export's latest-annotation subquery by walking the whole annotation table for each item.
            with connection.cursor() as cursor:
                tables = [m._meta.db_table for m in (Item, Annotation, ItemClass, AnnotationClass)]
                cursor.execute(f"ANALYZE {', '.join(tables)}")
    except BaseException:
        for name in files:
            default_storage.delete(name)
        labeled_project_delete(project)
        raise
    return project


def labeled_project_delete(project: Project) -> None:
    """Remove the project, its rows (items, annotations and their answers: a statement each, not one
    by one), its image files with their thumbnails and display renditions, its image cache, model
    files and export files."""
    files = set(Item.objects.filter(project=project).values_list("file", flat=True).distinct())
    displays = set(Item.objects.filter(project=project).values_list("display", flat=True).distinct())
    names = files | {thumbnail_name(name) for name in files} | {name for name in displays if name}
    items = f"SELECT id FROM {Item._meta.db_table} WHERE project_id = %s"
    annotations = f"SELECT id FROM {Annotation._meta.db_table} WHERE item_id IN ({items})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {AnnotationClass._meta.db_table} WHERE annotation_id IN ({annotations})", [project.id]
        )
        cursor.execute(f"DELETE FROM {ItemClass._meta.db_table} WHERE item_id IN ({items})", [project.id])
        cursor.execute(f"DELETE FROM {Annotation._meta.db_table} WHERE item_id IN ({items})", [project.id])
        cursor.execute(f"DELETE FROM {Item._meta.db_table} WHERE project_id = %s", [project.id])
    for name in names:
        default_storage.delete(name)
    for folder in ("exports", "cache", "models"):
        shutil.rmtree(paths.data_dir() / folder / f"project_{project.id}", ignore_errors=True)
    with contextlib.suppress(OSError):  # the media folder, once empty
        (Path(settings.MEDIA_ROOT) / "projects" / str(project.id)).rmdir()
    project.delete()


def export_run(*, project: Project, fmt: str, images: bool = False) -> Job:
    """Run an export the way the worker does (``job_run``), in this process: the Job row
    that ``services.job_export_request`` makes, without its on_commit enqueue, so no broker is needed."""
    if fmt not in JOB_EXPORT_FORMATS:
        raise ServiceError(f"Unknown export format {fmt!r}; valid: {', '.join(JOB_EXPORT_FORMATS)}.")
    params = {"format": fmt, "images": images, "only_reviewed": False, "include_ambiguous": False}
    job = Job.objects.create(project=project, kind=Job.Kind.EXPORT, params=params)
    job_run(job_id=job.id)
    job.refresh_from_db()
    if job.status != Job.Status.DONE:
        raise ServiceError(f"export job {job.id} ended {job.status}: {job.error}")
    return job


def traced_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` and the most Python heap (bytes, by tracemalloc) it held above what was held before."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    gc.collect()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        value = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not tracing:
            tracemalloc.stop()
    return value, peak - before


def export_file_delete(job: Job) -> None:
    """Remove a finished export's file."""
    path = job_file_path(job=job)
    if path is not None:
        path.unlink(missing_ok=True)


def digits_project_create(*, name: str, user: User | None, folder: Path) -> tuple[Project, dict[int, int]]:
    """A project of scikit-learn's 1,797 digits as the demo has them (64×64 PNGs written to
    ``folder``, imported as a user would, cold start included); returns it and each item's true class."""
    from annotator.services.training_run import cold_start_run

    truth = render_digits(folder)
    project = project_create(
        name=name, labels=[{"name": str(d), "hotkey": str(d)} for d in range(10)], user=user, input_size=32
    )
    items_import_folder(project=project, root=folder, user=user)
    cold_start_run(project_id=project.id)
    by_item = {
        item_id: truth[int(original[len("digit_") : -len(".png")])]
        for item_id, original in Item.objects.filter(project=project).values_list("id", "original_name")
    }
    return project, by_item


def label_from_queue(*, project: Project, user: User, truth: dict[int, int], n: int) -> None:
    """Label the ``n`` items at the head of the queue with their true class, as an annotator
    following ``/next`` would (without retrain requests: the caller trains when it wants)."""
    Project.objects.filter(id=project.id).update(retrain_every=1_000_000)
    for item in list(
        Item.objects.filter(project=project, status=Item.Status.UNLABELED).order_by("-priority", "id")[:n]
    ):
        annotation_create(item=item, user=user, label=str(truth[item.id]))


def product_retrain(*, project: Project, retrain_every: int = 10) -> tuple[float, dict]:
    """One retrain of ``project`` through the worker's run (``training_run``): seconds and the metrics."""
    import time

    from annotator.services.training_run import training_run

    Project.objects.filter(id=project.id).update(retrain_every=retrain_every, training_requested=True)
    started = time.perf_counter()
    number = training_run(project_id=project.id)
    seconds = time.perf_counter() - started
    version = project.model_versions.get(number=number) if number is not None else None
    if version is None or version.status != version.Status.READY:
        raise ServiceError(f"the retrain of project {project.id} did not publish a version")
    return seconds, version.metrics


def phone_photo(seed: int, size: tuple[int, int] = (4032, 3024)) -> bytes:
    """A stand-in for a phone photo of ``size`` pixels (12 MP by default), as a quality-90 JPEG: a
    2×2 mosaic of the photographs that ship with scikit-learn, each enlarged about 3× (so that at a
    1600-px display size it holds about a real photo's detail) and mirrored at random, with sensor-like
    noise (σ = 3 grey levels)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    width, height = size
    canvas = Image.new("RGB", size)
    for col in range(2):
        for row in range(2):
            tile = photos[int(rng.integers(len(photos)))]
            if rng.random() < 0.5:
                tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            tile = tile.resize((width // 2, height // 2), Image.Resampling.BICUBIC)
            canvas.paste(tile, (col * width // 2, row * height // 2))
    noisy = np.asarray(canvas, dtype=np.int16) + rng.normal(0, 3, (height, width, 1)).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
