"""Items and their annotations: columns read with joins, filters by class, prediction and lease, and
the actions that release leases and record review decisions through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from annotator.admin.common import ANNOTATION_ANSWER, ITEM_ANSWER, NONE, IdSearchMixin, ids_of, label_text
from annotator.admin.filters import AnnotationLabelFilter, LabelFilter, LeaseFilter, PredictionFilter
from annotator.auth import SignedInHttpRequest
from annotator.models import Annotation, AnnotationClass, Item, ItemClass, Project, ReviewAction
from annotator.services.errors import ServiceError
from annotator.services.leasing import item_leases_release
from annotator.services.review import item_review


class _AnswerInline(admin.TabularInline):
    """An answer's classes, shown (answers change through labeling and review, which keep their history)."""

    extra = 0
    can_delete = False
    readonly_fields = ["label_class"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ItemClassInline(_AnswerInline):
    model = ItemClass
    fields = ["role", "label_class"]
    readonly_fields = ["role", "label_class"]
    verbose_name_plural = "answers (consensus, reviewed, suggested)"


class AnnotationClassInline(_AnswerInline):
    model = AnnotationClass
    verbose_name_plural = "classes"


@admin.register(Item)
class ItemAdmin(IdSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "project",
        "status",
        "label_names",
        "review_status",
        "pred_label",
        "pred_confidence",
        "priority",
        "lease",
    ]
    list_filter = [
        "status",
        "review_status",
        "review_reason",
        LabelFilter,
        PredictionFilter,
        LeaseFilter,
        "project",
    ]
    search_fields = ["original_name", "^sha256"]
    list_select_related = ["project", "pred_label", "lease_user"]
    show_full_result_count = False
    autocomplete_fields = ["project", "lease_user", "reviewed_by"]
    raw_id_fields = ["pred_label", "pred_version"]
    inlines = [ItemClassInline]
    readonly_fields = [
        "sha256",
        "width",
        "height",
        "cache_row",
        "created",
        "n_annotations",
        "agreement",
        "pred_confidence",
        "pred_probs",
        "score",
        "review_score",
        "review_confidence",
    ]
    fieldsets = [
        (None, {"fields": ["project", "file", "original_name", "width", "height", "sha256", "cache_row", "created"]}),
        ("Label", {"fields": ["status", "labeled_at", "n_annotations", "agreement"]}),
        ("Queue", {"fields": ["priority", "lease_user", "lease_until"]}),
        ("Prediction", {"fields": ["pred_label", "pred_confidence", "pred_probs", "pred_version", "score"]}),
        (
            "Review",
            {
                "fields": [
                    "review_status",
                    "review_reason",
                    "review_score",
                    "review_confidence",
                    "review_action",
                    "reviewed_by",
                    "reviewed_at",
                ]
            },
        ),
    ]
    actions = ["release_leases", "review_keep", "review_ambiguous"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        return super().get_queryset(request).prefetch_related(ITEM_ANSWER)

    @admin.display(description="label")
    def label_names(self, obj: Item) -> str:
        return label_text(obj)

    @admin.display(description="lease", ordering="lease_until")
    def lease(self, obj: Item) -> str:
        if obj.lease_until is None:
            return NONE
        holder = obj.lease_user.get_username() if obj.lease_user else "nobody"
        if obj.lease_until <= timezone.now():
            return f"{holder} (expired)"
        return f"{holder} until {timezone.localtime(obj.lease_until):%H:%M:%S}"

    @admin.action(description="Release the leases of the selected items")
    def release_leases(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        released = item_leases_release(item_ids=ids_of(queryset))
        self.message_user(request, f"Released {released} lease(s).", messages.SUCCESS)

    @admin.action(description="Review: keep the selected items' labels (clears their flags)")
    def review_keep(self, request: SignedInHttpRequest, queryset: QuerySet[Item]) -> None:
        self._review(request, queryset, ReviewAction.KEEP, "kept the label of")

    @admin.action(description="Review: mark the selected items ambiguous (left out of training and export)")
    def review_ambiguous(self, request: SignedInHttpRequest, queryset: QuerySet[Item]) -> None:
        self._review(request, queryset, ReviewAction.AMBIGUOUS, "marked ambiguous")

    def _review(self, request: SignedInHttpRequest, queryset: QuerySet[Item], action: str, done: str) -> None:
        """Record ``action`` as the admin's review decision on each item; report the ones it does not apply to."""
        reviewed, skipped = 0, []
        for item in queryset.select_related("project"):
            try:
                item_review(item=item, user=request.user, action=action)
                reviewed += 1
            except ServiceError as exc:
                skipped.append(f"{item.id} ({exc})")
        self.message_user(request, f"Reviewed: {done} {reviewed} item(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Not reviewed: {'; '.join(skipped[:10])}", messages.WARNING)


@admin.register(Annotation)
class AnnotationAdmin(IdSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "item",
        "project",
        "label_names",
        "user",
        "source",
        "prelabel",
        "active",
        "duration_ms",
        "created",
    ]
    list_filter = ["source", "prelabel", "active", AnnotationLabelFilter, "item__project", "created"]
    search_fields = ["item__original_name", "user__username", "classes__name"]
    list_select_related = ["item__project", "user"]
    show_full_result_count = False
    date_hierarchy = "created"
    raw_id_fields = ["item"]
    inlines = [AnnotationClassInline]
    autocomplete_fields = ["user"]
    readonly_fields = ["created"]

    @admin.display(description="project", ordering="item__project__name")
    def project(self, obj: Annotation) -> Project:
        return obj.item.project

    def get_queryset(self, request: HttpRequest) -> QuerySet[Annotation]:
        return super().get_queryset(request).prefetch_related(ANNOTATION_ANSWER)

    @admin.display(description="label")
    def label_names(self, obj: Annotation) -> str:
        return label_text(obj)
