"""Annotations: storing a person's label for an item (checked, idempotent on ``client_token``, history
kept as inactive rows), undoing one, and asking for a retrain once enough labels came in."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.kinds import Answer, AnswerError, ClassOrder, kind_of
from annotator.kinds.boxes import CheckedBox, boxes_answer, boxes_check
from annotator.models import Annotation, Item, Project
from annotator.selectors.classes import class_order
from annotator.services.answers import annotation_answer_store, item_answer_store
from annotator.services.boxes import annotation_boxes_store
from annotator.services.consensus import item_consensus
from annotator.services.errors import ConflictError, ServiceError
from annotator.services.training import training_label_counted, training_request_overdue, training_resend


def _prelabel_outcome(*, item: Item, project: Project, answer: Answer, classes: ClassOrder) -> str:
    """Whether an answer accepted the model's pre-label, corrected it, or was given without one (none
    shown, or one too unsure to be suggested: below the project's ``prelabel_threshold``)."""
    if item.pred_label_id is None or not project.show_prelabels:
        return Annotation.Prelabel.NONE
    if item.pred_confidence is not None and item.pred_confidence < project.prelabel_threshold:
        return Annotation.Prelabel.NONE
    predicted = kind_of(project).predicted(
        pred_label_id=item.pred_label_id, pred_probs=item.pred_probs, classes=classes
    )
    return Annotation.Prelabel.ACCEPTED if predicted == answer else Annotation.Prelabel.CORRECTED


def annotation_answer_check(
    *, project: Project, label: str | None, labels: Sequence[str] | None, classes: ClassOrder | None = None
) -> Answer:
    """The answer a client sent (``label``, a class name, or on multi-label projects ``labels``, a
    list of them), checked against the project's classes; ``ServiceError`` says what to send."""
    classes = class_order(project_id=project.id) if classes is None else classes
    try:
        return kind_of(project).answer_check(label=label, labels=labels, classes=classes)
    except AnswerError as error:
        raise ServiceError(str(error)) from None


def _boxes_prelabel_outcome(boxes: Sequence[CheckedBox]) -> str:
    """Accepted: every pre-box was taken as it was and nothing else drawn; corrected: pre-boxes were
    shown and something changed; none: no pre-box was shown."""
    outcomes = {box.outcome for box in boxes}
    if not outcomes - {"drawn"}:
        return Annotation.Prelabel.NONE
    return Annotation.Prelabel.ACCEPTED if outcomes == {"accepted"} else Annotation.Prelabel.CORRECTED


def annotation_boxes_check(*, item: Item, boxes: Any, classes: ClassOrder) -> list[CheckedBox]:
    """The boxes a client sent for ``item`` of a box project, checked and cut to the image;
    ``ServiceError`` says which box cannot be stored and why."""
    try:
        return boxes_check(boxes, classes=classes, width=item.width, height=item.height)
    except AnswerError as error:
        raise ServiceError(str(error)) from None


def annotation_create(
    *,
    item: Item,
    user: User,
    label: str | None = None,
    labels: Sequence[str] | None = None,
    boxes: Sequence[Mapping[str, Any]] | None = None,
    client_token: str | None = None,
    duration_ms: int | None = None,
) -> tuple[Annotation, bool]:
    """Store ``user``'s label for ``item``; returns ``(annotation, created)``.

    ``label`` names the class; on multi-label projects ``labels`` lists the classes instead (an
    empty list says that none applies); on box projects ``boxes`` lists the objects, each
    ``{"label", "x", "y", "w", "h"}`` with its ``outcome`` (``kinds.boxes.boxes_check``; empty:
    nothing here). Idempotent on ``client_token``: a repeated post returns
    the stored annotation. A new label from the same person replaces their earlier one (which
    stays as inactive history). A label posted after the lease expired is accepted all the same.
    The item is labeled once ``labels_per_item`` people labeled it; until then it goes back to
    the queue.
    """
    project = item.project
    kind = kind_of(project)
    classes = class_order(project_id=project.id)
    checked: list[CheckedBox] = []
    if kind.boxes and boxes is not None:
        checked = annotation_boxes_check(item=item, boxes=boxes, classes=classes)
        answer, prelabel = boxes_answer(checked, classes), _boxes_prelabel_outcome(checked)
    elif boxes is not None:
        raise ServiceError(
            "This project labels classes, not boxes: send 'label' (or 'labels' on multi-label projects)."
        )
    else:
        answer = annotation_answer_check(project=project, label=label, labels=labels, classes=classes)
        prelabel = _prelabel_outcome(item=item, project=project, answer=answer, classes=classes)
    now = timezone.now()
    try:
        with transaction.atomic():
            if project.labels_per_item > 1:
                # Several people label this item: serialise their writes on the item's row.
                list(Item.objects.select_for_update().filter(id=item.id).values_list("id"))
            Annotation.objects.filter(item=item, user=user, active=True).update(active=False)
            annotation = Annotation.objects.create(
                item=item, user=user, prelabel=prelabel, client_token=client_token or None, duration_ms=duration_ms
            )
            annotation_answer_store(annotation_id=annotation.id, answer=answer)
            annotation_boxes_store(annotation_id=annotation.id, boxes=checked)
            if project.labels_per_item > 1 or kind.boxes:
                fields, answer = item_consensus(item=item, now=now)
            else:  # one person's label is the item's (a review's, should there be one, is history now)
                human = Annotation.objects.filter(item=OuterRef("pk"), active=True, source=Annotation.Source.HUMAN)
                fields = {
                    "status": Item.Status.LABELED,
                    "labeled_at": Coalesce("labeled_at", now),
                    "n_annotations": Subquery(human.values("item").annotate(n=Count("id")).values("n")),
                    "agreement": None,
                }
            Item.objects.filter(id=item.id).update(lease_user=None, lease_until=None, **fields)
            item_answer_store(item_id=item.id, answer=answer)
            # While a retrain is already requested, new labels simply join it: no need to count, unless
            # the request has waited long enough to have been lost (broker down): then send it again.
            project_id = item.project_id
            # Robust hooks: the label is committed by then, so a failure to request a retrain (the
            # next label or the workers' reconciliation asks again) must not turn it into an error.
            if fields["status"] == Item.Status.LABELED and not project.training_requested:
                every = project.retrain_every
                transaction.on_commit(
                    lambda: training_label_counted(project_id=project_id, retrain_every=every), robust=True
                )
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
        fields, answer = item_consensus(item=Item(id=annotation.item_id, project=project), now=now)
        if project.labels_per_item == 1 and fields["n_annotations"] == 0:
            fields["agreement"] = None
        until = now + timedelta(seconds=project.lease_seconds or settings.LEASE_SECONDS)
        Item.objects.filter(id=annotation.item_id).update(lease_user=user, lease_until=until, **fields)
        item_answer_store(item_id=annotation.item_id, answer=answer)
    return Item.objects.select_related("project").get(id=annotation.item_id)
