"""Items and their annotations: columns read with joins, filters by class, prediction and lease, and
the actions that release leases and record review decisions through the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from annotator import services
from annotator.admin.common import NONE, IdSearchMixin, ids_of, label_text
from annotator.admin.filters import AnnotationLabelFilter, LabelFilter, LeaseFilter, PredictionFilter
from annotator.auth import SignedInHttpRequest
from annotator.models import Annotation, Item, Project, ReviewAction


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
    list_select_related = ["project", "label", "pred_label", "lease_user"]
    show_full_result_count = False
    autocomplete_fields = ["project", "lease_user", "reviewed_by"]
    raw_id_fields = ["label", "pred_label", "pred_version", "review_suggested", "review_label"]
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
        ("Label", {"fields": ["status", "label", "labels", "labeled_at", "n_annotations", "agreement"]}),
        ("Queue", {"fields": ["priority", "lease_user", "lease_until"]}),
        ("Prediction", {"fields": ["pred_label", "pred_confidence", "pred_probs", "pred_version", "score"]}),
        (
            "Review",
            {
                "fields": [
                    "review_status",
                    "review_reason",
                    "review_score",
                    "review_suggested",
                    "review_confidence",
                    "review_label",
                    "review_action",
                    "reviewed_by",
                    "reviewed_at",
                ]
            },
        ),
    ]
    actions = ["release_leases", "review_keep", "review_ambiguous"]

    @admin.display(description="label", ordering="label__name")
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
        released = services.item_leases_release(item_ids=ids_of(queryset))
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
                services.item_review(item=item, user=request.user, action=action)
                reviewed += 1
            except services.ServiceError as exc:
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
    search_fields = ["item__original_name", "user__username", "label__name"]
    list_select_related = ["item__project", "label", "user"]
    show_full_result_count = False
    date_hierarchy = "created"
    raw_id_fields = ["item", "label"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created"]

    @admin.display(description="project", ordering="item__project__name")
    def project(self, obj: Annotation) -> Project:
        return obj.item.project

    @admin.display(description="label", ordering="label__name")
    def label_names(self, obj: Annotation) -> str:
        return label_text(obj)
