"""Reads: what pages, the API and the worker ask of the database, one module per domain.

Selectors return objects, dicts or ``None`` (never an HTTP error: the API and the pages turn a
missing object into their 404). Every name is re-exported here, so callers write ``selectors.<name>``.
"""

from annotator.selectors.agreement import agreement_stats, fleiss_kappa
from annotator.selectors.classes import (
    COVERAGE_LABELS_PER_CLASS,
    ClassOrder,
    class_coverage,
    class_order,
    label_class_uses,
    labels_per_class,
    project_classes,
)
from annotator.selectors.dashboard import annotation_stats, annotator_throughput, project_dashboard
from annotator.selectors.exports import export_rows
from annotator.selectors.items import annotation_list, item_get_for_user, item_list, item_with_names
from annotator.selectors.jobs import job_get_for_user, job_list
from annotator.selectors.model_versions import learning_curve, model_version_current, model_version_list, retrain_status
from annotator.selectors.projects import (
    PROJECT_CREATE_PERMISSION,
    PROJECT_CREATE_REFUSED,
    membership_list,
    prelabels_visible,
    project_counts,
    project_get_for_user,
    project_list_for_user,
    project_role,
    project_roles_for_user,
    user_can_create_projects,
)
from annotator.selectors.review import ReviewData, item_votes, review_counts, review_data, review_item, review_next
from annotator.selectors.training_data import TrainingData, multi_hot, training_data

__all__ = [
    "COVERAGE_LABELS_PER_CLASS",
    "PROJECT_CREATE_PERMISSION",
    "PROJECT_CREATE_REFUSED",
    "ClassOrder",
    "ReviewData",
    "TrainingData",
    "agreement_stats",
    "annotation_list",
    "annotation_stats",
    "annotator_throughput",
    "class_coverage",
    "class_order",
    "export_rows",
    "fleiss_kappa",
    "item_get_for_user",
    "item_list",
    "item_votes",
    "item_with_names",
    "job_get_for_user",
    "job_list",
    "label_class_uses",
    "labels_per_class",
    "learning_curve",
    "membership_list",
    "model_version_current",
    "model_version_list",
    "multi_hot",
    "prelabels_visible",
    "project_classes",
    "project_counts",
    "project_dashboard",
    "project_get_for_user",
    "project_list_for_user",
    "project_role",
    "project_roles_for_user",
    "retrain_status",
    "review_counts",
    "review_data",
    "review_item",
    "review_next",
    "training_data",
    "user_can_create_projects",
]
