"""Writes: every change to projects, items, annotations, model versions and jobs goes through the
services, one module per domain. Services are atomic where they must be, take keyword-only arguments,
raise ``ServiceError`` with a message for the user, and enqueue Celery work through
``services.enqueue`` once their transaction commits, so that a worker never sees uncommitted rows.

This package's face re-exports the services callers use (``services.annotation_create(...)``); the
modules inside import each other directly, never through here. The workers' runs
(``services.training_run``) are not re-exported: they bring the training code with them.
"""

from annotator.services.accounts import api_token_revoke, api_token_rotate
from annotator.services.annotations import (
    UNDO_TOKEN_SECONDS,
    annotation_create,
    annotation_labels_check,
    annotation_undo,
)
from annotator.services.classes import (
    DEFAULT_HOTKEYS,
    RESERVED_KEYS,
    label_class_add,
    label_class_check,
    label_class_update,
    project_class_names,
)
from annotator.services.consensus import item_consensus
from annotator.services.errors import ConflictError, ServiceError
from annotator.services.exports import export_file_write
from annotator.services.imports import (
    IMPORT_CHUNK,
    ImportSummary,
    import_folder_checked,
    import_limits,
    items_ensure_cached,
    items_import,
    items_import_folder,
    items_import_uploads,
)
from annotator.services.jobs import (
    JOB_EXPORT_FORMATS,
    JOB_PROGRESS_EVERY_S,
    JOB_REJECTED_KEPT,
    job_export_request,
    job_file_path,
    job_import_request,
    job_rerun,
    job_run,
    job_upload_import_request,
)
from annotator.services.leasing import item_lease_next, item_leases_release, item_release, item_skip
from annotator.services.members import membership_add, membership_remove
from annotator.services.model_files import MODEL_EXPORT_FILES, model_accuracy, model_readme, model_version_export
from annotator.services.projects import project_create, project_settings_update
from annotator.services.review import item_review, review_flags_publish, review_scan_request
from annotator.services.training import (
    INTERRUPTED,
    TrainingHeartbeat,
    cold_start_pending,
    cold_start_reconcile,
    cold_start_request,
    items_cold_start_publish,
    labeled_count,
    model_version_fail,
    model_version_progress,
    model_version_publish,
    training_begin,
    training_end,
    training_maybe_request,
    training_reconcile,
    training_request,
    training_request_overdue,
    training_resend,
)

__all__ = [
    "DEFAULT_HOTKEYS",
    "IMPORT_CHUNK",
    "INTERRUPTED",
    "JOB_EXPORT_FORMATS",
    "JOB_PROGRESS_EVERY_S",
    "JOB_REJECTED_KEPT",
    "MODEL_EXPORT_FILES",
    "RESERVED_KEYS",
    "UNDO_TOKEN_SECONDS",
    "ConflictError",
    "ImportSummary",
    "ServiceError",
    "TrainingHeartbeat",
    "annotation_create",
    "annotation_labels_check",
    "annotation_undo",
    "api_token_revoke",
    "api_token_rotate",
    "cold_start_pending",
    "cold_start_reconcile",
    "cold_start_request",
    "export_file_write",
    "import_folder_checked",
    "import_limits",
    "item_consensus",
    "item_lease_next",
    "item_leases_release",
    "item_release",
    "item_review",
    "item_skip",
    "items_cold_start_publish",
    "items_ensure_cached",
    "items_import",
    "items_import_folder",
    "items_import_uploads",
    "job_export_request",
    "job_file_path",
    "job_import_request",
    "job_rerun",
    "job_run",
    "job_upload_import_request",
    "label_class_add",
    "label_class_check",
    "label_class_update",
    "labeled_count",
    "membership_add",
    "membership_remove",
    "model_accuracy",
    "model_readme",
    "model_version_export",
    "model_version_fail",
    "model_version_progress",
    "model_version_publish",
    "project_class_names",
    "project_create",
    "project_settings_update",
    "review_flags_publish",
    "review_scan_request",
    "training_begin",
    "training_end",
    "training_maybe_request",
    "training_reconcile",
    "training_request",
    "training_request_overdue",
    "training_resend",
]
