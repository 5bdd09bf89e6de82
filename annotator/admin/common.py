"""What several admin pages share: the placeholder for an empty cell, per-project counts as
subqueries, the label text of an item or annotation, percentages and previews, and search by id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.text import Truncator

from annotator.models import Annotation, AnnotationClass, AnswerRole, Item, ItemClass

NONE = "–"


def project_count(items: QuerySet[Item]) -> Coalesce:
    """How many of ``items`` belong to the outer project row, as a subquery (0 when none)."""
    counts = items.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def ids_of(queryset: QuerySet[Any]) -> list[int]:
    return list(queryset.values_list("id", flat=True))


#: What ``label_text`` reads: an item's consensus classes, or an annotation's classes, with their names.
ITEM_ANSWER = Prefetch(
    "answer_classes",
    queryset=ItemClass.objects.filter(role=AnswerRole.CONSENSUS).select_related("label_class"),
    to_attr="answer_rows",
)
ANNOTATION_ANSWER = Prefetch(
    "answer_classes", queryset=AnnotationClass.objects.select_related("label_class"), to_attr="answer_rows"
)


def label_text(obj: Item | Annotation) -> str:
    """The answer's class names in class order (from the ``ITEM_ANSWER`` or ``ANNOTATION_ANSWER`` prefetch)."""
    rows = sorted(getattr(obj, "answer_rows", []), key=lambda row: row.label_class.index)
    return ", ".join(row.label_class.name for row in rows) or NONE


if TYPE_CHECKING:
    from django.contrib import admin

    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


class IdSearchMixin(_ModelAdmin):
    """Search also finds the row whose id is the search term."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and int(term) < 2**63:
            found |= queryset.filter(id=int(term))
        return found, duplicates


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.0%}"


def preview(text: str) -> str:
    return Truncator(text).chars(80) if text else NONE
