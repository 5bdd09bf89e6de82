"""The API's routes, mounted under ``/api/`` by ``annotator.urls``."""

from django.urls import path

from annotator.api import (
    annotations,
    classes,
    dashboard,
    exports,
    items,
    jobs,
    members,
    model_versions,
    projects,
    review,
)

urlpatterns = [
    path("projects/", projects.ProjectListCreateApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<int:project_id>/items/", items.ItemsApi.as_view(), name="api-items-import"),
    path("projects/<int:project_id>/labels/", classes.LabelClassListApi.as_view(), name="api-labels"),
    path("projects/<int:project_id>/members/", members.MemberListApi.as_view(), name="api-members"),
    path("projects/<int:project_id>/members/<int:user_id>/", members.MemberDetailApi.as_view(), name="api-member"),
    path(
        "projects/<int:project_id>/annotations/",
        annotations.AnnotationListApi.as_view(),
        name="api-project-annotations",
    ),
    path("projects/<int:project_id>/next/", items.NextItemApi.as_view(), name="api-next"),
    path("projects/<int:project_id>/undo/", annotations.UndoApi.as_view(), name="api-undo"),
    path("projects/<int:project_id>/stats/", annotations.AnnotationStatsApi.as_view(), name="api-stats"),
    path(
        "projects/<int:project_id>/model-versions/",
        model_versions.ModelVersionListApi.as_view(),
        name="api-model-versions",
    ),
    path(
        "projects/<int:project_id>/model-versions/<int:number>/",
        model_versions.ModelVersionDetailApi.as_view(),
        name="api-model-version",
    ),
    path("projects/<int:project_id>/train/", model_versions.TrainApi.as_view(), name="api-train"),
    path("projects/<int:project_id>/export/", exports.ExportApi.as_view(), name="api-export"),
    path("projects/<int:project_id>/model/", model_versions.ModelDownloadApi.as_view(), name="api-model"),
    path("projects/<int:project_id>/agreement/", dashboard.AgreementApi.as_view(), name="api-agreement"),
    path("projects/<int:project_id>/dashboard/", dashboard.ProjectDashboardApi.as_view(), name="api-dashboard"),
    path("projects/<int:project_id>/review/", review.ReviewCountsApi.as_view(), name="api-review"),
    path("projects/<int:project_id>/review/scan/", review.ReviewScanApi.as_view(), name="api-review-scan"),
    path("projects/<int:project_id>/review/next/", review.ReviewNextApi.as_view(), name="api-review-next"),
    path("items/<int:item_id>/review/", review.ItemReviewApi.as_view(), name="api-item-review"),
    path("projects/<int:project_id>/imports/", jobs.JobImportApi.as_view(), name="api-job-import"),
    path("projects/<int:project_id>/exports/", jobs.JobExportApi.as_view(), name="api-job-export"),
    path("projects/<int:project_id>/jobs/", jobs.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<int:job_id>/", jobs.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/download/", jobs.JobDownloadApi.as_view(), name="api-job-download"),
    path("items/<int:item_id>/", items.ItemDetailApi.as_view(), name="api-item"),
    path("items/<int:item_id>/annotations/", annotations.AnnotationCreateApi.as_view(), name="api-annotations"),
    path("items/<int:item_id>/image/", items.ItemImageApi.as_view(), name="api-item-image"),
    path("items/<int:item_id>/skip/", items.ItemSkipApi.as_view(), name="api-skip"),
    path("items/<int:item_id>/release/", items.ItemReleaseApi.as_view(), name="api-release"),
    path("projects/<int:project_id>/release/", items.ProjectReleaseApi.as_view(), name="api-project-release"),
]
