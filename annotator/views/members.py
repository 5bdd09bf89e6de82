"""A project's members, added, changed and removed by its managers."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotator.auth import SignedInHttpRequest
from annotator.models import (
    Project,
)
from annotator.services.errors import ServiceError
from annotator.services.members import membership_add, membership_remove
from annotator.views.common import managers_only
from annotator.views.forms import MemberForm


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
