"""URL routes: pages, the REST API under /api/, the admin console and login."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotator import apis, health, views
from annotator.login_limits import limit_logins

api = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", apis.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<int:project_id>/items/", apis.ItemsApi.as_view(), name="api-items-import"),
    path("projects/<int:project_id>/labels/", apis.LabelClassListApi.as_view(), name="api-labels"),
    path("projects/<int:project_id>/members/", apis.MemberListApi.as_view(), name="api-members"),
    path("projects/<int:project_id>/members/<int:user_id>/", apis.MemberDetailApi.as_view(), name="api-member"),
    path("projects/<int:project_id>/annotations/", apis.AnnotationListApi.as_view(), name="api-project-annotations"),
    path("projects/<int:project_id>/next/", apis.NextItemApi.as_view(), name="api-next"),
    path("projects/<int:project_id>/undo/", apis.UndoApi.as_view(), name="api-undo"),
    path("projects/<int:project_id>/stats/", apis.AnnotationStatsApi.as_view(), name="api-stats"),
    path("projects/<int:project_id>/model-versions/", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("projects/<int:project_id>/train/", apis.TrainApi.as_view(), name="api-train"),
    path("projects/<int:project_id>/export/", apis.ExportApi.as_view(), name="api-export"),
    path("projects/<int:project_id>/model/", apis.ModelDownloadApi.as_view(), name="api-model"),
    path("projects/<int:project_id>/agreement/", apis.AgreementApi.as_view(), name="api-agreement"),
    path("projects/<int:project_id>/dashboard/", apis.ProjectDashboardApi.as_view(), name="api-dashboard"),
    path("projects/<int:project_id>/review/", apis.ReviewCountsApi.as_view(), name="api-review"),
    path("projects/<int:project_id>/review/scan/", apis.ReviewScanApi.as_view(), name="api-review-scan"),
    path("projects/<int:project_id>/review/next/", apis.ReviewNextApi.as_view(), name="api-review-next"),
    path("items/<int:item_id>/review/", apis.ItemReviewApi.as_view(), name="api-item-review"),
    path("projects/<int:project_id>/imports/", apis.JobImportApi.as_view(), name="api-job-import"),
    path("projects/<int:project_id>/exports/", apis.JobExportApi.as_view(), name="api-job-export"),
    path("projects/<int:project_id>/jobs/", apis.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/download/", apis.JobDownloadApi.as_view(), name="api-job-download"),
    path("items/<int:item_id>/", apis.ItemDetailApi.as_view(), name="api-item"),
    path("items/<int:item_id>/annotations/", apis.AnnotationCreateApi.as_view(), name="api-annotations"),
    path("items/<int:item_id>/image/", apis.ItemImageApi.as_view(), name="api-item-image"),
    path("items/<int:item_id>/skip/", apis.ItemSkipApi.as_view(), name="api-skip"),
    path("items/<int:item_id>/release/", apis.ItemReleaseApi.as_view(), name="api-release"),
]

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/label/", views.label_page, name="label"),
    path("projects/<int:project_id>/review/", views.review_page, name="review"),
    path("projects/<int:project_id>/upload/", views.project_upload, name="project-upload"),
    path("projects/<int:project_id>/train/", views.project_train, name="project-train"),
    path("projects/<int:project_id>/members/", views.project_members, name="project-members"),
    path("projects/<int:project_id>/classes/", views.project_class_add, name="project-class-add"),
    path("projects/<int:project_id>/export/", views.project_export, name="project-export"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project-settings"),
    path("account/", views.account, name="account"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page, and its set-up script from ?script (no inline script, for the Content-Security-Policy)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(api)),
    path("health/", health.web, name="health"),
    path("health/workers/", health.workers, name="health-workers"),
    path("accounts/login/", limit_logins(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin's own login page, under the same limits (before the admin's routes, which it shadows)
    path("admin/login/", limit_logins(admin.site.login)),
    path("admin/", admin.site.urls),
]

handler404 = "annotator.health.api_aware_not_found"
handler500 = "annotator.health.api_aware_server_error"
