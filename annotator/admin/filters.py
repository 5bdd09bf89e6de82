"""List filters for items and annotations: by class (named with its project), by whether an item
has a prediction, and by the state of its lease."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from annotator.models import Item, LabelClass


class LabelFilter(admin.SimpleListFilter):
    """Filter by class, named with its project (class names repeat across projects); only the
    filtered project's classes when a project is chosen."""

    title = "label"
    parameter_name = "label"
    project_parameter = "project__id__exact"
    #: The rows whose answer holds the class.
    lookup = {"answer_classes__role": "consensus"}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        classes = LabelClass.objects.select_related("project").order_by("project__name", "project_id", "index")
        project = request.GET.get(self.project_parameter, "")
        if project.isdigit():
            classes = classes.filter(project_id=int(project))
        return [(str(c.id), f"{c.project.name} / {c.name}") for c in classes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not (value and value.isdigit()):
            return queryset
        return queryset.filter(**self.lookup, answer_classes__label_class_id=int(value))


class AnnotationLabelFilter(LabelFilter):
    project_parameter = "item__project__id__exact"
    lookup: dict[str, str] = {}


class PredictionFilter(admin.SimpleListFilter):
    title = "has prediction"
    parameter_name = "predicted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> QuerySet[Item]:
        if self.value() in ("yes", "no"):
            return queryset.filter(pred_version__isnull=self.value() == "no")
        return queryset


class LeaseFilter(admin.SimpleListFilter):
    title = "lease"
    parameter_name = "lease"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("held", "Held now"), ("expired", "Expired"), ("none", "None")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> QuerySet[Item]:
        now = timezone.now()
        if self.value() == "held":
            return queryset.filter(lease_until__gt=now)
        if self.value() == "expired":
            return queryset.filter(lease_until__lte=now)
        if self.value() == "none":
            return queryset.filter(lease_until__isnull=True)
        return queryset
