"""Server-rendered pages, thin: read through selectors, write through services."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any, BinaryIO, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseBase, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.auth import SignedInHttpRequest
from annotator.formats.exports import EXPORT_FORMAT_NAMES, EXPORT_FORMATS
from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    Membership,
    ModelFamily,
    Project,
    QueryStrategy,
    Range,
    TaskKind,
)
from annotator.responses import export_response
from annotator.selectors.classes import project_classes
from annotator.selectors.dashboard import annotation_stats
from annotator.selectors.model_versions import learning_curve, model_version_current, model_version_list
from annotator.selectors.projects import (
    PROJECT_CREATE_REFUSED,
    membership_list,
    project_counts,
    project_get_for_user,
    project_list_for_user,
    project_role,
    project_roles_for_user,
    user_can_create_projects,
)
from annotator.selectors.review import review_counts
from annotator.services.accounts import api_token_revoke, api_token_rotate
from annotator.services.classes import label_class_add
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_uploads
from annotator.services.jobs import job_upload_import_request
from annotator.services.members import membership_add, membership_remove
from annotator.services.projects import project_create, project_settings_update
from annotator.services.training import training_request


def range_field(bounds: Range, **kwargs: Any) -> forms.IntegerField:
    """An integer field with the bounds and the message of a setting's one range (``models.Range``)."""
    return forms.IntegerField(
        min_value=bounds.low, max_value=bounds.high, error_messages=bounds.error_messages, **kwargs
    )


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    labels = forms.CharField(
        max_length=5000, help_text="Class names in order, separated by commas.", widget=forms.TextInput
    )
    kind = forms.ChoiceField(
        choices=TaskKind.choices,
        required=False,
        initial=TaskKind.CLASSIFICATION,
        label="Task",
        help_text="One class per image, or any number of classes per image (none is an answer too).",
    )
    model_family = forms.ChoiceField(
        choices=ModelFamily.choices,
        required=False,
        initial=ModelFamily.CNN,
        label="Model",
        help_text="Small CNN: small, simple images (digits, icons, cells); it learns from scratch. "
        "Pretrained backbone: photos and anything natural; an ImageNet MobileNetV2 computes features "
        "once and a small head learns fast. Your TorchScript backbone: a .pt file on the server.",
    )
    backbone_path = forms.CharField(
        max_length=500, required=False, help_text="For your TorchScript backbone: its file on the server."
    )
    strategy = forms.ChoiceField(choices=QueryStrategy.choices, initial=DEFAULT_STRATEGY)
    retrain_every = range_field(RETRAIN_EVERY, initial=10, help_text="Retrain after this many new labels.")
    input_size = range_field(INPUT_SIZE, initial=32, help_text="Side of the square model input, pixels.")
    allow_flips = forms.BooleanField(required=False, help_text="Mirror images in training (not for text or digits).")
    labels_per_item = range_field(
        LABELS_PER_ITEM, initial=1, required=False, help_text="Different annotators who label each item."
    )
    show_prelabels = forms.BooleanField(
        required=False, initial=True, help_text="Show annotators the model's pre-labels."
    )
    lease_seconds = range_field(
        LEASE_SECONDS, initial=300, required=False, help_text="How long an annotator holds an item."
    )


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Left empty: the name stays.")
    show_prelabels = forms.BooleanField(required=False, help_text="Show the model's pre-labels to annotators.")
    prelabel_threshold = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        label="Unsure below",
        help_text="Pre-labels less confident than this (0..1) are shown as unsure, not suggested; empty: unchanged.",
    )
    labels_per_item = range_field(LABELS_PER_ITEM, help_text="Different annotators who label each item.")
    lease_seconds = range_field(LEASE_SECONDS, help_text="How long /next holds an item.")
    retrain_every = range_field(RETRAIN_EVERY, help_text="Retrain after this many new labels.")
    strategy = forms.ChoiceField(choices=QueryStrategy.choices)


def _settings_initial(project: Project) -> dict[str, Any]:
    fields = [
        "name",
        "show_prelabels",
        "prelabel_threshold",
        "labels_per_item",
        "lease_seconds",
        "retrain_every",
        "strategy",
    ]
    return {name: getattr(project, name) for name in fields}


def _forbidden(message: str) -> HttpResponse:
    """403 with a readable reason, for actions only a project's managers may take."""
    return HttpResponseForbidden(f"<!doctype html><title>Not allowed</title><p>{message}</p>")


def project_or_404(request: SignedInHttpRequest, project_id: int) -> Project:
    """The project if the user may see it; a 404 otherwise (no hint that it exists)."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    if project is None:
        raise Http404("No such project.")
    return project


def _is_manager(request: SignedInHttpRequest, project: Project) -> bool:
    return project_role(user=request.user, project=project) == Membership.Role.MANAGER


def managers_only(action: str) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """A page for the project's managers: the view gets the project; others get a 403 saying who may
    ``action`` (404 for a project they do not see, the login page when logged out)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapper(request: SignedInHttpRequest, project_id: int) -> HttpResponseBase:
            project = project_or_404(request, project_id)
            if not _is_manager(request, project):
                return _forbidden(f"Only the project's managers may {action}.")
            return view(request, project)

        return wrapper

    return decorate


@login_required
def project_list(request: SignedInHttpRequest) -> HttpResponse:
    """The user's projects, and the "New project" form for those an admin gave the permission."""
    can_create = user_can_create_projects(user=request.user)
    if request.method == "POST" and not can_create:
        return _forbidden(PROJECT_CREATE_REFUSED)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        labels = [part.strip() for part in form.cleaned_data.pop("labels").split(",") if part.strip()]
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


@login_required
def project_detail(request: SignedInHttpRequest, project_id: int) -> HttpResponse:
    """The project; its managers also get the dashboard. ``?partial=learning-curve`` renders only the
    curve's SVG, which the dashboard's script swaps in when a new version is ready."""
    project = project_or_404(request, project_id)
    is_manager = _is_manager(request, project)
    if request.GET.get("partial") == "learning-curve":
        if not is_manager:
            return HttpResponseForbidden("Only the project's managers see the dashboard.")
        chart = learning_curve_chart(learning_curve(project=project))
        return render(request, "annotator/_learning_curve.html", {"chart": chart})
    context = {
        "project": project,
        "classes": project_classes(project=project),
        "counts": project_counts(project=project),
        "versions": list(model_version_list(project=project).order_by("-number")[:50]),
        "current": model_version_current(project=project),
        "is_manager": is_manager,
        "stats": annotation_stats(project=project),
        "settings_form": ProjectSettingsForm(initial=_settings_initial(project)),
        "export_formats": [(fmt, EXPORT_FORMAT_NAMES[fmt]) for fmt in EXPORT_FORMATS],
    }
    if is_manager:
        context["members"] = list(membership_list(project=project).order_by("user__username"))
        context["member_form"] = MemberForm()
        context["roles"] = Membership.Role.choices
    if is_manager:
        # The dashboard's figures are drawn by static/js/dashboard.js from the dashboard API, not here.
        context["review"] = review_counts(project=project)
    return render(request, "annotator/project_detail.html", context)


def _nice_step(span: float, ticks: int) -> float:
    """The smallest of 1, 2, 5 × 10^k that cuts ``span`` into at most ``ticks`` steps."""
    raw = max(span, 1e-9) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def learning_curve_chart(points: list[dict[str, Any]], *, width: int = 560, height: int = 240) -> dict[str, Any]:
    """SVG geometry for the learning curve: validation accuracy (y) against labels (x), one point per
    ``learning_curve`` entry, with its 95% interval as an error bar (``bar``: an SVG path,
    ``""`` without one); the y axis starts at a round value below the lowest accuracy or interval."""
    left, right, top, bottom = 48, 16, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max([p["n_labels"] for p in points], default=0) or 10
    x_step = max(_nice_step(most, 5), 1)
    x_max = max(x_step * math.ceil(most / x_step), x_step)
    lowest = min([_low(p) for p in points], default=0.9)
    y_step = 0.1 if lowest >= 0.5 else 0.2
    y_min = round(math.floor(min(max(lowest, 0.0), 0.9) / y_step + 1e-9) * y_step, 2)

    def x(n: float) -> float:
        return round(left + n / x_max * plot_w, 1)

    def y(accuracy: float) -> float:
        share = (min(max(accuracy, y_min), 1.0) - y_min) / (1.0 - y_min)
        return round(top + (1 - share) * plot_h, 1)

    def bar(p: dict[str, Any]) -> str:
        if p.get("val_accuracy_low") is None or p.get("val_accuracy_high") is None:
            return ""
        cx, top_y, low_y = x(p["n_labels"]), y(p["val_accuracy_high"]), y(p["val_accuracy_low"])
        return f"M{cx - 4:.1f},{top_y}h8M{cx},{top_y}V{low_y}M{cx - 4:.1f},{low_y}h8"

    dots = [{**p, "x": x(p["n_labels"]), "y": y(p["val_accuracy"]), "bar": bar(p)} for p in points]
    n_x_ticks = round(x_max / x_step)
    n_y_ticks = round((1.0 - y_min) / y_step)
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "dots": dots,
        "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "x_ticks": [{"x": x(i * x_step), "label": f"{i * x_step:g}"} for i in range(n_x_ticks + 1)],
        "y_ticks": [{"y": y(y_min + i * y_step), "label": f"{y_min + i * y_step:.1f}"} for i in range(n_y_ticks + 1)],
        "numbers": ",".join(str(p["number"]) for p in points),
    }


def _low(point: dict[str, Any]) -> float:
    """The lowest value a learning-curve point draws: its interval's lower end, else its accuracy."""
    low = point.get("val_accuracy_low")
    return point["val_accuracy"] if low is None else min(low, point["val_accuracy"])


@managers_only("change its settings")
@require_POST
def project_settings(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    form = ProjectSettingsForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(error) for error in errors)}")
        return redirect("project-detail", project_id=project.id)
    try:
        project_settings_update(project=project, **{**form.cleaned_data, "name": form.cleaned_data["name"] or None})
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Settings saved.")
    return redirect("project-detail", project_id=project.id)


def _named(files: list[UploadedFile]) -> list[tuple[str, BinaryIO]]:
    """The uploads as the import services take them: (name, binary file); an upload always has a name
    and reads like a binary file, which Django's types do not say."""
    return [(f.name or "", cast(BinaryIO, f)) for f in files]


@managers_only("add images")
@require_POST
def project_upload(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Choose one or more images or .zip files first.")
        return redirect("project-detail", project_id=project.id)
    if request.POST.get("background") or sum(f.size or 0 for f in files) > settings.IMPORT_BACKGROUND_BYTES:
        job = job_upload_import_request(project=project, user=request.user, files=_named(files))
        messages.success(request, f"Import job {job.id} runs in the background: follow it under Background jobs.")
        return redirect("project-detail", project_id=project.id)
    summary = items_import_uploads(project=project, files=_named(files), user=request.user)
    text = (
        f"Imported {summary.imported} images ({summary.labeled} with labels), skipped {summary.duplicates} duplicates."
    )
    messages.success(request, text)
    for rejected in summary.rejected[:20]:
        messages.warning(request, f"Rejected {rejected['name']}: {rejected['error']}")
    if len(summary.rejected) > 20:
        messages.warning(request, f"… and {len(summary.rejected) - 20} more files were rejected.")
    return redirect("project-detail", project_id=project.id)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


@managers_only("change its members")
@require_POST
def project_members(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    """Managers add a member or change a role (``username``, ``role``), or remove one (``remove``: a user id)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    try:
        if request.POST.get("remove"):
            user = users.filter(id=int(request.POST["remove"]) if request.POST["remove"].isdigit() else 0).first()
            if user is None or not membership_remove(project=project, user=user):
                messages.error(request, "That user is not a member of this project.")
            else:
                messages.success(request, f"{user.get_username()} was removed from the project; their labels stay.")
        else:
            form = MemberForm(request.POST)
            if not form.is_valid():
                for field, errors in form.errors.items():
                    messages.error(request, f"{field}: {' '.join(str(error) for error in errors)}")
                return redirect("project-detail", project_id=project.id)
            user = users.filter(username=form.cleaned_data["username"]).first()
            if user is None:
                messages.error(request, f"No user named “{form.cleaned_data['username']}”; an admin creates accounts.")
            else:
                membership = membership_add(project=project, user=user, role=form.cleaned_data["role"])
                messages.success(request, f"{user.get_username()} is now {membership.get_role_display().lower()}.")
    except ServiceError as exc:
        messages.error(request, str(exc))
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


@login_required
def label_page(request: SignedInHttpRequest, project_id: int) -> HttpResponse:
    project = project_or_404(request, project_id)
    classes = project_classes(project=project)
    config = {
        "project": project.id,
        "classes": [{"name": c.name, "hotkey": c.hotkey} for c in classes],
        "show_prelabels": project.show_prelabels,
        "multi_label": project.multi_label,
    }
    current = model_version_current(project=project)
    config["model_version"] = current.number if current else None
    context = {
        "project": project,
        "classes": classes,
        "counts": project_counts(project=project),
        "current": current,
        "config": config,
    }
    return render(request, "annotator/label.html", context)


@login_required
def account(request: SignedInHttpRequest) -> HttpResponse:
    """The user's page: their projects and roles, and their API token (create, replace, revoke)."""
    from rest_framework.authtoken.models import Token

    if request.method == "POST":
        action = request.POST.get("action")
        if action == "rotate":
            api_token_rotate(user=request.user)
            messages.success(request, "A new API token was created; the earlier one, if any, no longer works.")
        elif action == "revoke":
            if api_token_revoke(user=request.user):
                messages.success(request, "Your API token was revoked.")
        else:
            return HttpResponseBadRequest("Unknown action; use rotate or revoke.")
        return redirect("account")
    token = Token.objects.filter(user=request.user).values_list("key", flat=True).first()
    projects = project_list_for_user(user=request.user).order_by("name")
    roles = project_roles_for_user(user=request.user)
    rows = [(project, roles.get(project.id, "admin")) for project in projects]
    return render(request, "annotator/account.html", {"token": token, "rows": rows})


#: Keys tried, in order, for "mark ambiguous" on the review page: the first no class uses.
AMBIGUOUS_KEYS = ("a", "x", "q", "m")


@managers_only("review labels")
def review_page(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    """Managers go through the items flagged as likely mislabeled, keyboard first."""
    classes = project_classes(project=project)
    taken = {c.hotkey for c in classes}
    config = {
        "project": project.id,
        "classes": [{"name": c.name, "hotkey": c.hotkey} for c in classes],
        "multi_label": project.multi_label,
    }
    context = {
        "project": project,
        "classes": classes,
        "counts": review_counts(project=project),
        "ambiguous_key": next((key for key in AMBIGUOUS_KEYS if key not in taken), ""),
        "config": config,
    }
    return render(request, "annotator/review.html", context)
