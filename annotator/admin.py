"""The admin console: every model with list columns, filters and search."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from annotator import services
from annotator.models import Annotation, Item, Job, LabelClass, Membership, ModelVersion, Project


class LabelClassInline(admin.TabularInline):
    model = LabelClass
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "strategy", "retrain_every", "input_size", "created_by", "created"]
    list_filter = ["strategy", "created"]
    search_fields = ["name"]
    inlines = [LabelClassInline, MembershipInline]
    actions = ["retrain", "release_stale_leases"]

    @admin.action(description="Retrain the selected projects now")
    def retrain(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            services.training_request(project_id=project.id)
        self.message_user(request, f"Retraining scheduled for {queryset.count()} project(s).", messages.SUCCESS)

    @admin.action(description="Release expired leases of the selected projects")
    def release_stale_leases(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        released = Item.objects.filter(project__in=queryset, lease_until__lt=timezone.now()).update(
            lease_user=None, lease_until=None
        )
        self.message_user(request, f"Released {released} expired lease(s).", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    search_fields = ["project__name", "user__username"]


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "index", "hotkey"]
    list_filter = ["project"]
    search_fields = ["name", "project__name"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "project", "status", "label", "pred_label", "pred_confidence", "score"]
    list_filter = ["status", "project"]
    search_fields = ["original_name", "sha256"]
    list_select_related = ["project", "label", "pred_label"]
    raw_id_fields = ["lease_user", "pred_version"]
    readonly_fields = ["sha256", "width", "height", "cache_row", "created"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "label", "user", "source", "prelabel", "active", "duration_ms", "created"]
    list_filter = ["source", "prelabel", "active", "item__project"]
    search_fields = ["item__original_name", "user__username", "label__name"]
    list_select_related = ["item", "label", "user"]
    raw_id_fields = ["item"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "status", "strategy", "n_labels", "val_accuracy", "created", "finished"]
    list_filter = ["status", "strategy", "project"]
    search_fields = ["project__name", "error"]
    readonly_fields = ["created", "finished"]

    @admin.display(description="val. accuracy")
    def val_accuracy(self, obj: ModelVersion) -> str:
        value = (obj.metrics or {}).get("val_accuracy")
        return "–" if value is None else f"{value:.3f}"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "progress", "created_by", "created", "finished"]
    list_filter = ["kind", "status", "project"]
    search_fields = ["project__name", "error"]
    list_select_related = ["project", "created_by"]
    readonly_fields = ["created", "finished"]
    actions = ["rerun"]

    @admin.action(description="Re-run the selected export jobs (a new job with the same parameters)")
    def rerun(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset.filter(kind=Job.Kind.EXPORT).select_related("project"))
        for job in jobs:
            services.job_rerun(job=job, user=request.user)
        self.message_user(request, f"Queued {len(jobs)} export job(s) again.", messages.SUCCESS)
