"""Leasing: which item ``/next`` serves to whom, for how long, and giving items back (skip, release,
expired leases). Each lease is one indexed lookup and one conditional write, safe under concurrent
callers: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a retried conditional update elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotator.models import Annotation, Item, LabelClass, ModelVersion, Project
from annotator.selectors.items import item_with_names
from annotator.services.errors import ConflictError


def _lease_free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lte=now)


def item_lease_next(*, project: Project, user: User, exclude: Sequence[int] = ()) -> Item | None:
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
        return item_with_names(mine)
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
            return item_with_names(item_id)
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
SELECT leased.*, pred.name AS pred_label_name, version.number AS pred_version_number
FROM leased
LEFT JOIN {label} pred ON pred.id = leased.pred_label_id
LEFT JOIN {version} version ON version.id = leased.pred_version_id
"""

_NOT_DONE_SQL = (
    "AND NOT EXISTS (SELECT 1 FROM {annotation} a WHERE a.item_id = {item}.id AND a.user_id = %(user)s AND a.active)"
)


def _lease_postgresql(
    *, project: Project, user: User, status: str, now: datetime, until: datetime, exclude: list[int]
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


def _lease_first_conditional(queue: QuerySet[Item], *, user: User, now: datetime, until: datetime) -> int | None:
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


def item_skip(*, item: Item, user: User) -> None:
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


def item_release(*, item: Item, user: User) -> None:
    Item.objects.filter(id=item.id, lease_user=user).update(lease_user=None, lease_until=None)


def items_release_mine(*, project: Project, user: User, item_ids: Sequence[int]) -> int:
    """Give back ``user``'s leases on ``item_ids`` of ``project`` (a labeling page that closes hands
    back what it prefetched); others' leases and other projects' items are left alone. Returns how
    many were freed. One statement."""
    items = Item.objects.filter(project=project, id__in=list(item_ids), lease_user=user)
    return items.update(lease_user=None, lease_until=None)


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
