"""Items and annotations as clients read them: one item a user may see, a project's items filtered,
its annotations."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from annotator.models import Annotation, AnswerRole, Item, ItemClass, Project


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


def item_list(
    *,
    project: Project,
    status: str | None = None,
    label: str | None = None,
    predicted: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    order: str = "id",
) -> QuerySet[Item]:
    """A project's items, filtered (each filter is optional) and ordered by ``id``, ``-score`` or ``-priority``."""
    items = Item.objects.filter(project=project)
    if status:
        items = items.filter(status=status)
    if label:  # items whose answer holds the class: one probe of the answers' class index
        answered = ItemClass.objects.filter(role=AnswerRole.CONSENSUS, label_class__project=project)
        items = items.filter(id__in=answered.filter(label_class__name=label).values("item_id"))
    if predicted:
        items = items.filter(pred_label__name=predicted)
    if min_score is not None:
        items = items.filter(score__gte=min_score)
    if max_score is not None:
        items = items.filter(score__lte=max_score)
    names = {"pred_label_name": F("pred_label__name"), "pred_version_number": F("pred_version__number")}
    return items.annotate(**names).order_by(order, "id")


def annotation_list(
    *, project: Project, user_id: int | None = None, active: bool | None = None
) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(item__project=project).select_related("user")
    if user_id is not None:
        annotations = annotations.filter(user_id=user_id)
    if active is not None:
        annotations = annotations.filter(active=active)
    return annotations.order_by("-id")
