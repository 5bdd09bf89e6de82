"""URL routes: pages, the REST API under /api/, the admin console and login."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotator import health
from annotator.login_limits import limit_logins
from annotator.views import account, browse, labeling, members, projects

urlpatterns = [
    path("", projects.project_list, name="project-list"),
    path("projects/<int:project_id>/", projects.project_detail, name="project-detail"),
    path("projects/<int:project_id>/label/", labeling.label_page, name="label"),
    path("projects/<int:project_id>/review/", labeling.review_page, name="review"),
    path("projects/<int:project_id>/items/", browse.items_browser, name="items-browser"),
    path("projects/<int:project_id>/upload/", projects.project_upload, name="project-upload"),
    path("projects/<int:project_id>/train/", projects.project_train, name="project-train"),
    path("projects/<int:project_id>/members/", members.project_members, name="project-members"),
    path("projects/<int:project_id>/classes/", projects.project_class_add, name="project-class-add"),
    path("projects/<int:project_id>/export/", projects.project_export, name="project-export"),
    path("projects/<int:project_id>/settings/", projects.project_settings, name="project-settings"),
    path("account/", account.account, name="account"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page, and its set-up script from ?script (no inline script, for the Content-Security-Policy)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotator.api.urls")),
    path("health/", health.web, name="health"),
    # Browsers ask for /favicon.ico where a page names no icon (the API's JSON, the admin's pages).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("health/workers/", health.workers, name="health-workers"),
    path("accounts/login/", limit_logins(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/change/", account.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/change/done/", account.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/password/reset/", account.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/done/", account.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        account.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", account.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/invitation/<uidb64>/<token>/", account.InvitationConfirmView.as_view(), name="invitation-confirm"),
    # The admin's own login page, under the same limits (before the admin's routes, which it shadows)
    path("admin/login/", limit_logins(admin.site.login)),
    path("admin/", admin.site.urls),
]

handler404 = "annotator.health.api_aware_not_found"
handler500 = "annotator.health.api_aware_server_error"
