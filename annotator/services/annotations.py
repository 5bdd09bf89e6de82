"""Annotations: storing a person's label for an item (checked, idempotent on ``client_token``, history
kept as inactive rows), undoing one, and asking for a retrain once enough labels came in."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.models import Annotation, Item, LabelClass, Project
from annotator.services.classes import project_class_names
from annotator.services.consensus import item_consensus
from annotator.services.errors import ConflictError, ServiceError
from annotator.services.training import training_maybe_request, training_request_overdue, training_resend


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


def annotation_labels_check(
    *, project: Project, label: str | None, labels: Sequence[str] | None
) -> tuple[LabelClass | None, list[str]]:
    """The class of a single-label answer, or the class names of a multi-label one (in class order),
    checked against the project's classes."""
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
    user: User,
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
    label_class, names = annotation_labels_check(project=project, label=label, labels=labels)
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
                fields = item_consensus(
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
            elif training_request_overdue(project=project, now=now):
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


def annotation_undo(*, project: Project, user: User, client_token: str | None = None) -> Item | None:
    """Undo ``user``'s latest active label in ``project``: the annotation is deactivated (kept as
    history), the item goes back to the queue, leased to ``user`` so that it comes back to them
    first. Returns the item, or ``None`` when there is nothing to undo.

    Idempotent on ``client_token``: the same token again gets the first answer (the same item, or
    ``None``) and undoes nothing more, so a retry after a lost response cannot undo a second label.
    The answer is remembered in the cache, which every process shares, while the undo's lock is held.
    """
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
        fields = item_consensus(
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
