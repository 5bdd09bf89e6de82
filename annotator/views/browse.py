"""The data browser page: filters as a plain GET form (the items list's parameters); its script
reads the items through the API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from annotator.auth import SignedInHttpRequest
from annotator.kinds import kind_of
from annotator.models import Item
from annotator.selectors.browse import import_batches
from annotator.selectors.classes import project_classes
from annotator.selectors.items import PREDICTION_ORDERS
from annotator.selectors.projects import membership_list, prelabels_visible
from annotator.views.common import project_or_404, user_is_manager

#: The items list's orders as the page offers them (``selectors.items.ORDERS``).
ORDER_NAMES = [
    ("-id", "newest first"),
    ("id", "oldest first"),
    ("-score", "most worth labeling first (score)"),
    ("score", "least worth labeling first (score)"),
    ("confidence", "least confident guess first"),
    ("-confidence", "most confident guess first"),
]


@login_required
def items_browser(request: SignedInHttpRequest, project_id: int) -> HttpResponse:
    """A grid of the project's items with filters and sorts; managers also act on several at once.
    The model's guesses (filters, sorts, shown predictions) only where the caller may see them."""
    project = project_or_404(request, project_id)
    classes = project_classes(project=project)
    predictions = prelabels_visible(user=request.user, project=project)
    manager = user_is_manager(request, project)
    orders = [(value, name) for value, name in ORDER_NAMES if predictions or value not in PREDICTION_ORDERS]
    config = {
        "project": project.id,
        "classes": [c.name for c in classes],
        "multi_label": project.multi_label,
        "show_predictions": predictions,
        "manager": manager,
    }
    context = {
        "project": project,
        "classes": classes,
        "statuses": Item.Status.choices,
        "orders": orders,
        "members": [m.user for m in membership_list(project=project)],
        "batches": import_batches(project=project),
        "box_project": kind_of(project).boxes,
        "show_predictions": predictions,
        "manager": manager,
        "query": request.GET,
        "config": config,
    }
    return render(request, "annotator/items_browser.html", context)
