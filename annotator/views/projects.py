"""The project pages: the list and New project form, a project's page and its managers' actions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseBase, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from annotator.auth import SignedInHttpRequest
from annotator.formats.exports import EXPORT_FORMAT_NAMES, export_formats
from annotator.kinds import kind_of
from annotator.models import (
    Membership,
    Project,
)
from annotator.responses import export_response
from annotator.selectors.classes import project_classes
from annotator.selectors.dashboard import annotation_stats
from annotator.selectors.model_versions import (
    learning_curve,
    model_version_confusion,
    model_version_current,
    model_version_list,
)
from annotator.selectors.projects import (
    PROJECT_CREATE_REFUSED,
    membership_list,
    project_counts,
    project_list_for_user,
    user_can_create_projects,
)
from annotator.selectors.review import review_counts
from annotator.services.classes import label_class_add
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_uploads
from annotator.services.jobs import job_upload_import_request
from annotator.services.projects import project_create, project_settings_update
from annotator.services.training import training_request
from annotator.views.charts import confusion_table, learning_curve_chart
from annotator.views.common import forbidden, managers_only, project_or_404, uploads_named, user_is_manager
from annotator.views.forms import MemberForm, ProjectForm, ProjectSettingsForm, settings_initial


@login_required
def project_list(request: SignedInHttpRequest) -> HttpResponse:
    """The user's projects, and the "New project" form for those an admin gave the permission."""
    can_create = user_can_create_projects(user=request.user)
    if request.method == "POST" and not can_create:
        return forbidden(PROJECT_CREATE_REFUSED)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        labels = form.cleaned_data.pop("labels")  # names, or {"name", "hotkey"}: as the API takes them
        # A field left empty (or not sent) takes the project's default.
        options = {name: value for name, value in form.cleaned_data.items() if value not in ("", None)}
        try:
            project = project_create(user=request.user, labels=labels, **options)
        except ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Project “{project.name}” created. Add images to start.")
            return redirect("project-detail", project_id=project.id)
    projects = project_list_for_user(user=request.user).order_by("-created")
    rows = [(p, project_counts(project=p)) for p in projects]
    context = {"rows": rows, "form": form if can_create else None, "refused": PROJECT_CREATE_REFUSED}
    return render(request, "annotator/project_list.html", context)


#: The project page's sections that follow the project's state (templates/annotator/partials/
#: project_<name>.html): the page renders them, and ``?partial=live`` sends them again, as JSON.
LIVE_SECTIONS = ("stats", "labels", "classes")
LIVE_SECTIONS_MANAGERS = ("review", "model")


def _live_context(project: Project, *, is_manager: bool) -> dict[str, Any]:
    """What the live sections show, read now: counts, the serving model, label statistics; managers
    also get the review's counts and the versions with where the serving one goes wrong."""
    current = model_version_current(project=project)
    context: dict[str, Any] = {
        "project": project,
        "is_manager": is_manager,
        "counts": project_counts(project=project),
        "current": current,
        "stats": annotation_stats(project=project),
        "classes": project_classes(project=project),
    }
    if is_manager:
        context["review"] = review_counts(project=project)
        context["versions"] = list(model_version_list(project=project).order_by("-number")[:50])
        confusion = model_version_confusion(version=current) if current is not None else None
        context["confusion"] = confusion_table(confusion, multi_label=project.multi_label) if confusion else None
    return context


def _live_sections(request: SignedInHttpRequest, context: dict[str, Any]) -> JsonResponse:
    """The live sections' HTML, by name, as the page's script (static/js/live.js) swaps them in."""
    names = LIVE_SECTIONS + (LIVE_SECTIONS_MANAGERS if context["is_manager"] else ())
    sections = {
        name: render_to_string(f"annotator/partials/project_{name}.html", context, request=request) for name in names
    }
    response = JsonResponse({"sections": sections})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def project_detail(request: SignedInHttpRequest, project_id: int) -> HttpResponse:
    """The project; its managers also get the dashboard. ``?partial=learning-curve`` renders only the
    curve's SVG, which the dashboard's script swaps in when a new version is ready; ``?partial=live``
    the sections that follow the project's state (``LIVE_SECTIONS``), which the page polls."""
    project = project_or_404(request, project_id)
    is_manager = user_is_manager(request, project)
    partial = request.GET.get("partial")
    if partial == "learning-curve":
        if not is_manager:
            return HttpResponseForbidden("Only the project's managers see the dashboard.")
        chart = learning_curve_chart(learning_curve(project=project))
        return render(request, "annotator/_learning_curve.html", {"chart": chart})
    if partial == "live":
        return _live_sections(request, _live_context(project, is_manager=is_manager))
    if partial is not None:
        return HttpResponseBadRequest("partial is learning-curve or live.")
    context = {
        **_live_context(project, is_manager=is_manager),
        "settings_form": ProjectSettingsForm(initial=settings_initial(project)),
        "export_formats": [(fmt, EXPORT_FORMAT_NAMES[fmt]) for fmt in export_formats(kind_of(project))],
    }
    if is_manager:
        context["members"] = list(membership_list(project=project).order_by("user__username"))
        context["member_form"] = MemberForm()
        context["roles"] = Membership.Role.choices
    return render(request, "annotator/project_detail.html", context)


@managers_only("change its settings")
@require_POST
def project_settings(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    form = ProjectSettingsForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(error) for error in errors)}")
        return redirect("project-detail", project_id=project.id)
    options = {**form.cleaned_data, "name": form.cleaned_data["name"] or None}
    if "instructions" not in request.POST:  # a form without the field leaves them as they are
        options["instructions"] = None
    try:
        project_settings_update(project=project, **options)
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Settings saved.")
    return redirect("project-detail", project_id=project.id)


@managers_only("add images")
@require_POST
def project_upload(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Choose one or more images or .zip files first.")
        return redirect("project-detail", project_id=project.id)
    if request.POST.get("background") or sum(f.size or 0 for f in files) > settings.IMPORT_BACKGROUND_BYTES:
        job = job_upload_import_request(project=project, user=request.user, files=uploads_named(files))
        messages.success(request, f"Import job {job.id} runs in the background: follow it under Background jobs.")
        return redirect("project-detail", project_id=project.id)
    summary = items_import_uploads(project=project, files=uploads_named(files), user=request.user)
    text = (
        f"Imported {summary.imported} images ({summary.labeled} with labels), skipped {summary.duplicates} duplicates."
    )
    messages.success(request, text)
    for rejected in summary.rejected[:20]:
        messages.warning(request, f"Rejected {rejected['name']}: {rejected['error']}")
    if len(summary.rejected) > 20:
        messages.warning(request, f"… and {len(summary.rejected) - 20} more files were rejected.")
    return redirect("project-detail", project_id=project.id)


@managers_only("add classes")
@require_POST
def project_class_add(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    try:
        label_class = label_class_add(
            project=project, name=request.POST.get("name", ""), hotkey=request.POST.get("hotkey", "").strip() or None
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        key = f" (key {label_class.hotkey})" if label_class.hotkey else ""
        messages.success(request, f"Class “{label_class.name}”{key} added; the next model version learns it.")
    return redirect("project-detail", project_id=project.id)


@managers_only("start a retrain")
@require_POST
def project_train(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    training_request(project_id=project.id)
    messages.success(request, "Retraining scheduled; the queue is re-ranked when it finishes.")
    return redirect("project-detail", project_id=project.id)


@managers_only("export")
@require_GET
def project_export(request: SignedInHttpRequest, project: Project) -> HttpResponseBase:
    try:
        include_ambiguous = request.GET.get("include_ambiguous", "") in {"1", "true", "yes"}
        return export_response(project, request.GET.get("format", "csv"), include_ambiguous=include_ambiguous)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
