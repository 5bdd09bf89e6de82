"""Items and annotations as clients read them: one item a user may see, a project's items filtered,
its annotations."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from annotator.models import (
    Annotation,
    AnswerRole,
    Item,
    ItemClass,
    LabelClass,
    ModelVersion,
    Project,
    ReviewStatus,
)


def item_get_for_user(*, user: User, item_id: int) -> Item | None:
    """The item (with its project) if ``user`` is a member of its project; ``None`` otherwise. One query."""
    items = Item.objects.select_related("project").filter(id=item_id)
    if not user.is_superuser:
        items = items.filter(project__memberships__user=user)
    return items.first()


def item_with_names(item_id: int) -> Item:
    """The item with the names a client needs: its pre-label's and the model version's (its answer's:
    ``selectors.item_answer_names``)."""
    names = {"pred_label_name": F("pred_label__name"), "pred_version_number": F("pred_version__number")}
    return Item.objects.annotate(**names).get(id=item_id)


#: ``order`` as the items list takes it -> the columns it sorts by (``id`` breaks ties the same way).
ORDERS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "-id": ("-id",),
    "score": ("score", "id"),
    "-score": ("-score", "-id"),
    "confidence": ("pred_confidence", "id"),
    "-confidence": ("-pred_confidence", "-id"),
    "-priority": ("-priority", "id"),
}
#: The orders that read the model's guesses: refused where the caller may not see them.
PREDICTION_ORDERS = ("score", "-score", "confidence", "-confidence")


def item_list(
    *,
    project: Project,
    status: str | None = None,
    label: str | None = None,
    predicted: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    conf_min: float | None = None,
    conf_max: float | None = None,
    disagreement: bool = False,
    flagged: bool = False,
    annotator: int | None = None,
    batch: int | None = None,
    boxes: str | None = None,
    min_boxes: int | None = None,
    max_boxes: int | None = None,
    order: str = "id",
) -> QuerySet[Item]:
    """A project's items that pass every filter given (each is optional), ordered as ``ORDERS[order]``
    says: one query, whatever the page size (``items_name`` then adds the names a client reads).

    ``label``, ``predicted``: class names (the answer holds it; the model's guess is it); ``conf_*``,
    ``*_score``: inclusive ranges of the guess's confidence and the strategy's score; ``disagreement``:
    annotators disagreed; ``flagged``: waiting for review; ``annotator``: a user id whose current
    label the item has; ``batch``: the number of the import that brought it; ``boxes`` (box
    projects): ``none``, labeled items with nothing in them, or ``some``, items with boxes; ``*_boxes``:
    how many boxes a labeled item holds."""
    items = Item.objects.filter(project=project)
    if status:
        items = items.filter(status=status)
    named = [name for name in (label, predicted) if name]
    # The classes by id (a name the project lacks matches nothing): joined by name, the planner
    # cannot tell how many items a class has and walks them all.
    class_ids = dict(LabelClass.objects.filter(project=project, name__in=named).values_list("name", "id"))
    if label:  # items whose answer holds the class: one range of the answers' class index
        answered = ItemClass.objects.filter(role=AnswerRole.CONSENSUS, label_class_id=class_ids.get(label, 0))
        items = items.filter(id__in=answered.values("item_id"))
    if predicted:
        items = items.filter(pred_label_id=class_ids.get(predicted, 0))  # 0: no class
    ranges = {
        "score__gte": min_score,
        "score__lte": max_score,
        "pred_confidence__gte": conf_min,
        "pred_confidence__lte": conf_max,
    }
    items = items.filter(**{lookup: value for lookup, value in ranges.items() if value is not None})
    if disagreement:
        items = items.filter(agreement__lt=1)
    if flagged:
        items = items.filter(review_status=ReviewStatus.FLAGGED)
    if annotator is not None:
        theirs = Annotation.objects.filter(user_id=annotator, active=True)  # the outer filter keeps the project
        items = items.filter(id__in=theirs.values("item_id"))
    if batch is not None:
        items = items.filter(batch=batch)
    if boxes:
        labeled = items.filter(status=Item.Status.LABELED)
        items = labeled.filter(n_boxes=0) if boxes == "none" else labeled.filter(n_boxes__gt=0)
    if min_boxes is not None:
        items = items.filter(n_boxes__gte=min_boxes, status=Item.Status.LABELED)
    if max_boxes is not None:
        items = items.filter(n_boxes__lte=max_boxes, status=Item.Status.LABELED)
    return items.order_by(*ORDERS[order])


def items_name(*, project: Project, items: list[Item]) -> list[Item]:
    """Give ``items`` (of ``project``, e.g. a page of ``item_list``) the names ``item_with_names``
    annotates, ``pred_label_name`` and ``pred_version_number``, in two small queries: a count over
    the list then needs no joins."""
    classes = dict(LabelClass.objects.filter(project=project).values_list("id", "name"))
    wanted = {item.pred_version_id for item in items if item.pred_version_id is not None}
    numbers = dict(ModelVersion.objects.filter(id__in=wanted).values_list("id", "number")) if wanted else {}
    for item in items:
        label, version = item.pred_label_id, item.pred_version_id
        item.pred_label_name = classes.get(label) if label is not None else None  # type: ignore[attr-defined]
        item.pred_version_number = numbers.get(version) if version is not None else None  # type: ignore[attr-defined]
    return items


def annotation_list(
    *, project: Project, user_id: int | None = None, active: bool | None = None
) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(item__project=project).select_related("user")
    if user_id is not None:
        annotations = annotations.filter(user_id=user_id)
    if active is not None:
        annotations = annotations.filter(active=active)
    return annotations.order_by("-id")
