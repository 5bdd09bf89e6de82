"""Review of likely label errors: asking a worker for a scan, storing its verdicts beside the
disagreement flags, and a manager's decision on a flagged label (keep, change, ambiguous)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.kinds import Answer, kind_of
from annotator.kinds.boxes import KEPT, CheckedBox, boxes_answer
from annotator.models import (
    Annotation,
    AnswerRole,
    BoxRole,
    Item,
    ItemBox,
    Project,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
)
from annotator.selectors.answers import item_answer, item_answers
from annotator.selectors.boxes import item_boxes
from annotator.selectors.classes import class_order
from annotator.selectors.review import review_item
from annotator.services.annotations import annotation_answer_check, annotation_boxes_check
from annotator.services.answers import annotation_answer_store, item_answer_store, item_answers_store
from annotator.services.boxes import annotation_boxes_store, item_boxes_store
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


@dataclass(frozen=True)
class SuggestedBox:
    """A box a scan suggests: its class and rectangle (``box``, with the detector's score as its
    confidence) and the likely error it shows (a ``BoxIssueKind`` value; "" for none)."""

    box: CheckedBox
    issue: str = ""


def review_flags_publish(
    *,
    project_id: int,
    item_ids: Sequence[int] = (),
    answers: Sequence[Answer] = (),
    quality: Sequence[float] = (),
    suggested: Sequence[Answer] = (),
    confidence: Sequence[float | None] = (),
    flagged: Iterable[int] = (),
    suggested_boxes: Sequence[Sequence[SuggestedBox]] = (),
) -> int:
    """Store a scan's verdicts; returns how many items are flagged now.

    The scan judged the (N,) ``item_ids`` with the ``answers`` they had, giving label ``quality`` in
    0..1, the model's ``suggested`` answer and its ``confidence`` (``None``: no suggestion); ``flagged``
    lists the ids cleanlab ranks as likely errors. A box scan also gives (N,) ``suggested_boxes``,
    which replace the judged items' earlier ones. Per item, on its current row:

    - a manager's decision on the answer it still has stands: never flagged again;
    - an item a manager sent to review (reason ``manual``) stays flagged until it is decided;
    - several annotators who disagreed (agreement < 1): flagged, reason ``disagreement``;
    - judged by this scan with its current answer: flagged (``label_issue``) or cleared;
    - a decision on an earlier answer, or a flag on an item no longer labeled, is cleared;
    - otherwise (not judged, or relabeled since the scan read it) the item keeps its state.
    """
    scanned = {int(item_id): k for k, item_id in enumerate(item_ids)}
    flagged = {int(item_id) for item_id in flagged}
    multi = kind_of(Project.objects.get(id=project_id)).multi_label
    columns = ["id", "status", "agreement", "n_annotations", "review_status"]
    columns += ["review_reason", "review_score", "review_confidence"]
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project_id).first()
        given = item_answers(project_id=project_id)
        decided = item_answers(project_id=project_id, role=AnswerRole.REVIEWED)
        stored = item_answers(project_id=project_id, role=AnswerRole.SUGGESTED)
        rows = (
            Item.objects.filter(project_id=project_id)
            .filter(Q(status=Item.Status.LABELED) | ~Q(review_status=ReviewStatus.NONE))
            .values_list(*columns)
        )
        changed: list[Item] = []
        suggestions: dict[int, Answer] = {}
        box_suggestions: dict[int, Sequence[SuggestedBox]] = {}
        n_flagged = 0
        for item_id, status, agreement, n_people, r_status, *model_fields in rows.iterator(2000):
            current = given.get(item_id, ())
            labeled = status == Item.Status.LABELED and (multi or bool(current))
            if labeled and r_status in _DECIDED and decided.get(item_id, ()) == current:
                continue
            if labeled and r_status == ReviewStatus.FLAGGED and model_fields[0] == ReviewReason.MANUAL:
                n_flagged += 1
                continue  # a manager sent it: it waits for a person, whatever the scan says
            k = scanned.get(item_id)
            judged = labeled and k is not None and tuple(answers[k]) == current
            reason, score, conf = model_fields
            suggestion = stored.get(item_id, ())
            if judged and k is not None:  # (judged implies k is not None)
                score, suggestion = float(quality[k]), tuple(suggested[k])
                conf = None if confidence[k] is None else float(confidence[k])  # type: ignore[arg-type]
                if suggested_boxes:
                    box_suggestions[item_id] = suggested_boxes[k]
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
            if (new_status, reason, score, conf, suggestion) == (r_status, *model_fields, stored.get(item_id, ())):
                continue
            item = Item(id=item_id, review_status=new_status, review_reason=reason, review_score=score)
            item.review_confidence, item.review_action = conf, ""
            changed.append(item)
            suggestions[item_id] = suggestion
        Item.objects.bulk_update(changed, [*_REVIEW_FIELDS, "review_action"], batch_size=500)
        item_answers_store(answers=suggestions, role=AnswerRole.SUGGESTED)
        _suggested_boxes_store(boxes=box_suggestions)
        Project.objects.filter(id=project_id).update(review_scanned_at=timezone.now())
    return n_flagged


def _suggested_boxes_store(*, boxes: Mapping[int, Sequence[SuggestedBox]]) -> None:
    """Replace the ``suggested`` boxes of each item in ``boxes`` (one delete, one insert)."""
    if not boxes:
        return
    ItemBox.objects.filter(role=BoxRole.SUGGESTED, item_id__in=list(boxes)).delete()
    rows = [
        ItemBox(
            item_id=item_id,
            role=BoxRole.SUGGESTED,
            label_class_id=s.box.class_id,
            x=s.box.x,
            y=s.box.y,
            w=s.box.w,
            h=s.box.h,
            confidence=s.box.confidence,
            issue=s.issue,
        )
        for item_id, suggested in boxes.items()
        for s in suggested
    ]
    ItemBox.objects.bulk_create(rows, batch_size=1000)


def items_send_to_review(*, project: Project, item_ids: Sequence[int]) -> int:
    """Flag the project's labeled ``item_ids`` for review because a manager asked (reason ``manual``,
    served first: label quality 0), decided ones again too; items already flagged keep their reason.
    All or nothing: a 400-worthy ``ServiceError`` if one is not labeled. Returns how many were flagged."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    with transaction.atomic():
        rows = dict(Item.objects.select_for_update().filter(project=project, id__in=ids).values_list("id", "status"))
        missing = [i for i in ids if rows.get(i) != Item.Status.LABELED]
        if missing:
            raise ServiceError(f"Only labeled items can be sent to review; not labeled: {missing[:10]}.")
        fields = {"review_status": ReviewStatus.FLAGGED, "review_reason": ReviewReason.MANUAL, "review_score": 0.0}
        sent = Item.objects.filter(id__in=ids).exclude(review_status=ReviewStatus.FLAGGED)
        sent.update(**fields, review_action="")
    return len(ids)


def item_review(
    *,
    item: Item,
    user: User,
    action: str,
    label: str | None = None,
    labels: Sequence[str] | None = None,
    boxes: Sequence[Mapping[str, Any]] | None = None,
) -> Item:
    """Record a manager's decision on a labeled item's answer; returns the item as the review page shows it.

    ``keep``: the answer stands. ``change``: ``label`` (a class name; on multi-label projects ``labels``,
    the class names; on box projects ``boxes``, as ``annotation_create`` takes them) becomes the
    item's answer, stored as an active annotation with source ``review``
    that outvotes the annotators' (the reviewer's own earlier label on the item becomes history).
    ``ambiguous``: the item is left out of training and export. Either way the item is not flagged
    again unless its answer changes.
    """
    project = item.project
    kind = kind_of(project)
    if action not in ReviewAction.values:
        raise ServiceError(f"Unknown action {action!r}; valid actions: {', '.join(ReviewAction.values)}.")
    chosen: Answer | None = None
    chosen_boxes: list[CheckedBox] | None = None
    if action == ReviewAction.CHANGE and kind.boxes:
        if boxes is None:
            raise ServiceError("A change needs 'boxes', the list of the image's boxes (may be empty).")
        chosen_boxes = annotation_boxes_check(item=item, boxes=boxes, classes=class_order(project_id=project.id))
        chosen = boxes_answer(chosen_boxes, class_order(project_id=project.id))
    elif action == ReviewAction.CHANGE:
        if kind.multi_label and labels is None:
            raise ServiceError("A change needs 'labels', the list of class names (may be empty).")
        if not kind.multi_label and not label:
            raise ServiceError("A change needs 'label', the class name.")
        chosen = annotation_answer_check(project=project, label=label, labels=labels)
    with transaction.atomic():
        status = Item.objects.select_for_update().filter(id=item.id).values_list("status", flat=True).first()
        given = item_answer(item_id=item.id)
        if status != Item.Status.LABELED or not (given or kind.multi_label):
            raise ServiceError("Only labeled items can be reviewed.")
        fields: dict[str, Any] = {
            "review_status": ReviewStatus.AMBIGUOUS if action == ReviewAction.AMBIGUOUS else ReviewStatus.REVIEWED,
            "review_action": action,
            "reviewed_by": user,
            "reviewed_at": timezone.now(),
        }
        decided = given
        if chosen_boxes is not None:
            current = item_boxes(item_id=item.id)
            if _same_boxes(current, chosen_boxes):
                fields["review_action"] = ReviewAction.KEEP
            else:
                annotation_id = _review_annotation_store(item_id=item.id, user=user, answer=chosen or ())
                annotation_boxes_store(annotation_id=annotation_id, boxes=chosen_boxes)
                item_boxes_store(boxes={item.id: chosen_boxes})
                human = Annotation.objects.filter(item_id=item.id, active=True, source=Annotation.Source.HUMAN)
                fields["n_annotations"] = human.count()
                item_answer_store(item_id=item.id, answer=chosen or ())
                decided = chosen or ()
        elif chosen is not None:
            if chosen == given:
                fields["review_action"] = ReviewAction.KEEP  # "changed" to the answer it has
            else:
                _review_annotation_store(item_id=item.id, user=user, answer=chosen)
                human = Annotation.objects.filter(item_id=item.id, active=True, source=Annotation.Source.HUMAN)
                fields["n_annotations"] = human.count()
                item_answer_store(item_id=item.id, answer=chosen)
                decided = chosen
        item_answer_store(item_id=item.id, answer=decided, role=AnswerRole.REVIEWED)
        Item.objects.filter(id=item.id).update(**fields)
    return review_item(item_id=item.id)


def _review_annotation_store(*, item_id: int, user: User, answer: Answer) -> int:
    """The reviewer's answer as the item's active ``review`` annotation (its id); their earlier one
    becomes history."""
    mine = Q(source=Annotation.Source.REVIEW) | Q(user=user)
    Annotation.objects.filter(item_id=item_id, active=True).filter(mine).update(active=False)
    annotation = Annotation.objects.create(item_id=item_id, user=user, source=Annotation.Source.REVIEW)
    annotation_answer_store(annotation_id=annotation.id, answer=answer)
    return annotation.id


def _same_boxes(a: Sequence[CheckedBox], b: Sequence[CheckedBox]) -> bool:
    """Whether two box lists hold the same kept boxes (class and rectangle), in any order."""

    def key(boxes: Sequence[CheckedBox]) -> list[tuple[int, float, float, float, float]]:
        return sorted((box.class_id, box.x, box.y, box.w, box.h) for box in boxes if box.outcome in KEPT)

    return key(a) == key(b)
