"""Projects and memberships: list columns counted with subqueries, the project's classes and members
inline, and the actions that retrain, release leases, scan for label errors and export."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone

from annotator.admin.common import NONE, IdSearchMixin, ids_of, project_count
from annotator.auth import SignedInHttpRequest
from annotator.models import Item, LabelClass, Membership, ModelVersion, Project, ReviewStatus
from annotator.services.jobs import job_export_request
from annotator.services.leasing import item_leases_release
from annotator.services.review import review_scan_request
from annotator.services.training import training_request

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class LabelClassInline(admin.TabularInline):
    """The project's classes in order, read only: a class is added, renamed or deleted on its own page
    (``LabelClassAdmin``), through the services that keep stored answers and class indices valid."""

    model = LabelClass
    extra = 0
    fields = ["index", "name", "hotkey"]
    readonly_fields = ["index", "name", "hotkey"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class _Counts(TypedDict):
    """What ``ProjectAdmin.get_queryset`` annotates each project with."""

    n_items: int
    n_labeled: int
    n_flagged: int
    model_number: int | None


@admin.register(Project)
class ProjectAdmin(IdSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "model_family",
        "strategy",
        "kind",
        "items",
        "labeled",
        "flagged",
        "serving_version",
        "training",
        "created_by",
        "created",
    ]
    list_filter = ["kind", "model_family", "strategy", "training_requested", "created"]
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
                n_items=project_count(Item.objects.all()),
                n_labeled=project_count(Item.objects.filter(status=Item.Status.LABELED)),
                n_flagged=project_count(Item.objects.filter(review_status=ReviewStatus.FLAGGED)),
                model_number=Subquery(ready.order_by("-number").values("number")[:1]),
            )
        )

    @admin.display(description="items", ordering="n_items")
    def items(self, obj: WithAnnotations[Project, _Counts]) -> int:
        return obj.n_items

    @admin.display(description="labeled", ordering="n_labeled")
    def labeled(self, obj: WithAnnotations[Project, _Counts]) -> int:
        return obj.n_labeled

    @admin.display(description="flagged", ordering="n_flagged")
    def flagged(self, obj: WithAnnotations[Project, _Counts]) -> int:
        return obj.n_flagged

    # Not named "model": that is the admin's model class (the column showed an empty Project).
    @admin.display(description="model", ordering="model_number")
    def serving_version(self, obj: WithAnnotations[Project, _Counts]) -> str:
        return NONE if obj.model_number is None else f"v{obj.model_number}"

    @admin.display(description="training")
    def training(self, obj: Project) -> str:
        if obj.training_lock_until is not None and obj.training_lock_until > timezone.now():
            return "running"
        return "requested" if obj.training_requested else NONE

    def _schedule(
        self, request: HttpRequest, queryset: QuerySet[Project], schedule: Callable[..., Any], what: str
    ) -> None:
        """Call ``schedule(project_id=...)`` for each selected project, and say so."""
        ids = ids_of(queryset)
        for project_id in ids:
            schedule(project_id=project_id)
        self.message_user(request, f"{what} scheduled for {len(ids)} project(s).", messages.SUCCESS)

    @admin.action(description="Retrain the selected projects now")
    def retrain(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        self._schedule(request, queryset, training_request, "Retraining")

    @admin.action(description="Release expired leases of the selected projects")
    def release_stale_leases(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        released = item_leases_release(project_ids=ids_of(queryset), expired_only=True)
        self.message_user(request, f"Released {released} expired lease(s).", messages.SUCCESS)

    @admin.action(description="Scan the selected projects for likely label errors")
    def scan_label_errors(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        self._schedule(request, queryset, review_scan_request, "Label-error scan")

    @admin.action(description="Export the selected projects as CSV (a background job each)")
    def export_csv(self, request: SignedInHttpRequest, queryset: QuerySet[Project]) -> None:
        jobs = [job_export_request(project=p, user=request.user, fmt="csv") for p in queryset]
        ids = ", ".join(str(job.id) for job in jobs)
        self.message_user(request, f"Queued {len(jobs)} CSV export job(s): {ids}.", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    list_select_related = ["project", "user"]
    search_fields = ["project__name", "user__username", "user__email"]
    autocomplete_fields = ["project", "user"]
