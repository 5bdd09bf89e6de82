"""Background import and export jobs: queued by the pages, never added here; finished exports link to
their download, and export jobs can be run again."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from annotator.admin.common import NONE, percent, preview
from annotator.auth import SignedInHttpRequest
from annotator.models import Job
from annotator.services.jobs import job_rerun


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
        return percent(obj.progress)

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
        return preview(obj.error)

    @admin.action(description="Re-run the selected export jobs (a new job with the same parameters)")
    def rerun(self, request: SignedInHttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset.filter(kind=Job.Kind.EXPORT).select_related("project"))
        new = [job_rerun(job=job, user=request.user) for job in jobs]
        skipped = queryset.count() - len(jobs)
        text = f"Queued {len(new)} export job(s) again" + (f"; skipped {skipped} import job(s)." if skipped else ".")
        self.message_user(request, text, messages.SUCCESS)
