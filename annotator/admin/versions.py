"""Model versions: made by training runs, never added here; their accuracy in the one format the
pages use, their metrics as JSON."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from annotator.admin.common import percent, preview
from annotator.models import ModelVersion
from annotator.templatetags.figures import accuracy_text


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
        return percent(obj.progress)

    @admin.display(description="error")
    def error_preview(self, obj: ModelVersion) -> str:
        return preview(obj.error)

    @admin.display(description="metrics")
    def metrics_table(self, obj: ModelVersion) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.metrics or {}, indent=2, sort_keys=True))
