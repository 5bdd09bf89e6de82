"""Writes: every change to projects, items, annotations and model versions goes through here.

Services are atomic, take keyword-only arguments, and enqueue Celery work with
``transaction.on_commit`` so that a worker never sees uncommitted rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import random
import shutil
import string
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, DateTimeField, Exists, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotator import exports, imports, paths, selectors
from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    Annotation,
    Item,
    Job,
    LabelClass,
    Membership,
    ModelFamily,
    ModelVersion,
    Project,
    QueryStrategy,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
    label_class_name_clean,
    label_class_name_key,
)
from annotator.templatetags.figures import accuracy_text
from annotator.zipstream import ZipWriter
from ml import data as ml_data

logger = logging.getLogger(__name__)

RESERVED_KEYS = {"s", "z"}
DEFAULT_HOTKEYS = [str(d) for d in range(1, 10)] + [c for c in string.ascii_lowercase if c not in RESERVED_KEYS]
IMPORT_CHUNK = 200


class ServiceError(Exception):
    """A request that cannot be carried out; the message is shown to the user."""


class ConflictError(ServiceError):
    """A request that conflicts with what is stored or held by someone else (the API answers 409)."""


# Projects -----------------------------------------------------------------------------------------


def _class_name(value: Any) -> str:
    """A class name checked by the one rule (``models.label_class_name_clean``), as a service error."""
    try:
        return label_class_name_clean(value)
    except DjangoValidationError as exc:
        raise ServiceError(exc.messages[0]) from exc


def _hotkey(value: Any, name: str) -> str:
    hotkey = str(value).lower()
    if len(hotkey) != 1 or not hotkey.isalnum() or hotkey in RESERVED_KEYS:
        raise ServiceError(f"Hotkey {hotkey!r} for {name!r} must be one letter or digit other than s and z.")
    return hotkey


def _normalise_labels(labels: Sequence[str | dict[str, Any]]) -> list[tuple[str, str]]:
    if not labels:
        raise ServiceError("A project needs at least one class label.")
    names: list[str] = []
    keys: set[str] = set()
    wanted: list[str | None] = []
    for entry in labels:
        if isinstance(entry, dict):
            name, hotkey = _class_name(entry.get("name")), entry.get("hotkey")
        else:
            name, hotkey = _class_name(entry), None
        if label_class_name_key(name) in keys:
            raise ServiceError(f"Class label {name!r} is given twice (class names are unique whatever their case).")
        if hotkey is not None:
            hotkey = _hotkey(hotkey, name)
            if hotkey in wanted:
                raise ServiceError(f"Hotkey {hotkey!r} is given twice.")
        names.append(name)
        keys.add(label_class_name_key(name))
        wanted.append(hotkey)
    free = iter(k for k in DEFAULT_HOTKEYS if k not in wanted)
    return [(name, key if key is not None else next(free, "")) for name, key in zip(names, wanted, strict=False)]


@transaction.atomic
def project_create(
    *,
    name: str,
    labels: Sequence[str | dict[str, Any]],
    user: AbstractBaseUser | None,
    retrain_every: int = 10,
    strategy: str = DEFAULT_STRATEGY,
    input_size: int = 32,
    model_family: str = ModelFamily.CNN,
    backbone_path: str = "",
    allow_flips: bool = False,
    multi_label: bool = False,
    labels_per_item: int = 1,
    show_prelabels: bool = True,
    lease_seconds: int | None = None,
    prelabel_threshold: float = 0.5,
) -> Project:
    """Create a project with its ordered classes; the creator becomes its manager."""
    name = name.strip()
    if not name:
        raise ServiceError("A project needs a name.")
    if strategy not in QueryStrategy.values:
        raise ServiceError(f"Unknown strategy {strategy!r}; valid: {', '.join(QueryStrategy.values)}.")
    if retrain_every not in RETRAIN_EVERY:
        raise ServiceError(RETRAIN_EVERY.message)
    if input_size not in INPUT_SIZE:
        raise ServiceError(INPUT_SIZE.message)
    if model_family not in ModelFamily.values:
        raise ServiceError(f"Unknown model family {model_family!r}; valid: {', '.join(ModelFamily.values)}.")
    backbone_path = backbone_path.strip()
    if model_family == ModelFamily.TORCHSCRIPT:
        if not backbone_path:
            raise ServiceError("The torchscript family needs backbone_path, a TorchScript file on the server.")
        if not paths.is_allowed_backbone(backbone_path):
            raise ServiceError("backbone_path must be an existing .pt file under DATA_DIR/backbones or IMPORT_ROOTS.")
        backbone_path = str(paths.backbone_file(backbone_path))
    elif backbone_path:
        raise ServiceError("backbone_path is only used by the torchscript family.")
    if labels_per_item not in LABELS_PER_ITEM:
        raise ServiceError(LABELS_PER_ITEM.message)
    lease_seconds = lease_seconds or settings.LEASE_SECONDS
    if lease_seconds not in LEASE_SECONDS:
        raise ServiceError(LEASE_SECONDS.message)
    _check_prelabel_threshold(prelabel_threshold)
    pairs = _normalise_labels(labels)
    if multi_label and len(pairs) < 2:
        raise ServiceError("A multi-label project needs at least two classes.")
    project = Project.objects.create(
        name=name,
        created_by=user,
        retrain_every=retrain_every,
        strategy=strategy,
        input_size=input_size,
        model_family=model_family,
        backbone_path=backbone_path,
        allow_flips=allow_flips,
        multi_label=multi_label,
        labels_per_item=labels_per_item,
        show_prelabels=show_prelabels,
        lease_seconds=lease_seconds,
        prelabel_threshold=prelabel_threshold,
    )
    LabelClass.objects.bulk_create(
        LabelClass(project=project, name=label, hotkey=key, index=i) for i, (label, key) in enumerate(pairs)
    )
    if user is not None:
        Membership.objects.create(project=project, user=user, role=Membership.Role.MANAGER)
    return project


def _check_prelabel_threshold(value: float) -> None:
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ServiceError("prelabel_threshold must be between 0 and 1.")


def membership_add(*, project: Project, user: AbstractBaseUser, role: str = Membership.Role.ANNOTATOR) -> Membership:
    """Make ``user`` a member of ``project`` with ``role`` (or change their role)."""
    if role not in Membership.Role.values:
        raise ServiceError(f"Unknown role {role!r}; valid roles: {', '.join(Membership.Role.values)}.")
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if current is not None and current.role == Membership.Role.MANAGER and role != Membership.Role.MANAGER:
            _keep_a_manager(project=project, leaving=user)
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def membership_remove(*, project: Project, user: AbstractBaseUser) -> bool:
    """Remove ``user`` from ``project`` (their labels stay); whether they were a member. Their leases are
    given back. The last manager cannot leave."""
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if current is None:
            return False
        if current.role == Membership.Role.MANAGER:
            _keep_a_manager(project=project, leaving=user)
        current.delete()
        Item.objects.filter(project=project, lease_user=user).update(lease_user=None, lease_until=None)
    return True


def _keep_a_manager(*, project: Project, leaving: AbstractBaseUser) -> None:
    others = Membership.objects.filter(project=project, role=Membership.Role.MANAGER).exclude(user=leaving)
    if not others.exists():
        raise ServiceError("A project needs at least one manager: make someone else a manager first.")


# Import -------------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    labeled: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "labeled": self.labeled,
            "rejected": self.rejected,
        }


def import_limits() -> imports.Limits:
    return imports.Limits(
        max_pixels=settings.MAX_IMAGE_PIXELS,
        max_zip_members=settings.MAX_ZIP_MEMBERS,
        max_zip_ratio=settings.MAX_ZIP_RATIO,
    )


def items_import_uploads(
    *, project: Project, files: Iterable[tuple[str, BinaryIO]], user: AbstractBaseUser | None
) -> ImportSummary:
    """Import uploaded images and zip archives."""
    labels = set(project.classes.values_list("name", flat=True))
    return items_import(
        project=project, candidates=imports.iter_uploads(files, limits=import_limits(), labels=labels), user=user
    )


def items_import_folder(*, project: Project, root: Path, user: AbstractBaseUser | None) -> ImportSummary:
    """Import a server folder; subfolders named after classes bring their labels."""
    if not root.is_dir():
        raise ServiceError(f"{root} is not a folder.")
    labels = set(project.classes.values_list("name", flat=True))
    return items_import(
        project=project, candidates=imports.iter_folder(root, limits=import_limits(), labels=labels), user=user
    )


def items_import(
    *, project: Project, candidates: Iterable[imports.Candidate | imports.Rejected], user: AbstractBaseUser | None
) -> ImportSummary:
    """Store checked images in chunks: files, decoded cache rows, items, and imported labels."""
    summary = ImportSummary()
    chunk: list[imports.Candidate] = []
    for candidate in candidates:
        if isinstance(candidate, imports.Rejected):
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


def _import_chunk(
    project: Project, chunk: list[imports.Candidate], user: AbstractBaseUser | None, summary: ImportSummary
) -> None:
    existing = set(
        Item.objects.filter(project=project, sha256__in=[c.sha256 for c in chunk]).values_list("sha256", flat=True)
    )
    fresh: list[imports.Candidate] = []
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
    rows = ml_data.cache_append(paths.cache_path(project.id, project.input_size), np.stack(arrays))
    classes = {c.name: c for c in project.classes.all()}
    saved: list[str] = []
    items: list[Item] = []
    try:
        for candidate, row in zip(fresh, rows, strict=False):
            item = Item(
                project=project,
                original_name=candidate.name[:500],
                width=candidate.width,
                height=candidate.height,
                sha256=candidate.sha256,
                cache_row=row,
                priority=random.random(),
            )
            label = classes.get(candidate.label) if candidate.label else None
            if label is not None:
                item.status, item.label, item.labeled_at = Item.Status.LABELED, label, timezone.now()
            # The stored suffix follows the detected format, never the uploaded name ("x.html").
            item.file.save(f"image{candidate.suffix}", ContentFile(candidate.data), save=False)
            saved.append(item.file.name)
            items.append(item)
        with transaction.atomic():
            Item.objects.bulk_create(items)
            Annotation.objects.bulk_create(
                Annotation(item=item, user=user, label=item.label, source=Annotation.Source.IMPORT)
                for item in items
                if item.label is not None
            )
    except IntegrityError:
        # A concurrent import stored some of the same images; fall back to one by one.
        _delete_files(saved)
        for candidate in fresh:
            summary_one = ImportSummary()
            _import_chunk_one(project, candidate, user, summary_one)
            summary.imported += summary_one.imported
            summary.duplicates += summary_one.duplicates
            summary.labeled += summary_one.labeled
        return
    except Exception:
        _delete_files(saved)
        raise
    summary.imported += len(items)
    summary.labeled += sum(1 for item in items if item.label is not None)
    if summary.labeled:
        transaction.on_commit(lambda: training_maybe_request(project_id=project.id), robust=True)


def _import_chunk_one(
    project: Project, candidate: imports.Candidate, user: AbstractBaseUser | None, summary: ImportSummary
) -> None:
    try:
        with transaction.atomic():
            _import_chunk(project, [candidate], user, summary)
    except IntegrityError:
        summary.duplicates += 1


def _delete_files(names: Iterable[str]) -> None:
    from django.core.files.storage import default_storage

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
                arrays.append(ml_data.decode_image(fh, project.input_size))
        rows = ml_data.cache_append(paths.cache_path(project.id, project.input_size), np.stack(arrays))
        for item, row in zip(part, rows, strict=False):
            item.cache_row = row
        Item.objects.bulk_update(part, ["cache_row"])
    return len(missing)


# Labeling -----------------------------------------------------------------------------------------


def _lease_free(now: Any) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lte=now)


def item_lease_next(*, project: Project, user: AbstractBaseUser, exclude: Sequence[int] = ()) -> Item | None:
    """Lease the most useful free item to ``user`` for ``project.lease_seconds``; ``None`` when the
    queue is empty. The item comes with ``label_name``, ``pred_label_name`` and
    ``pred_version_number`` set, ready to serve.

    An item already leased to ``user`` (and not in ``exclude``, the items the caller holds) comes
    back first, so a reloaded page resumes where it was. With ``labels_per_item`` > 1 an item stays
    in the queue until that many people labeled it, and is never served to one of them again.
    Each step is an index lookup: the caller's leases by ``lease_user``, the queue by ``item_queue``.
    """
    now = timezone.now()
    until = now + timedelta(seconds=project.lease_seconds or settings.LEASE_SECONDS)
    exclude = [int(i) for i in exclude]
    if connection.vendor == "postgresql":
        for status in (Item.Status.UNLABELED, Item.Status.SKIPPED):
            item = _lease_postgresql(project=project, user=user, status=status, now=now, until=until, exclude=exclude)
            if item is not None:
                return item
        return None
    mine = (
        Item.objects.filter(project=project, status=Item.Status.UNLABELED, lease_user=user, lease_until__gt=now)
        .exclude(id__in=exclude)
        .order_by("-priority", "id")
        .values_list("id", flat=True)
        .first()
    )
    if mine is not None:
        Item.objects.filter(id=mine).update(lease_until=until)
        return selectors.item_with_names(mine)
    for status in (Item.Status.UNLABELED, Item.Status.SKIPPED):
        queue = (
            Item.objects.filter(project=project, status=status)
            .filter(_lease_free(now))
            .exclude(id__in=exclude)
            .order_by("-priority", "id")
        )
        if project.labels_per_item > 1:
            mine_done = Annotation.objects.filter(item=OuterRef("pk"), user=user, active=True)
            queue = queue.filter(~Exists(mine_done))
        item_id = _lease_first_conditional(queue, user=user, now=now, until=until)
        if item_id is not None:
            return selectors.item_with_names(item_id)
    return None


_LEASE_SQL = """
WITH mine AS (
    SELECT id FROM {item}
    WHERE project_id = %(project)s AND status = 'unlabeled' AND lease_user_id = %(user)s AND lease_until > %(now)s
      AND NOT (id = ANY(%(exclude)s::bigint[]))
    ORDER BY priority DESC, id LIMIT 1
), free AS (
    SELECT id FROM {item}
    WHERE project_id = %(project)s AND status = %(status)s AND (lease_until IS NULL OR lease_until <= %(now)s)
      AND NOT (id = ANY(%(exclude)s::bigint[])) AND NOT EXISTS (SELECT 1 FROM mine) {not_done}
    ORDER BY priority DESC, id LIMIT 1
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE {item} SET lease_user_id = %(user)s, lease_until = %(until)s
    WHERE id IN (SELECT id FROM mine UNION ALL SELECT id FROM free)
    RETURNING *
)
SELECT leased.*, label.name AS label_name, pred.name AS pred_label_name, version.number AS pred_version_number
FROM leased
LEFT JOIN {label} label ON label.id = leased.label_id
LEFT JOIN {label} pred ON pred.id = leased.pred_label_id
LEFT JOIN {version} version ON version.id = leased.pred_version_id
"""

_NOT_DONE_SQL = (
    "AND NOT EXISTS (SELECT 1 FROM {annotation} a WHERE a.item_id = {item}.id AND a.user_id = %(user)s AND a.active)"
)


def _lease_postgresql(
    *, project: Project, user: AbstractBaseUser, status: str, now: Any, until: Any, exclude: list[int]
) -> Item | None:
    """One statement: extend the caller's own lease, or take the best free item, skipping rows that
    concurrent callers hold locked (``FOR UPDATE SKIP LOCKED``), and return it with its names."""
    tables = {
        "item": Item._meta.db_table,
        "label": LabelClass._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "annotation": Annotation._meta.db_table,
    }
    not_done = _NOT_DONE_SQL.format(**tables) if project.labels_per_item > 1 else ""
    sql = _LEASE_SQL.format(not_done=not_done, **tables)
    params = {
        "project": project.id,
        "user": user.pk,
        "status": status,
        "now": now,
        "until": until,
        "exclude": exclude,
    }
    rows = list(Item.objects.raw(sql, params))
    return rows[0] if rows else None


def _lease_first_conditional(queue: Any, *, user: AbstractBaseUser, now: Any, until: Any) -> int | None:
    """Where there is no ``SKIP LOCKED`` (SQLite): an atomic conditional update; retry if another
    caller won the race."""
    for _ in range(20):
        candidate = queue.values_list("id", "status").first()
        if candidate is None:
            return None
        won = (
            Item.objects.filter(id=candidate[0], status=candidate[1])
            .filter(_lease_free(now))
            .update(lease_user=user, lease_until=until)
        )
        if won:
            return candidate[0]
    return None


def item_skip(*, item: Item, user: AbstractBaseUser) -> None:
    """Skip an item: it leaves the main queue and the caller's lease is released. An item leased to
    someone else is theirs until the lease ends: ``ConflictError``, and nothing changes."""
    mine_or_free = Q(lease_user=user) | _lease_free(timezone.now())
    with transaction.atomic():
        skipped = (
            Item.objects.filter(id=item.id, status=Item.Status.UNLABELED)
            .filter(mine_or_free)
            .update(status=Item.Status.SKIPPED)
        )
        if not skipped and Item.objects.filter(id=item.id).exclude(mine_or_free).exists():
            raise ConflictError(
                f"Item {item.id} is leased to another annotator; only they can skip it until the lease ends."
            )
        Item.objects.filter(id=item.id, lease_user=user).update(lease_user=None, lease_until=None)


def item_release(*, item: Item, user: AbstractBaseUser) -> None:
    Item.objects.filter(id=item.id, lease_user=user).update(lease_user=None, lease_until=None)


def item_leases_release(
    *, item_ids: Sequence[int] = (), project_ids: Sequence[int] = (), expired_only: bool = False
) -> int:
    """Free the leases on ``item_ids`` and on every item of ``project_ids`` (only the expired ones with
    ``expired_only``), so that /next serves those items again; returns how many were freed."""
    items = Item.objects.filter(Q(id__in=list(item_ids)) | Q(project_id__in=list(project_ids)))
    items = items.filter(Q(lease_user__isnull=False) | Q(lease_until__isnull=False))
    if expired_only:
        items = items.filter(lease_until__lte=timezone.now())
    return items.update(lease_user=None, lease_until=None)


def _item_consensus(*, item_id: int, labels_per_item: int, now: Any, multi_label: bool = False) -> dict[str, Any]:
    """The item's fields that follow from its active annotations: consensus label, how many people
    labeled it, their agreement, and whether it is done (``labels_per_item`` people or an import).

    Single-label: the majority class; agreement is the share of votes it got. Multi-label: each
    class chosen by at least half of the annotators; agreement is the mean, over the classes anyone
    chose, of the share of annotators who agree with the consensus on that class.
    """
    rows = list(
        Annotation.objects.filter(item_id=item_id, active=True)
        .order_by("id")
        .values_list("label_id", "labels", "source")
    )
    human = [row for row in rows if row[2] == Annotation.Source.HUMAN]
    if not rows:
        return {
            "status": Item.Status.UNLABELED,
            "label": None,
            "labels": None,
            "labeled_at": None,
            "n_annotations": 0,
            "agreement": None,
        }
    done = len(human) >= labels_per_item or len(human) < len(rows)
    fields: dict[str, Any] = {
        "status": Item.Status.LABELED if done else Item.Status.UNLABELED,
        "labeled_at": Coalesce("labeled_at", now) if done else None,
        "n_annotations": len(human),
    }
    if multi_label:
        sets = [set(names or []) for _, names, _ in rows]
        chosen = Counter(name for names in sets for name in names)
        consensus = sorted(name for name, n in chosen.items() if 2 * n >= len(sets))
        shares = [max(n, len(sets) - n) / len(sets) for n in chosen.values()]
        reviewed_sets = [names for _, names, source in rows if source == Annotation.Source.REVIEW and names is not None]
        if reviewed_sets:  # a manager's review decides over the votes
            consensus = sorted(reviewed_sets[-1])
        fields |= {"labels": consensus, "agreement": sum(shares) / len(shares) if shares else 1.0}
        return fields
    votes = Counter(label for label, _, _ in rows if label is not None)
    label_id, top = votes.most_common(1)[0]
    reviewed = [label for label, _, source in rows if source == Annotation.Source.REVIEW and label is not None]
    if reviewed:  # a manager's review decides over the votes
        label_id = reviewed[-1]
    return fields | {"label_id": label_id, "agreement": top / sum(votes.values())}


def _prelabel_outcome(*, item: Item, project: Project, label_class: LabelClass | None, names: list[str]) -> str:
    """Whether a label accepted the model's pre-label, corrected it, or was given without one (none
    shown, or one too unsure to be suggested: below the project's ``prelabel_threshold``)."""
    if item.pred_label_id is None or not project.show_prelabels:
        return Annotation.Prelabel.NONE
    if item.pred_confidence is not None and item.pred_confidence < project.prelabel_threshold:
        return Annotation.Prelabel.NONE
    if project.multi_label:
        classes = project_class_names(project_id=project.id)
        predicted = sorted(n for n, p in zip(classes, item.pred_probs or [], strict=False) if p >= 0.5)
        same = predicted == sorted(names)
    else:
        same = label_class is not None and item.pred_label_id == label_class.id
    return Annotation.Prelabel.ACCEPTED if same else Annotation.Prelabel.CORRECTED


def project_class_names(*, project_id: int) -> list[str]:
    return selectors.class_order(project_id=project_id).names


def _validate_labels(
    *, project: Project, label: str | None, labels: Sequence[str] | None
) -> tuple[LabelClass | None, list[str]]:
    """The class of a single-label answer, or the class names of a multi-label one, checked."""
    if project.multi_label:
        if labels is None:
            raise ServiceError("This project is multi-label: send 'labels', a list of class names (may be empty).")
        valid = project_class_names(project_id=project.id)
        unknown = [name for name in labels if name not in valid]
        if unknown:
            raise ServiceError(f"Unknown labels {unknown}; valid labels: {', '.join(valid)}.")
        order = {name: i for i, name in enumerate(valid)}
        return None, sorted(set(labels), key=order.__getitem__)
    if label is None:
        raise ServiceError("Send 'label', the class name.")
    label_class = LabelClass.objects.filter(project_id=project.id, name=label).first()
    if label_class is None:
        valid_names = ", ".join(project_class_names(project_id=project.id))
        raise ServiceError(f"Unknown label {label!r}; valid labels: {valid_names}.")
    return label_class, [label]


def annotation_create(
    *,
    item: Item,
    user: AbstractBaseUser,
    label: str | None = None,
    labels: Sequence[str] | None = None,
    client_token: str | None = None,
    duration_ms: int | None = None,
) -> tuple[Annotation, bool]:
    """Store ``user``'s label for ``item``; returns ``(annotation, created)``.

    ``label`` names the class; on multi-label projects ``labels`` lists the classes instead (an
    empty list says that none applies). Idempotent on ``client_token``: a repeated post returns
    the stored annotation. A new label from the same person replaces their earlier one (which
    stays as inactive history). A label posted after the lease expired is accepted all the same.
    The item is labeled once ``labels_per_item`` people labeled it; until then it goes back to
    the queue.
    """
    project = item.project
    label_class, names = _validate_labels(project=project, label=label, labels=labels)
    prelabel = _prelabel_outcome(item=item, project=project, label_class=label_class, names=names)
    now = timezone.now()
    try:
        with transaction.atomic():
            if project.labels_per_item > 1:
                # Several people label this item: serialise their writes on the item's row.
                list(Item.objects.select_for_update().filter(id=item.id).values_list("id"))
            Annotation.objects.filter(item=item, user=user, active=True).update(active=False)
            annotation = Annotation.objects.create(
                item=item,
                user=user,
                label=label_class,
                labels=names if project.multi_label else None,
                prelabel=prelabel,
                client_token=client_token or None,
                duration_ms=duration_ms,
            )
            if project.labels_per_item > 1 or project.multi_label:
                fields = _item_consensus(
                    item_id=item.id, labels_per_item=project.labels_per_item, now=now, multi_label=project.multi_label
                )
            else:
                human = Annotation.objects.filter(item=OuterRef("pk"), active=True, source=Annotation.Source.HUMAN)
                fields = {
                    "status": Item.Status.LABELED,
                    "label": label_class,
                    "labeled_at": Coalesce("labeled_at", now),
                    "n_annotations": Subquery(human.values("item").annotate(n=Count("id")).values("n")),
                    "agreement": None,
                }
            Item.objects.filter(id=item.id).update(lease_user=None, lease_until=None, **fields)
            # While a retrain is already requested, new labels simply join it: no need to count, unless
            # the request has waited long enough to have been lost (broker down): then send it again.
            project_id = item.project_id
            # Robust hooks: the label is committed by then, so a failure to request a retrain (the
            # next label or the workers' reconciliation asks again) must not turn it into an error.
            if fields["status"] == Item.Status.LABELED and not project.training_requested:
                transaction.on_commit(lambda: training_maybe_request(project_id=project_id), robust=True)
            elif _request_overdue(project, now):
                transaction.on_commit(lambda: training_resend(project_id=project_id), robust=True)
    except IntegrityError:
        if client_token:
            existing = Annotation.objects.filter(user=user, client_token=client_token).first()
            if existing is not None and existing.item_id != item.id:
                raise ConflictError(
                    f"client_token {client_token!r} was already used for item {existing.item_id}; "
                    "send a new token with each label (the same one only to retry the same post)."
                ) from None
            if existing is not None:
                return existing, False
        raise
    return annotation, True


#: How long the answer to an undo's ``client_token`` is remembered: far longer than a client's retries.
UNDO_TOKEN_SECONDS = 24 * 3600


def annotation_undo(*, project: Project, user: AbstractBaseUser, client_token: str | None = None) -> Item | None:
    """Undo ``user``'s latest active label in ``project``: the annotation is deactivated (kept as
    history), the item goes back to the queue, leased to ``user`` so that it comes back to them
    first. Returns the item, or ``None`` when there is nothing to undo.

    Idempotent on ``client_token``: the same token again gets the first answer (the same item, or
    ``None``) and undoes nothing more, so a retry after a lost response cannot undo a second label.
    The answer is remembered in the cache, which every process shares, while the undo's lock is held.
    """
    from django.core.cache import cache

    key = None
    if client_token:
        digest = hashlib.sha256(client_token.encode()).hexdigest()
        key = f"annotator:undo:{project.id}:{user.pk}:{digest}"
    now = timezone.now()
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_for_update()
            .filter(item__project=project, user=user, active=True, source=Annotation.Source.HUMAN)
            .order_by("-id")
            .first()
        )
        # Read after the lock: a concurrent undo with the same token has stored its answer by then.
        answered = cache.get(key) if key else None
        if answered is not None:
            return Item.objects.select_related("project").filter(id=answered).first() if answered else None
        if annotation is None:
            if key:
                cache.set(key, 0, UNDO_TOKEN_SECONDS)
            return None
        if key:
            # Before the commit: should the cache fail, nothing is undone and a retry is safe.
            cache.set(key, annotation.item_id, UNDO_TOKEN_SECONDS)
        list(Item.objects.select_for_update().filter(id=annotation.item_id).values_list("id"))
        Annotation.objects.filter(id=annotation.id).update(active=False)
        fields = _item_consensus(
            item_id=annotation.item_id,
            labels_per_item=project.labels_per_item,
            now=now,
            multi_label=project.multi_label,
        )
        if project.labels_per_item == 1 and fields["n_annotations"] == 0:
            fields["agreement"] = None
        until = now + timedelta(seconds=project.lease_seconds or settings.LEASE_SECONDS)
        Item.objects.filter(id=annotation.item_id).update(lease_user=user, lease_until=until, **fields)
    return Item.objects.select_related("project").get(id=annotation.item_id)


@transaction.atomic
def project_settings_update(
    *,
    project: Project,
    name: str | None = None,
    show_prelabels: bool | None = None,
    labels_per_item: int | None = None,
    lease_seconds: int | None = None,
    retrain_every: int | None = None,
    strategy: str | None = None,
    prelabel_threshold: float | None = None,
) -> Project:
    """Change how a project is labeled: its name, pre-label visibility and the confidence below which
    a pre-label is shown as unsure, overlap, lease time, retraining. Settings given as ``None`` stay
    as they are."""
    if name is not None:
        name = name.strip()
        if not name:
            raise ServiceError("A project needs a name.")
    if strategy is not None and strategy not in QueryStrategy.values:
        raise ServiceError(f"Unknown strategy {strategy!r}; valid: {', '.join(QueryStrategy.values)}.")
    if labels_per_item is not None and labels_per_item not in LABELS_PER_ITEM:
        raise ServiceError(LABELS_PER_ITEM.message)
    if lease_seconds is not None and lease_seconds not in LEASE_SECONDS:
        raise ServiceError(LEASE_SECONDS.message)
    if retrain_every is not None and retrain_every not in RETRAIN_EVERY:
        raise ServiceError(RETRAIN_EVERY.message)
    if prelabel_threshold is not None:
        _check_prelabel_threshold(prelabel_threshold)
    given = {
        "name": name,
        "show_prelabels": show_prelabels,
        "labels_per_item": labels_per_item,
        "lease_seconds": lease_seconds,
        "retrain_every": retrain_every,
        "strategy": strategy,
        "prelabel_threshold": prelabel_threshold,
    }
    changed = [setting for setting, value in given.items() if value is not None]
    for setting in changed:
        setattr(project, setting, given[setting])
    if changed:
        project.save(update_fields=changed)
    return project


def label_class_check(
    *, project: Project, name: Any, hotkey: Any = None, label_class: LabelClass | None = None
) -> tuple[str, str]:
    """The name and hotkey that a new class of ``project`` gets, or that ``label_class`` changes to,
    checked against the project's other classes: the class name rule, names unique whatever their
    case, hotkeys one letter or digit used once. A new class without a hotkey gets a free one; a
    changed class without one has none. Raises ``ServiceError`` saying what is wrong."""
    others = LabelClass.objects.filter(project=project)
    if label_class is not None:
        others = others.exclude(id=label_class.id)
    existing = list(others.values_list("name", "hotkey"))
    name = _class_name(name)
    if label_class_name_key(name) in {label_class_name_key(n) for n, _ in existing}:
        raise ServiceError(f"The project already has a class {name!r} (class names are unique whatever their case).")
    used = {k for _, k in existing}
    if hotkey in (None, ""):
        free = (k for k in DEFAULT_HOTKEYS if k not in used)
        return name, "" if label_class is not None else next(free, "")
    hotkey = _hotkey(hotkey, name)
    if hotkey in used:
        raise ServiceError(f"Hotkey {hotkey!r} is already used by another class.")
    return name, hotkey


def label_class_add(*, project: Project, name: str, hotkey: str | None = None) -> LabelClass:
    """Append a class to a project. Classes are only ever appended (after the highest index, so a
    deleted class's gap is never filled), so the outputs of model versions trained before keep their
    meaning; the next retrain learns the new class."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project.id).first()
        name, hotkey = label_class_check(project=project, name=name, hotkey=hotkey)
        last = LabelClass.objects.filter(project=project).aggregate(last=Max("index"))["last"]
        index = 0 if last is None else last + 1
        return LabelClass.objects.create(project=project, name=name, hotkey=hotkey, index=index)


#: Where answers store class names rather than a class (multi-label projects).
_CLASS_NAME_LISTS = {Item: ["labels", "review_labels", "review_suggested_labels"], Annotation: ["labels"]}


def label_class_update(*, label_class: LabelClass, name: str | None = None, hotkey: str | None = None) -> LabelClass:
    """Rename a class or change its hotkey (``None``: unchanged; an empty hotkey: none). A rename
    rewrites every stored answer that names the class (items' labels, annotations with their history,
    reviews and the scan's suggestions) in the same transaction, so no answer is left naming a class
    that no longer exists. The class keeps its index, so models trained before keep their meaning."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=label_class.project_id).first()
        current = LabelClass.objects.select_related("project").get(id=label_class.id)
        new_name, new_key = label_class_check(
            project=current.project,
            name=current.name if name is None else name,
            hotkey=current.hotkey if hotkey is None else hotkey,
            label_class=current,
        )
        if new_name != current.name:
            _class_name_rewrite(project_id=current.project_id, old=current.name, new=new_name)
        LabelClass.objects.filter(id=current.id).update(name=new_name, hotkey=new_key)
        current.name, current.hotkey = new_name, new_key
    return current


def _class_name_rewrite(*, project_id: int, old: str, new: str) -> int:
    """Replace the class name ``old`` by ``new`` in every stored list of class names of the project;
    returns how many rows changed."""
    changed = 0
    for model, fields in _CLASS_NAME_LISTS.items():
        rows = model.objects.filter(**{"project_id" if model is Item else "item__project_id": project_id})
        any_list = Q()
        for field_name in fields:
            any_list |= Q(**{f"{field_name}__isnull": False})
        batch = []
        for row_id, *lists in rows.filter(any_list).values_list("id", *fields).iterator(2000):
            renamed = [None if names is None else [new if n == old else n for n in names] for names in lists]
            if renamed != lists:
                batch.append(model(id=row_id, **dict(zip(fields, renamed, strict=True))))
        model.objects.bulk_update(batch, fields, batch_size=500)
        changed += len(batch)
    return changed


# Training -----------------------------------------------------------------------------------------


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


INTERRUPTED = "interrupted: the worker stopped during training"


def _request_overdue(project: Project, now: Any) -> bool:
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
        _enqueue_training(project_id)
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
        transaction.on_commit(lambda: _enqueue_training(project_id))


def _enqueue_training(project_id: int) -> None:
    from ml.tasks import train_project_task

    try:
        train_project_task.apply_async((project_id,), retry=False)
    except OperationalError as exc:
        logger.warning("broker unavailable (%s): training of project %s stays requested", exc, project_id)
    except Exception:
        logger.exception("could not enqueue training for project %s; it stays requested", project_id)


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
        _enqueue_training(project_id)


def model_version_publish(
    *,
    version: ModelVersion,
    item_ids: Sequence[int],
    probs: np.ndarray,
    scores: np.ndarray,
    priorities: np.ndarray,
    metrics: dict[str, Any],
    weights: str,
    confidence: np.ndarray | None = None,
) -> ModelVersion:
    """Write every pre-label and priority, then mark the version ready, in one transaction.

    ``probs`` is (N, C) mean class probabilities for ``item_ids``; ``scores``, ``priorities`` and
    ``confidence`` (the chance the pre-label is right; default: the top probability) are (N,).
    """
    class_ids = selectors.class_order(project_id=version.project_id).ids
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    sure = probs.max(axis=1) if confidence is None and len(probs) else confidence
    items = [
        Item(
            id=int(item_id),
            pred_label_id=class_ids[int(best[i])],
            pred_confidence=round(float(sure[i]), 4),
            pred_probs=[round(float(p), 4) for p in probs[i]],
            pred_version_id=version.id,
            score=float(scores[i]),
            priority=float(priorities[i]),
        )
        for i, item_id in enumerate(item_ids)
    ]
    with transaction.atomic():
        # The project row lock orders this against a cold start writing priorities.
        Project.objects.select_for_update().filter(id=version.project_id).first()
        Item.objects.bulk_update(
            items, ["pred_label", "pred_confidence", "pred_probs", "pred_version", "score", "priority"], batch_size=500
        )
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
    transaction.on_commit(lambda: _enqueue_cold_start(project_id))


def _enqueue_cold_start(project_id: int) -> None:
    from ml.tasks import cold_start_project_task

    try:
        cold_start_project_task.apply_async((project_id,), queue="training", retry=False)
    except OperationalError as exc:
        logger.warning("broker unavailable (%s): the cold start of project %s waits for the workers", exc, project_id)
    except Exception:
        logger.exception("could not enqueue the cold start of project %s; the workers will ask again", project_id)


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
        _enqueue_cold_start(project_id)
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


# Model download -----------------------------------------------------------------------------------

#: Download formats of a model version and the file each one is.
MODEL_EXPORT_FILES = {"zip": "model.zip", "torchscript": "model.pt", "onnx": "model.onnx", "json": "model.json"}


def model_version_export(*, version: ModelVersion, fmt: str) -> Path:
    """The file of a ready ``version`` in ``fmt``: TorchScript, ONNX, the JSON card, or a zip of all with a README.

    Built once, on the first request, from the weights the worker serves (loaded as the
    worker loads them), into a folder beside them named after their content
    (``v3.pt`` -> ``v3.export-<sha256 prefix>/``: a reused project id with new weights
    gets new files), written under a temporary name and renamed, so readers see every
    file or none. Raises ``ValueError`` for an unknown format and ``ServiceError`` when
    the version cannot be exported (not ready, weights missing, TorchScript backbone changed
    since it was trained).
    """
    if fmt not in MODEL_EXPORT_FILES:
        raise ValueError(f"Unknown model format {fmt!r}; valid formats: {', '.join(MODEL_EXPORT_FILES)}.")
    if version.status != ModelVersion.Status.READY or not version.weights:
        raise ServiceError(f"Model version {version.number} is not ready.")
    weights = paths.model_path(version.weights)
    if not weights.is_file():
        raise ServiceError(f"The weights of model version {version.number} are missing; retrain to make new ones.")
    folder = weights.with_name(f"{weights.stem}.export-{hashlib.sha256(weights.read_bytes()).hexdigest()[:16]}")
    if not folder.is_dir():
        _model_version_build_exports(version, weights, folder)
        for stale in weights.parent.glob(f"{weights.stem}.export-*"):
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
    return folder / MODEL_EXPORT_FILES[fmt]


def _model_version_build_exports(version: ModelVersion, weights: Path, folder: Path) -> None:
    from ml import export  # torch: imported only when a version is first downloaded
    from ml.embeddings import load_backbone
    from ml.model import load_model

    project = version.project
    model, meta = load_model(weights)
    family, input_size = version.model_family, int(meta.get("input_size", project.input_size))
    backbone = None
    if family != ModelFamily.CNN:
        backbone = load_backbone(family, project.backbone_path or None)
        if meta.get("backbone") not in (None, backbone.key):
            raise ServiceError("The project's backbone file changed since this version was trained; retrain first.")
    try:
        network = export.image_classifier(
            model, family=family, input_size=input_size, backbone=backbone, multi_label=project.multi_label
        )
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    card = {
        "project": project.name,
        "model_version": version.number,
        # Classes are only appended, so a version trained on C classes outputs the first C.
        "classes": [c.name for c in selectors.project_classes(project=project)][: int(meta["n_classes"])],
        "multi_label": project.multi_label,
        "preprocessing": export.preprocessing(family=family, input_size=input_size),
        "metrics": {"val_accuracy": version.metrics.get("val_accuracy"), "n_labels": version.n_labels},
        "accuracy": model_accuracy(version.metrics),
        "files": {"torchscript": MODEL_EXPORT_FILES["torchscript"], "onnx": MODEL_EXPORT_FILES["onnx"]},
    }
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        example = export.example_input(input_size)
        traced = export.trace(network, example)
        export.export_torchscript(traced, example, tmp / MODEL_EXPORT_FILES["torchscript"])
        export.export_onnx(traced, example, tmp / MODEL_EXPORT_FILES["onnx"])
        (tmp / MODEL_EXPORT_FILES["json"]).write_text(json.dumps(card, indent=2) + "\n")
        with zipfile.ZipFile(tmp / MODEL_EXPORT_FILES["zip"], "w", zipfile.ZIP_DEFLATED) as bundle:
            for fmt in ("torchscript", "onnx", "json"):
                bundle.write(tmp / MODEL_EXPORT_FILES[fmt], MODEL_EXPORT_FILES[fmt])
            bundle.writestr("README.txt", model_readme(version) + export.USAGE)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise  # not another request finishing first: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_accuracy(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The accuracy estimate of a version for its model card: ``{"estimate", "low", "high", "n_labels"}``
    (the 95% interval and the labels it rests on), each ``None`` when the version did not record it."""
    metrics = metrics or {}
    keys = {"estimate": "val_accuracy", "low": "val_accuracy_low", "high": "val_accuracy_high", "n_labels": "val_n"}
    return {name: metrics.get(key) for name, key in keys.items()}


def model_readme(version: ModelVersion) -> str:
    """The head of the download's README.txt: which version, and its accuracy in the pages' words."""
    head = f"{version.project.name}, model v{version.number}, trained on {version.n_labels} labels\n"
    if model_accuracy(version.metrics)["estimate"] is None:
        return head + "Accuracy: not measured for this version.\n\n"
    return head + (
        f"Accuracy {accuracy_text(version.metrics)}: the estimated share of the project's images whose\n"
        "top class (multi-label: whole set of classes) is right, ± half its 95% interval, and the\n"
        'labels the estimate rests on (in model.json: "accuracy").\n\n'
    )


# Accounts -----------------------------------------------------------------------------------------


def api_token_rotate(*, user: AbstractBaseUser) -> str:
    """Give ``user`` a new API token (replacing any earlier one, which stops working); returns its key."""
    from rest_framework.authtoken.models import Token

    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key


def api_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Delete ``user``'s API token; whether there was one."""
    from rest_framework.authtoken.models import Token

    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


# Review of likely label errors --------------------------------------------------------------------

_DECIDED = (ReviewStatus.REVIEWED, ReviewStatus.AMBIGUOUS)
_REVIEW_FIELDS = ["review_status", "review_reason", "review_score", "review_confidence"]


def review_scan_request(*, project_id: int, version_number: int | None = None) -> None:
    """Have a worker look for likely label errors (on commit, on the ``default`` queue).

    ``version_number``: the version just published; the scan is skipped if by then another retrain is
    pending or done (its own scan follows).
    """
    transaction.on_commit(lambda: _enqueue_review(project_id, version_number))


def _enqueue_review(project_id: int, version_number: int | None) -> None:
    from ml.tasks import review_project_task

    try:
        review_project_task.apply_async((project_id, version_number), queue="default", retry=False)
    except OperationalError as exc:
        logger.warning(
            "broker unavailable (%s): no review scan of project %s now; the next version's follows", exc, project_id
        )
    except Exception:
        logger.exception("could not enqueue the review scan of project %s", project_id)


def review_flags_publish(
    *,
    project_id: int,
    item_ids: Sequence[int] = (),
    label_ids: Sequence[Any] = (),
    quality: Sequence[float] = (),
    suggested: Sequence[Any] = (),
    confidence: Sequence[float] = (),
    flagged: Iterable[int] = (),
) -> int:
    """Store a scan's verdicts; returns how many items are flagged now.

    The scan judged the (N,) ``item_ids`` with the labels they had: LabelClass ids ``label_ids``
    (on multi-label projects, lists of class names), label ``quality`` in 0..1, the model's
    ``suggested`` class index (multi-label: list of class names) and its ``confidence``;
    ``flagged`` lists the ids cleanlab ranks as likely errors. Per item, on its current row:

    - a manager's decision on the label it still has stands: never flagged again;
    - several annotators who disagreed (agreement < 1): flagged, reason ``disagreement``;
    - judged by this scan with its current label: flagged (``label_issue``) or cleared;
    - a decision on an earlier label, or a flag on an item no longer labeled, is cleared;
    - otherwise (not judged, or relabeled since the scan read it) the item keeps its state.
    """
    scanned = {int(item_id): k for k, item_id in enumerate(item_ids)}
    flagged = {int(item_id) for item_id in flagged}
    multi = Project.objects.filter(id=project_id).values_list("multi_label", flat=True).first()
    class_ids = selectors.class_order(project_id=project_id).ids
    columns = ["id", "status", "label_id", "labels", "agreement", "n_annotations", "review_status"]
    columns += ["review_label_id", "review_labels", "review_reason", "review_score", "review_confidence"]
    columns += ["review_suggested_labels" if multi else "review_suggested_id"]
    scanned_labels = [sorted(labels) for labels in label_ids] if multi else [int(i) for i in label_ids]
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project_id).first()
        rows = (
            Item.objects.filter(project_id=project_id)
            .filter(Q(status=Item.Status.LABELED) | ~Q(review_status=ReviewStatus.NONE))
            .values_list(*columns)
        )
        changed: list[Item] = []
        n_flagged = 0
        for row in rows.iterator(2000):
            item_id, status, label_id, labels, agreement, n_people, r_status, r_label, r_labels, *model_fields = row
            current = sorted(labels) if multi and labels is not None else label_id
            decided = sorted(r_labels) if multi and r_labels is not None else r_label
            labeled = status == Item.Status.LABELED and current is not None
            if labeled and r_status in _DECIDED and decided == current:
                continue
            k = scanned.get(item_id)
            judged = labeled and k is not None and scanned_labels[k] == current
            reason, score, conf, suggestion = model_fields
            if judged:
                score, conf = float(quality[k]), float(confidence[k])
                suggestion = sorted(suggested[k]) if multi else class_ids[int(suggested[k])]
            if not labeled:
                reason = ""
            elif n_people > 1 and agreement is not None and agreement < 1:
                reason = ReviewReason.DISAGREEMENT
                score = agreement if score is None else min(score, agreement)
            elif judged:
                reason = ReviewReason.LABEL_ISSUE if item_id in flagged else ""
            elif r_status in _DECIDED:
                reason = ""  # the decision was on another label; this one is not judged yet
            else:
                n_flagged += r_status == ReviewStatus.FLAGGED
                continue  # not judged by this scan: keeps its flag or its absence
            new_status = ReviewStatus.FLAGGED if reason else ReviewStatus.NONE
            n_flagged += bool(reason)
            if (new_status, reason, score, conf, suggestion) == (r_status, *model_fields):
                continue
            item = Item(id=item_id, review_status=new_status, review_reason=reason, review_score=score)
            item.review_confidence, item.review_action = conf, ""
            if multi:
                item.review_suggested_labels = suggestion
            else:
                item.review_suggested_id = suggestion
            changed.append(item)
        fields = [*_REVIEW_FIELDS, "review_action", "review_suggested_labels" if multi else "review_suggested"]
        Item.objects.bulk_update(changed, fields, batch_size=500)
        Project.objects.filter(id=project_id).update(review_scanned_at=timezone.now())
    return n_flagged


def item_review(
    *, item: Item, user: AbstractBaseUser, action: str, label: str | None = None, labels: Sequence[str] | None = None
) -> Item:
    """Record a manager's decision on a labeled item's label; returns the item as the review page shows it.

    ``keep``: the label stands. ``change``: ``label`` (a class name; on multi-label projects ``labels``,
    the class names) becomes the item's label, stored as an active annotation with source ``review``
    that outvotes the annotators' (the reviewer's own earlier label on the item becomes history).
    ``ambiguous``: the item is left out of training and export. Either way the item is not flagged
    again unless its label changes.
    """
    project = item.project
    if action not in ReviewAction.values:
        raise ServiceError(f"Unknown action {action!r}; valid actions: {', '.join(ReviewAction.values)}.")
    label_class, names = None, None
    if action == ReviewAction.CHANGE:
        if project.multi_label and labels is None:
            raise ServiceError("A change needs 'labels', the list of class names (may be empty).")
        if not project.multi_label and not label:
            raise ServiceError("A change needs 'label', the class name.")
        label_class, names = _validate_labels(project=project, label=label, labels=labels)
    with transaction.atomic():
        current = Item.objects.select_for_update().filter(id=item.id).values("status", "label_id", "labels").first()
        given = (current or {}).get("labels") if project.multi_label else (current or {}).get("label_id")
        if current is None or current["status"] != Item.Status.LABELED or given is None:
            raise ServiceError("Only labeled items can be reviewed.")
        fields: dict[str, Any] = {
            "review_status": ReviewStatus.AMBIGUOUS if action == ReviewAction.AMBIGUOUS else ReviewStatus.REVIEWED,
            "review_action": action,
            "reviewed_by": user,
            "reviewed_at": timezone.now(),
        }
        # A label is compared as its class id, or as its sorted class names on multi-label projects.
        as_given = sorted(given) if project.multi_label else given
        fields |= {"review_labels": as_given} if project.multi_label else {"review_label_id": as_given}
        if action == ReviewAction.CHANGE:
            chosen = sorted(names) if project.multi_label else label_class.id
            if chosen == as_given:
                fields["review_action"] = ReviewAction.KEEP  # "changed" to the label it has
            else:
                _review_annotation_store(item_id=item.id, user=user, label_class=label_class, names=names)
                human = Annotation.objects.filter(item_id=item.id, active=True, source=Annotation.Source.HUMAN)
                fields["n_annotations"] = human.count()
                if project.multi_label:
                    fields |= {"labels": chosen, "review_labels": chosen}
                else:
                    fields |= {"label": label_class, "review_label_id": chosen}
        Item.objects.filter(id=item.id).update(**fields)
    return selectors.review_item(item_id=item.id)


def _review_annotation_store(
    *, item_id: int, user: AbstractBaseUser, label_class: LabelClass | None, names: list[str] | None
) -> None:
    """The reviewer's label as the item's active ``review`` annotation; their earlier one becomes history."""
    mine = Q(source=Annotation.Source.REVIEW) | Q(user=user)
    Annotation.objects.filter(item_id=item_id, active=True).filter(mine).update(active=False)
    multi = label_class is None
    Annotation.objects.create(
        item_id=item_id, user=user, label=label_class, labels=names if multi else None, source=Annotation.Source.REVIEW
    )


# Background jobs: imports from server folders and exports to files --------------------------------

JOB_EXPORT_FORMATS = ("csv", "jsonl", "coco", "imagefolder")
JOB_PROGRESS_EVERY_S = 0.5
JOB_REJECTED_KEPT = 1000


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


def job_import_request(
    *, project: Project, user: AbstractBaseUser | None, folder: str, manifest: BinaryIO | None = None
) -> Job:
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
        transaction.on_commit(lambda: _enqueue_job(job.id, job.kind))
    return job


def job_upload_import_request(
    *, project: Project, user: AbstractBaseUser | None, files: Sequence[tuple[str, BinaryIO]]
) -> Job:
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
        transaction.on_commit(lambda: _enqueue_job(job.id, job.kind))
    return job


def job_export_request(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    fmt: str,
    images: bool = False,
    only_reviewed: bool = False,
    include_ambiguous: bool = False,
) -> Job:
    """Queue an export to a file under ``DATA_DIR/exports/``; ``images`` zips the image files alongside."""
    if fmt not in JOB_EXPORT_FORMATS:
        raise ServiceError(f"Unknown export format {fmt!r}; valid formats: {', '.join(JOB_EXPORT_FORMATS)}.")
    params = {"format": fmt, "images": images, "only_reviewed": only_reviewed, "include_ambiguous": include_ambiguous}
    return _job_create(project=project, user=user, kind=Job.Kind.EXPORT, params=params)


def job_rerun(*, job: Job, user: AbstractBaseUser | None) -> Job:
    """Queue a new job of the same kind with the same parameters."""
    return _job_create(project=job.project, user=user, kind=job.kind, params=dict(job.params))


def _job_create(*, project: Project, user: AbstractBaseUser | None, kind: str, params: dict[str, Any]) -> Job:
    with transaction.atomic():
        job = Job.objects.create(project=project, kind=kind, params=params, created_by=user)
        transaction.on_commit(lambda: _enqueue_job(job.id, kind))
    return job


def _enqueue_job(job_id: int, kind: str) -> None:
    from annotator import tasks

    task = tasks.import_job_task if kind == Job.Kind.IMPORT else tasks.export_job_task
    try:
        task.apply_async((job_id,), retry=False)
    except Exception as exc:
        logger.exception("could not enqueue job %s", job_id)
        Job.objects.filter(id=job_id).update(
            status=Job.Status.FAILED, error=f"could not be queued: {exc}", finished=timezone.now()
        )


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


def _with_progress(rows: Iterable[Any], *, job_id: int, total: int) -> Iterable[Any]:
    """Pass ``rows`` through, writing the job's progress (at most every ``JOB_PROGRESS_EVERY_S``)."""
    from time import monotonic

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
    with contextlib.ExitStack() as stack:
        if uploads:
            folder = Path(uploads)
            if not folder.is_dir():
                raise ServiceError("The uploaded files are gone: they are removed once imported; upload them again.")
            staged = [(name, folder / str(n)) for n, name in enumerate(job.params.get("names", []))]
            total = sum(_upload_total(path, name) for name, path in staged)
            opened = [(name, stack.enter_context(path.open("rb"))) for name, path in staged]
            candidates = imports.iter_uploads(opened, limits=limits, labels=labels)
        elif manifest:
            with open(manifest, "rb") as fh:
                total = sum(1 for _ in imports.read_manifest(fh))
            rows = imports.read_manifest(stack.enter_context(open(manifest, "rb")))
            candidates = imports.iter_manifest(root, rows, limits=limits, labels=labels)
        else:
            total = sum(len(files) for _, _, files in os.walk(root))
            candidates = imports.iter_folder(root, limits=limits, labels=labels)
        progress = _with_progress(candidates, job_id=job.id, total=total)
        summary = items_import(project=job.project, candidates=progress, user=job.created_by)
    if uploads:
        shutil.rmtree(uploads, ignore_errors=True)
    result = summary.as_dict()
    result["n_rejected"] = len(summary.rejected)
    result["rejected"] = summary.rejected[:JOB_REJECTED_KEPT]
    return result, ""


def _job_export(job: Job) -> tuple[dict[str, Any], str]:
    """Write the export file under ``DATA_DIR/exports/project_<id>/`` (a temporary name, then renamed)."""
    from django.utils.text import slugify

    project, params = job.project, job.params
    fmt = params["format"]
    rows: Iterable[dict[str, Any]] = selectors.export_rows(
        project=project, include_ambiguous=bool(params.get("include_ambiguous"))
    )
    if params.get("only_reviewed"):
        reviewed = {ReviewStatus.REVIEWED, ReviewStatus.AMBIGUOUS}
        rows = (row for row in rows if row["item"].review_status in reviewed)
    total = Item.objects.filter(project=project, status=Item.Status.LABELED).count()
    count = {"items": 0}

    def counted(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        for row in _with_progress(rows, job_id=job.id, total=total):
            count["items"] += 1
            yield row

    def text_chunks(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
        if fmt == "csv":
            return exports.csv_lines(rows)
        if fmt == "jsonl":
            return exports.jsonl_lines(rows)
        return exports.coco_chunks(rows, [c.name for c in selectors.project_classes(project=project)])

    text_name = f"{slugify(project.name) or 'project'}-labels" + {"csv": ".csv", "jsonl": ".jsonl"}.get(
        fmt, "-coco.json"
    )
    zipped = fmt == "imagefolder" or bool(params.get("images"))
    name = f"job{job.id}-" + (text_name.rsplit(".", 1)[0] + ".zip" if zipped else text_name)
    folder = paths.data_dir() / "exports" / f"project_{project.id}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    try:
        with tmp.open("wb") as out:
            if fmt == "imagefolder":
                exports.write_imagefolder(
                    (exports.with_stored_suffix(r) for r in counted(rows)), out, lambda item: item.file.open("rb")
                )
            elif zipped:
                _write_text_with_images(out, text_name, text_chunks, counted(rows))
            else:
                for chunk in text_chunks(counted(rows)):
                    out.write(chunk.encode("utf-8"))
        final = folder / name
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary = {"items": count["items"], "format": fmt, "images": zipped, "bytes": final.stat().st_size}
    return summary, final.relative_to(paths.data_dir()).as_posix()


def _write_text_with_images(out: BinaryIO, text_name: str, text_chunks: Any, rows: Iterable[dict[str, Any]]) -> None:
    """A zip of ``images/<item id>-<name>`` files and the labels file naming them, in one pass: the
    labels text waits in a temporary file while the images are written."""
    with ZipWriter(out) as archive, tempfile.TemporaryFile() as text:

        def placed() -> Iterable[dict[str, Any]]:
            for row in rows:
                item = row["item"]
                stem = exports.name_parts(row["filename"])[0] or "image"
                member = f"images/{item.id}-{stem}{exports.name_parts(item.file.name)[1]}"
                with item.file.open("rb") as src:
                    archive.add(member, src)
                yield {**row, "filename": member}

        for chunk in text_chunks(placed()):
            text.write(chunk.encode("utf-8"))
        text.seek(0)
        archive.add(text_name, text)


def job_file_path(*, job: Job) -> Path | None:
    """The finished export file of a job, when it is there."""
    if job.status != Job.Status.DONE or not job.file:
        return None
    path = paths.data_dir() / job.file
    return path if path.is_file() else None
