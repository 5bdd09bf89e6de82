"""The labeling and review pages (their scripts do the work through the API)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from annotator.auth import SignedInHttpRequest
from annotator.kinds import kind_of
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
    """The labeling page: class keys for classification and multi-label projects; for box projects,
    boxes drawn on the image (label_boxes.html), each class with a colour and the page's own keys."""
    project = project_or_404(request, project_id)
    classes = project_classes(project=project)
    config: dict[str, Any] = {
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
    if not kind_of(project).boxes:
        return render(request, "annotator/label.html", context)
    # Bright, distinct hues that stand out on photos (boxes get a dark outline); past the ninth class they repeat.
    palette = BOX_COLORS
    for i, entry in enumerate(config["classes"]):
        entry["color"] = palette[i % len(palette)]
    # The page's letter keys, each the first of its candidates that no class has (none: click its button).
    taken = {c.hotkey for c in classes}
    keys = {
        action: next((key for key in candidates if key not in taken), "")
        for action, candidates in (("accept", "ayk"), ("nothing", "nej"), ("reject", "xr"))
    }
    config["keys"] = keys
    context["keys"] = keys
    return render(request, "annotator/label_boxes.html", context)


#: Keys tried, in order, for "mark ambiguous" on the review page: the first no class uses.
AMBIGUOUS_KEYS = ("a", "x", "q", "m")

#: The colours of a box project's classes, in class order, on its labeling and review pages.
BOX_COLORS = ("#2d9cff", "#ff8a00", "#ff4d6d", "#00d1a0", "#ffd60a", "#b45cff", "#7bdc2f", "#ff5cd6", "#3fe0ff")


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
    if not kind_of(project).boxes:
        return render(request, "annotator/review.html", context)
    # Box projects: the boxes on the image, each person's beside them (review_boxes.html). Each letter
    # key is the first of its candidates that neither a class nor an earlier action has (none: click
    # its button); the digits no class has take one person's boxes, in the order they are listed.
    keys = {"ambiguous": str(context["ambiguous_key"])}
    taken.add(keys["ambiguous"])
    for action, candidates in (("keep", "kw"), ("skip", "sj"), ("nothing", "nej"), ("delete", "xr"), ("reset", "ru")):
        keys[action] = next((key for key in candidates if key not in taken), "")
        taken.add(keys[action])
    config["classes"] = [
        {"name": c.name, "hotkey": c.hotkey, "color": BOX_COLORS[i % len(BOX_COLORS)]} for i, c in enumerate(classes)
    ]
    config["keys"] = keys
    config["person_keys"] = [digit for digit in "123456789" if digit not in taken]
    context["keys"] = keys
    return render(request, "annotator/review_boxes.html", context)
