"""Imports: storing the images that ``annotator.formats.imports`` checked (files, decoded cache rows,
items, labels brought by class folders), in chunks, and decoding items that have no cache row yet.

The formats module yields candidates and rejections; this module only stores what it yields.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotator import paths
from annotator.formats import renditions
from annotator.formats.box_imports import iter_box_folder, iter_box_uploads
from annotator.formats.imports import Candidate, Limits, Rejected, iter_folder, iter_uploads
from annotator.kinds import ClassOrder, kind_of
from annotator.kinds.boxes import CheckedBox, clip_box
from annotator.models import Annotation, AnnotationClass, Item, Project
from annotator.selectors.classes import class_order
from annotator.services.answers import item_answers_store
from annotator.services.boxes import annotations_boxes_store, item_boxes_store
from annotator.services.errors import ServiceError
from annotator.services.training import cold_start_request, training_maybe_request
from ml import data as ml_data

logger = logging.getLogger(__name__)

IMPORT_CHUNK = 200


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    labeled: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    batch: int | None = None  # the import's number in the project, once it stored an item

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "labeled": self.labeled,
            "rejected": self.rejected,
        }


def import_limits() -> Limits:
    """The limits on imported images and zips, from the settings."""
    return Limits(
        max_pixels=settings.MAX_IMAGE_PIXELS,
        max_zip_members=settings.MAX_ZIP_MEMBERS,
        max_zip_ratio=settings.MAX_ZIP_RATIO,
    )


def import_folder_checked(folder: str) -> Path:
    """``folder`` resolved, when it is an existing folder inside ``IMPORT_ROOTS``."""
    roots = paths.import_roots()
    path = Path(folder or "")
    if not folder or not path.is_absolute() or not paths.is_under(path, roots):
        allowed = ", ".join(str(root) for root in roots) or "none (set IMPORT_ROOTS)"
        raise ServiceError(f"The folder must be an absolute path inside IMPORT_ROOTS; allowed: {allowed}.")
    if not path.is_dir():
        raise ServiceError(f"{path} is not a folder.")
    return path.resolve()


def upload_candidates(
    *, project: Project, files: Iterable[tuple[str, BinaryIO]], limits: Limits
) -> Iterator[Candidate | Rejected]:
    """The images of uploads (and zips) as the project's kind reads them: with the class of the
    folder they sit in, or on box projects with the boxes of the annotation files among them."""
    classes = set(project.classes.values_list("name", flat=True))
    if kind_of(project).boxes:
        return iter_box_uploads(files, limits=limits, classes=classes)
    return iter_uploads(files, limits=limits, labels=classes)


def folder_candidates(*, project: Project, root: Path, limits: Limits) -> Iterator[Candidate | Rejected]:
    """The images of a server folder as the project's kind reads them (``upload_candidates``)."""
    classes = set(project.classes.values_list("name", flat=True))
    if kind_of(project).boxes:
        return iter_box_folder(root, limits=limits, classes=classes)
    return iter_folder(root, limits=limits, labels=classes)


def items_import_uploads(
    *, project: Project, files: Iterable[tuple[str, BinaryIO]], user: User | None
) -> ImportSummary:
    """Import uploaded images and zip archives (on box projects, with their annotation files)."""
    candidates = upload_candidates(project=project, files=files, limits=import_limits())
    return items_import(project=project, candidates=candidates, user=user)


def items_import_folder(*, project: Project, root: Path, user: User | None) -> ImportSummary:
    """Import a server folder; subfolders named after classes bring their labels (on box projects,
    its annotation files bring boxes)."""
    if not root.is_dir():
        raise ServiceError(f"{root} is not a folder.")
    candidates = folder_candidates(project=project, root=root, limits=import_limits())
    return items_import(project=project, candidates=candidates, user=user)


def items_import(*, project: Project, candidates: Iterable[Candidate | Rejected], user: User | None) -> ImportSummary:
    """Store checked images in chunks: files, decoded cache rows, items, and imported labels."""
    summary = ImportSummary()
    chunk: list[Candidate] = []
    for candidate in candidates:
        if isinstance(candidate, Rejected):
            summary.rejected.append({"name": candidate.name, "error": candidate.error})
            continue
        chunk.append(candidate)
        if len(chunk) >= IMPORT_CHUNK:
            _import_chunk(project, chunk, user, summary)
            chunk = []
    if chunk:
        _import_chunk(project, chunk, user, summary)
    if summary.imported:
        cold_start_request(project_id=project.id)
    return summary


def _import_chunk(project: Project, chunk: list[Candidate], user: User | None, summary: ImportSummary) -> None:
    existing = set(
        Item.objects.filter(project=project, sha256__in=[c.sha256 for c in chunk]).values_list("sha256", flat=True)
    )
    fresh: list[Candidate] = []
    arrays: list[np.ndarray] = []
    for candidate in chunk:
        if candidate.sha256 in existing:
            summary.duplicates += 1
            continue
        try:
            arrays.append(ml_data.decode_image(io.BytesIO(candidate.data), project.input_size))
        except Exception as exc:
            summary.rejected.append({"name": candidate.name, "error": f"image could not be decoded: {exc}"})
            continue
        existing.add(candidate.sha256)
        fresh.append(candidate)
    if not fresh:
        return
    if summary.batch is None:
        summary.batch = _next_batch(project.id)
    rows = ml_data.cache_append(paths.cache_path(project.id, project.input_size), np.stack(arrays))
    classes = {c.name: c.id for c in project.classes.all()}
    order = class_order(project_id=project.id)
    saved: list[str] = []
    items: list[Item] = []
    given: list[int | None] = []  # (len(items),) the class each item is imported with
    boxed: list[list[CheckedBox] | None] = []  # (len(items),) box projects: the boxes it is imported with
    try:
        for candidate, row in zip(fresh, rows, strict=False):
            item = Item(
                project=project,
                original_name=candidate.name[:500],
                width=candidate.width,
                height=candidate.height,
                sha256=candidate.sha256,
                cache_row=row,
                batch=summary.batch,
                priority=random.random(),
            )
            given.append(classes.get(candidate.label) if candidate.label else None)
            boxed.append(_checked(candidate, classes))
            if given[-1] is not None or boxed[-1] is not None:
                item.status, item.labeled_at = Item.Status.LABELED, timezone.now()
            # The stored suffix follows the detected format, never the uploaded name ("x.html").
            item.file.save(f"image{candidate.suffix}", ContentFile(candidate.data), save=False)
            saved.append(cast(str, item.file.name))  # named by the save just above
            item.display = _renditions_made(item, candidate, saved)
            items.append(item)
        with transaction.atomic():
            Item.objects.bulk_create(items)
            labeled = [(item, class_id) for item, class_id in zip(items, given, strict=True) if class_id is not None]
            annotations = Annotation.objects.bulk_create(
                Annotation(item=item, user=user, source=Annotation.Source.IMPORT) for item, _ in labeled
            )
            AnnotationClass.objects.bulk_create(
                AnnotationClass(annotation=annotation, label_class_id=class_id)
                for annotation, (_, class_id) in zip(annotations, labeled, strict=True)
            )
            item_answers_store(answers={item.id: (class_id,) for item, class_id in labeled})
            boxes = [(item, found) for item, found in zip(items, boxed, strict=True) if found is not None]
            _store_imported_boxes(boxes, user, order)
    except IntegrityError:
        # A concurrent import stored some of the same images; fall back to one by one.
        _delete_files(saved)
        for candidate in fresh:
            summary_one = ImportSummary(batch=summary.batch)
            _import_chunk_one(project, candidate, user, summary_one)
            summary.imported += summary_one.imported
            summary.duplicates += summary_one.duplicates
            summary.labeled += summary_one.labeled
        return
    except Exception:
        _delete_files(saved)
        raise
    summary.imported += len(items)
    summary.labeled += len(labeled) + len(boxes)
    if summary.labeled:
        transaction.on_commit(lambda: training_maybe_request(project_id=project.id), robust=True)


def _checked(candidate: Candidate, classes: dict[str, int]) -> list[CheckedBox] | None:
    """The candidate's boxes (already checked against the image and the classes) as stored ones."""
    if candidate.boxes is None:
        return None
    return [
        CheckedBox(classes[b.label], round(b.x, 2), round(b.y, 2), round(b.w, 2), round(b.h, 2), "imported")
        for b in (clip_box(box, width=candidate.width, height=candidate.height) for box in candidate.boxes)
    ]


def _store_imported_boxes(boxes: list[tuple[Item, list[CheckedBox]]], user: User | None, order: ClassOrder) -> None:
    """Each imported item's boxes as an ``import`` annotation and as the item's answer (the classes present)."""
    if not boxes:
        return
    annotations = Annotation.objects.bulk_create(
        Annotation(item=item, user=user, source=Annotation.Source.IMPORT) for item, _ in boxes
    )
    AnnotationClass.objects.bulk_create(
        AnnotationClass(annotation=annotation, label_class_id=class_id)
        for annotation, (_, found) in zip(annotations, boxes, strict=True)
        for class_id in order.answer([b.class_id for b in found])
    )
    annotations_boxes_store(boxes={a.id: found for a, (_, found) in zip(annotations, boxes, strict=True)})
    item_boxes_store(boxes={item.id: found for item, found in boxes})
    item_answers_store(answers={item.id: order.answer([b.class_id for b in found]) for item, found in boxes})


def _next_batch(project_id: int) -> int:
    """A number for an import that stores items: the project's imports counted in one atomic update."""
    Project.objects.filter(id=project_id).update(import_batches=F("import_batches") + 1)
    return Project.objects.values_list("import_batches", flat=True).get(id=project_id)


def _import_chunk_one(project: Project, candidate: Candidate, user: User | None, summary: ImportSummary) -> None:
    try:
        with transaction.atomic():
            _import_chunk(project, [candidate], user, summary)
    except IntegrityError:
        summary.duplicates += 1


def _renditions_made(item: Item, candidate: Candidate, saved: list[str]) -> str:
    """Store the display rendition (if the image needs one) and the thumbnail of a new item, adding
    their names to ``saved``; what browsers are sent (``Item.display``). An image Pillow decoded for
    the cache but cannot re-encode keeps its original for display."""
    name = cast(str, item.file.name)
    try:
        display, written = renditions.display_store(
            item.file.storage, name, candidate.data, max_side=int(settings.DISPLAY_MAX_SIDE)
        )
    except (OSError, ValueError) as exc:
        logger.warning("no display rendition of %s: %s", candidate.name, exc)
        return ""
    saved.extend(written)
    return display


def item_display_ensure(item: Item) -> str:
    """The name of the item's display rendition, "" when its file is shown as it is: made on import,
    or now (once) for an item imported before renditions were made there."""
    if item.display is None:
        storage = item.file.storage
        item.display = renditions.display_ensure(
            storage, cast(str, item.file.name), max_side=int(settings.DISPLAY_MAX_SIDE)
        )
        Item.objects.filter(id=item.id).update(display=item.display)
    return item.display


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s", name)


def items_ensure_cached(*, project: Project) -> int:
    """Decode items that have no cache row yet (e.g. after the input size changed). Returns how many."""
    missing = list(Item.objects.filter(project=project, cache_row__isnull=True).only("id", "file"))
    for start in range(0, len(missing), IMPORT_CHUNK):
        part = missing[start : start + IMPORT_CHUNK]
        arrays = []
        for item in part:
            with item.file.open("rb") as fh:
                # A stored file reads like a binary file, which Django's types do not say.
                arrays.append(ml_data.decode_image(cast(BinaryIO, fh), project.input_size))
        rows = ml_data.cache_append(paths.cache_path(project.id, project.input_size), np.stack(arrays))
        for item, row in zip(part, rows, strict=False):
            item.cache_row = row
        Item.objects.bulk_update(part, ["cache_row"])
    return len(missing)
