"""Server-rendered pages, thin: read through selectors, write through services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator import selectors, services
from annotator.models import Membership, QueryStrategy
from annotator.responses import export_response


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    labels = forms.CharField(
        max_length=5000, help_text="Class names in order, separated by commas.", widget=forms.TextInput
    )
    strategy = forms.ChoiceField(choices=QueryStrategy.choices, initial=QueryStrategy.ENTROPY)
    retrain_every = forms.IntegerField(min_value=1, max_value=100_000, initial=10)
    input_size = forms.IntegerField(min_value=8, max_value=512, initial=32)


class ProjectSettingsForm(forms.Form):
    show_prelabels = forms.BooleanField(required=False, help_text="Show the model's pre-labels to annotators.")
    labels_per_item = forms.IntegerField(
        min_value=1, max_value=20, help_text="Different annotators who label each item."
    )
    lease_seconds = forms.IntegerField(min_value=10, max_value=86_400, help_text="How long /next holds an item.")
    retrain_every = forms.IntegerField(min_value=1, max_value=100_000, help_text="Retrain after this many new labels.")
    strategy = forms.ChoiceField(choices=QueryStrategy.choices)


def _settings_initial(project) -> dict:
    fields = ["show_prelabels", "labels_per_item", "lease_seconds", "retrain_every", "strategy"]
    return {name: getattr(project, name) for name in fields}


def _is_manager(request: HttpRequest, project) -> bool:
    return selectors.project_role(user=request.user, project=project) == Membership.Role.MANAGER


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        labels = [part.strip() for part in form.cleaned_data.pop("labels").split(",") if part.strip()]
        try:
            project = services.project_create(user=request.user, labels=labels, **form.cleaned_data)
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Project “{project.name}” created. Add images to start.")
            return redirect("project-detail", project_id=project.id)
    projects = selectors.project_list_for_user(user=request.user).order_by("-created")
    rows = [(p, selectors.project_counts(project=p)) for p in projects]
    return render(request, "annotator/project_list.html", {"rows": rows, "form": form})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    context = {
        "project": project,
        "classes": selectors.project_classes(project=project),
        "counts": selectors.project_counts(project=project),
        "versions": list(selectors.model_version_list(project=project).order_by("-number")[:50]),
        "current": selectors.model_version_current(project=project),
        "is_manager": _is_manager(request, project),
        "stats": selectors.annotation_stats(project=project),
        "settings_form": ProjectSettingsForm(initial=_settings_initial(project)),
    }
    return render(request, "annotator/project_detail.html", context)


@login_required
@require_POST
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    if not _is_manager(request, project):
        messages.error(request, "Only the project's managers may change its settings.")
        return redirect("project-detail", project_id=project.id)
    form = ProjectSettingsForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("project-detail", project_id=project.id)
    try:
        services.project_settings_update(project=project, **form.cleaned_data)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Settings saved.")
    return redirect("project-detail", project_id=project.id)


@login_required
@require_POST
def project_upload(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    if not _is_manager(request, project):
        messages.error(request, "Only the project's managers may add images.")
        return redirect("project-detail", project_id=project.id)
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Choose one or more images or .zip files first.")
        return redirect("project-detail", project_id=project.id)
    summary = services.items_import_uploads(project=project, files=[(f.name, f) for f in files], user=request.user)
    text = (
        f"Imported {summary.imported} images ({summary.labeled} with labels), skipped {summary.duplicates} duplicates."
    )
    messages.success(request, text)
    for rejected in summary.rejected[:20]:
        messages.warning(request, f"Rejected {rejected['name']}: {rejected['error']}")
    if len(summary.rejected) > 20:
        messages.warning(request, f"… and {len(summary.rejected) - 20} more files were rejected.")
    return redirect("project-detail", project_id=project.id)


@login_required
@require_POST
def project_train(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    if _is_manager(request, project):
        services.training_request(project_id=project.id)
        messages.success(request, "Retraining scheduled; the queue is re-ranked when it finishes.")
    else:
        messages.error(request, "Only the project's managers may start a retrain.")
    return redirect("project-detail", project_id=project.id)


@login_required
@require_GET
def project_export(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    if not _is_manager(request, project):
        messages.error(request, "Only the project's managers may export.")
        return redirect("project-detail", project_id=project.id)
    try:
        return export_response(project, request.GET.get("format", "csv"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))


@login_required
def label_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_user(user=request.user, project_id=project_id)
    classes = selectors.project_classes(project=project)
    config = {
        "project": project.id,
        "classes": [{"name": c.name, "hotkey": c.hotkey} for c in classes],
        "show_prelabels": project.show_prelabels,
    }
    context = {
        "project": project,
        "classes": classes,
        "counts": selectors.project_counts(project=project),
        "current": selectors.model_version_current(project=project),
        "config": config,
    }
    return render(request, "annotator/label.html", context)
