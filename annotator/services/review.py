"""Review of likely label errors: asking a worker for a scan, storing its verdicts beside the
disagreement flags, and a manager's decision on a flagged label (keep, change, ambiguous)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator import selectors
from annotator.models import Annotation, Item, LabelClass, Project, ReviewAction, ReviewReason, ReviewStatus
from annotator.services.annotations import annotation_labels_check
from annotator.services.enqueue import REVIEW_PROJECT_TASK, enqueue
from annotator.services.errors import ServiceError

_DECIDED = (ReviewStatus.REVIEWED, ReviewStatus.AMBIGUOUS)
_REVIEW_FIELDS = ["review_status", "review_reason", "review_score", "review_confidence"]


def review_scan_request(*, project_id: int, version_number: int | None = None) -> None:
    """Have a worker look for likely label errors (on commit, on the ``default`` queue).

    ``version_number``: the version just published; the scan is skipped if by then another retrain is
    pending or done (its own scan follows).
    """
    meanwhile = f"no review scan of project {project_id} now; the next version's follows"
    enqueue(REVIEW_PROJECT_TASK, project_id, version_number, meanwhile=meanwhile)


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
            if judged and k is not None:  # (judged implies k is not None)
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
    *, item: Item, user: User, action: str, label: str | None = None, labels: Sequence[str] | None = None
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
        label_class, names = annotation_labels_check(project=project, label=label, labels=labels)
    with transaction.atomic():
        current = Item.objects.select_for_update().filter(id=item.id).values("status", "label_id", "labels").first()
        given = None if current is None else current["labels"] if project.multi_label else current["label_id"]
        if current is None or current["status"] != Item.Status.LABELED or given is None:
            raise ServiceError("Only labeled items can be reviewed.")
        fields: dict[str, Any] = {
            "review_status": ReviewStatus.AMBIGUOUS if action == ReviewAction.AMBIGUOUS else ReviewStatus.REVIEWED,
            "review_action": action,
            "reviewed_by": user,
            "reviewed_at": timezone.now(),
        }
        # A label is compared as its class id, or as its sorted class names on multi-label projects.
        as_given = sorted(cast(list[str], given)) if project.multi_label else given
        fields |= {"review_labels": as_given} if project.multi_label else {"review_label_id": as_given}
        if action == ReviewAction.CHANGE:
            # Both set above for a change: the class names on multi-label projects, else the class.
            chosen = sorted(cast(list[str], names)) if project.multi_label else cast(LabelClass, label_class).id
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
    *, item_id: int, user: User, label_class: LabelClass | None, names: list[str] | None
) -> None:
    """The reviewer's label as the item's active ``review`` annotation; their earlier one becomes history."""
    mine = Q(source=Annotation.Source.REVIEW) | Q(user=user)
    Annotation.objects.filter(item_id=item_id, active=True).filter(mine).update(active=False)
    multi = label_class is None
    Annotation.objects.create(
        item_id=item_id, user=user, label=label_class, labels=names if multi else None, source=Annotation.Source.REVIEW
    )
