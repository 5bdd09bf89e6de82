"""The labeling and review pages (their scripts do the work through the API)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from annotator.auth import SignedInHttpRequest
from annotator.models import (
    Project,
)
from annotator.selectors.classes import project_classes
from annotator.selectors.model_versions import model_version_current
from annotator.selectors.projects import (
    project_counts,
)
from annotator.selectors.review import review_counts
from annotator.views.common import managers_only, project_or_404


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
