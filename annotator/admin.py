"""The admin console: every model with list columns, filters, search and actions.

Actions call services; list pages read related rows with joins and counts with subqueries, so a
page costs the same few queries whatever the number of rows on it.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from annotator import selectors, services
from annotator.models import (
    Annotation,
    Item,
    Job,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    ReviewAction,
    ReviewStatus,
    label_class_name_clean,
)
from annotator.templatetags.figures import accuracy_text

User = get_user_model()
NONE = "–"


def _count(items: QuerySet[Item]) -> Coalesce:
    """How many of ``items`` belong to the outer project row, as a subquery (0 when none)."""
    counts = items.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def _ids(queryset: QuerySet[Any]) -> list[int]:
    return list(queryset.values_list("id", flat=True))


def _labels(obj: Item | Annotation) -> str:
    """The single label's name, or a multi-label row's class names."""
    if obj.label_id is not None:
        return obj.label.name
    return ", ".join(obj.labels or []) or NONE


class IdSearchMixin:
    """Search also finds the row whose id is the search term."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and int(term) < 2**63:
            found |= queryset.filter(id=int(term))
        return found, duplicates


class LabelFilter(admin.SimpleListFilter):
    """Filter by class, named with its project (class names repeat across projects); only the
    filtered project's classes when a project is chosen."""

    title = "label"
    parameter_name = "label"
    project_parameter = "project__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[int, str]]:
        classes = LabelClass.objects.select_related("project").order_by("project__name", "project_id", "index")
        project = request.GET.get(self.project_parameter, "")
        if project.isdigit():
            classes = classes.filter(project_id=int(project))
        return [(c.id, f"{c.project.name} / {c.name}") for c in classes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(label_id=int(value)) if value and value.isdigit() else queryset


class AnnotationLabelFilter(LabelFilter):
    project_parameter = "item__project__id__exact"


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


class LabelClassInline(admin.TabularInline):
    """The project's classes in order, read only: a class is added, renamed or deleted on its own page
    (``LabelClassAdmin``), through the services that keep stored answers and class indices valid."""

    model = LabelClass
    extra = 0
    fields = readonly_fields = ["index", "name", "hotkey"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["project"]
    verbose_name_plural = "project memberships"


admin.site.unregister(User)


@admin.register(User)
class AnnotatorUserAdmin(UserAdmin):
    """Django's user admin with the user's project memberships on their page."""

    inlines = [*UserAdmin.inlines, UserMembershipInline]


@admin.register(Project)
class ProjectAdmin(IdSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "model_family",
        "strategy",
        "multi_label",
        "items",
        "labeled",
        "flagged",
        "model",
        "training",
        "created_by",
        "created",
    ]
    list_filter = ["model_family", "strategy", "multi_label", "training_requested", "created"]
    list_select_related = ["created_by"]
    search_fields = ["name"]
    autocomplete_fields = ["created_by"]
    readonly_fields = ["created", "training_requested_at", "training_lock_until", "review_scanned_at"]
    inlines = [LabelClassInline, MembershipInline]
    actions = ["retrain", "release_stale_leases", "scan_label_errors", "export_csv"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        ready = ModelVersion.objects.filter(project=OuterRef("pk"), status=ModelVersion.Status.READY)
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_items=_count(Item.objects.all()),
                n_labeled=_count(Item.objects.filter(status=Item.Status.LABELED)),
                n_flagged=_count(Item.objects.filter(review_status=ReviewStatus.FLAGGED)),
                model_number=Subquery(ready.order_by("-number").values("number")[:1]),
            )
        )

    @admin.display(description="items", ordering="n_items")
    def items(self, obj: Project) -> int:
        return obj.n_items

    @admin.display(description="labeled", ordering="n_labeled")
    def labeled(self, obj: Project) -> int:
        return obj.n_labeled

    @admin.display(description="flagged", ordering="n_flagged")
    def flagged(self, obj: Project) -> int:
        return obj.n_flagged

    @admin.display(description="model", ordering="model_number")
    def model(self, obj: Project) -> str:
        return NONE if obj.model_number is None else f"v{obj.model_number}"

    @admin.display(description="training")
    def training(self, obj: Project) -> str:
        if obj.training_lock_until is not None and obj.training_lock_until > timezone.now():
            return "running"
        return "requested" if obj.training_requested else NONE

    @admin.action(description="Retrain the selected projects now")
    def retrain(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        ids = _ids(queryset)
        for project_id in ids:
            services.training_request(project_id=project_id)
        self.message_user(request, f"Retraining scheduled for {len(ids)} project(s).", messages.SUCCESS)

    @admin.action(description="Release expired leases of the selected projects")
    def release_stale_leases(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        released = services.item_leases_release(project_ids=_ids(queryset), expired_only=True)
        self.message_user(request, f"Released {released} expired lease(s).", messages.SUCCESS)

    @admin.action(description="Scan the selected projects for likely label errors")
    def scan_label_errors(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        ids = _ids(queryset)
        for project_id in ids:
            services.review_scan_request(project_id=project_id)
        self.message_user(request, f"Label-error scan scheduled for {len(ids)} project(s).", messages.SUCCESS)

    @admin.action(description="Export the selected projects as CSV (a background job each)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        jobs = [services.job_export_request(project=p, user=request.user, fmt="csv") for p in queryset]
        ids = ", ".join(str(job.id) for job in jobs)
        self.message_user(request, f"Queued {len(jobs)} CSV export job(s): {ids}.", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    list_select_related = ["project", "user"]
    search_fields = ["project__name", "user__username", "user__email"]
    autocomplete_fields = ["project", "user"]


class LabelClassForm(forms.ModelForm):
    """A class's name and hotkey, checked as on every other path (``services.label_class_check``)."""

    class Meta:
        model = LabelClass
        fields = ["project", "name", "hotkey"]

    def clean_name(self) -> str:
        return label_class_name_clean(self.cleaned_data["name"])  # its ValidationError is the field's error

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        editing = self.instance.pk is not None
        project = self.instance.project if editing else cleaned.get("project")
        if project is not None and "name" in cleaned:
            try:
                cleaned["name"], hotkey = services.label_class_check(
                    project=project,
                    name=cleaned["name"],
                    hotkey=cleaned.get("hotkey") or None,
                    label_class=self.instance if editing else None,
                )
            except services.ServiceError as exc:
                raise forms.ValidationError(str(exc)) from exc
            if editing:
                cleaned["hotkey"] = hotkey
        return cleaned


#: How the delete page words what refers to a class, one and many (``selectors.label_class_uses``).
CLASS_USES = {
    "labeled": ("item labeled with it", "items labeled with it"),
    "annotations": ("annotation (history included)", "annotations (history included)"),
    "predicted": ("pre-label", "pre-labels"),
    "reviewed": ("review decision or suggestion", "review decisions or suggestions"),
}


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    """Classes are appended (the next index), renamed with every stored answer that names them, and
    deleted only while nothing refers to them: all through the services."""

    form = LabelClassForm
    list_display = ["name", "project", "index", "hotkey"]
    list_filter = ["project"]
    list_select_related = ["project"]
    search_fields = ["name", "project__name"]
    autocomplete_fields = ["project"]

    def get_readonly_fields(self, request: HttpRequest, obj: LabelClass | None = None) -> list[str]:
        """The index is given (the next one), and with the project fixed once the class exists."""
        return ["project", "index"] if obj is not None else ["index"]

    def save_model(self, request: HttpRequest, obj: LabelClass, form: forms.ModelForm, change: bool) -> None:
        if change:
            data = form.cleaned_data
            saved = services.label_class_update(label_class=obj, name=data["name"], hotkey=data.get("hotkey", ""))
        else:
            saved = services.label_class_add(project=obj.project, name=obj.name, hotkey=obj.hotkey or None)
        obj.pk, obj.index, obj.name, obj.hotkey = saved.pk, saved.index, saved.name, saved.hotkey

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict, set, list[str]]:
        """A class that answers, pre-labels or reviews refer to is not deleted (the answers would go,
        and the models' outputs would shift): the delete page says what refers to it instead."""
        refused = []
        for label_class in objs:
            uses = selectors.label_class_uses(label_class=label_class)
            if uses:
                said = ", ".join(f"{n} {CLASS_USES[kind][n != 1]}" for kind, n in uses.items())
                refused.append(f"{label_class.project} / {label_class}: {said} (a class can be renamed instead)")
        if refused:
            return [], {}, set(), refused
        return super().get_deleted_objects(objs, request)


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
        return _labels(obj)

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
        released = services.item_leases_release(item_ids=_ids(queryset))
        self.message_user(request, f"Released {released} lease(s).", messages.SUCCESS)

    @admin.action(description="Review: keep the selected items' labels (clears their flags)")
    def review_keep(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        self._review(request, queryset, ReviewAction.KEEP, "kept the label of")

    @admin.action(description="Review: mark the selected items ambiguous (left out of training and export)")
    def review_ambiguous(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        self._review(request, queryset, ReviewAction.AMBIGUOUS, "marked ambiguous")

    def _review(self, request: HttpRequest, queryset: QuerySet[Item], action: str, done: str) -> None:
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
        return _labels(obj)


def _percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.0%}"


def _preview(text: str) -> str:
    return Truncator(text).chars(80) if text else NONE


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions are made by training runs, so they are not added here; the status can be corrected."""

    list_display = [
        "project",
        "number",
        "status",
        "model_family",
        "strategy",
        "n_labels",
        "val_accuracy",
        "progress_done",
        "error_preview",
        "created",
        "finished",
    ]
    list_filter = ["status", "model_family", "strategy", "project"]
    list_select_related = ["project"]
    search_fields = ["project__name", "error"]
    date_hierarchy = "created"
    readonly_fields = [
        "project",
        "number",
        "strategy",
        "model_family",
        "n_labels",
        "progress",
        "metrics_table",
        "weights",
        "error",
        "created",
        "finished",
    ]
    exclude = ["metrics"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="accuracy")
    def val_accuracy(self, obj: ModelVersion) -> str:
        return accuracy_text(obj.metrics)

    @admin.display(description="progress", ordering="progress")
    def progress_done(self, obj: ModelVersion) -> str:
        return _percent(obj.progress)

    @admin.display(description="error")
    def error_preview(self, obj: ModelVersion) -> str:
        return _preview(obj.error)

    @admin.display(description="metrics")
    def metrics_table(self, obj: ModelVersion) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.metrics or {}, indent=2, sort_keys=True))


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs are queued by the import and export pages (or re-run here), so they are not added here."""

    list_display = [
        "id",
        "project",
        "kind",
        "status",
        "progress_done",
        "export_format",
        "created_by",
        "created",
        "finished",
        "download",
        "error_preview",
    ]
    list_filter = ["kind", "status", "project", "created"]
    search_fields = ["project__name", "error"]
    list_select_related = ["project", "created_by"]
    date_hierarchy = "created"
    readonly_fields = ["project", "kind", "progress", "params", "summary", "file", "created_by", "created", "finished"]
    actions = ["rerun"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress", ordering="progress")
    def progress_done(self, obj: Job) -> str:
        return _percent(obj.progress)

    @admin.display(description="format")
    def export_format(self, obj: Job) -> str:
        return (obj.params or {}).get("format") or NONE

    @admin.display(description="file")
    def download(self, obj: Job) -> str:
        if obj.kind != Job.Kind.EXPORT or obj.status != Job.Status.DONE or not obj.file:
            return NONE
        return format_html('<a href="{}">download</a>', reverse("api-job-download", kwargs={"job_id": obj.id}))

    @admin.display(description="error")
    def error_preview(self, obj: Job) -> str:
        return _preview(obj.error)

    @admin.action(description="Re-run the selected export jobs (a new job with the same parameters)")
    def rerun(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset.filter(kind=Job.Kind.EXPORT).select_related("project"))
        new = [services.job_rerun(job=job, user=request.user) for job in jobs]
        skipped = queryset.count() - len(jobs)
        text = f"Queued {len(new)} export job(s) again" + (f"; skipped {skipped} import job(s)." if skipped else ".")
        self.message_user(request, text, messages.SUCCESS)
