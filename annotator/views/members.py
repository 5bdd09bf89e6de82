"""A project's members, added (by username or email address, or invited by email), changed and removed
by its managers."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotator.auth import SignedInHttpRequest
from annotator.models import (
    Project,
)
from annotator.selectors.users import user_find
from annotator.services.accounts import user_invite
from annotator.services.errors import ServiceError
from annotator.services.members import membership_add, membership_remove
from annotator.views.common import managers_only
from annotator.views.forms import InviteForm, MemberForm


@managers_only("change its members")
@require_POST
def project_members(request: SignedInHttpRequest, project: Project) -> HttpResponse:
    """Managers add a member or change a role (``username``: a username or an existing user's email,
    ``role``), invite someone by email address (``invite``, ``email``, ``role``), or remove a member
    (``remove``: a user id)."""
    try:
        if request.POST.get("remove"):
            _remove(request, project)
        elif request.POST.get("invite"):
            _invite(request, project)
        else:
            _add(request, project)
    except ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("project-detail", project_id=project.id)


def _form_errors(request: SignedInHttpRequest, form: MemberForm | InviteForm) -> None:
    for field, errors in form.errors.items():
        messages.error(request, f"{field}: {' '.join(str(error) for error in errors)}")


def _remove(request: SignedInHttpRequest, project: Project) -> None:
    text = request.POST["remove"]
    user = User.objects.filter(id=int(text) if text.isdigit() else 0).first()
    if user is None or not membership_remove(project=project, user=user):
        messages.error(request, "That user is not a member of this project.")
    else:
        messages.success(request, f"{user.get_username()} was removed from the project; their labels stay.")


def _add(request: SignedInHttpRequest, project: Project) -> None:
    form = MemberForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return
    user = user_find(text=form.cleaned_data["username"])
    if user is None:
        messages.error(
            request,
            f"No user named “{form.cleaned_data['username']}”; pick one of the suggestions, or invite them by email.",
        )
        return
    membership = membership_add(project=project, user=user, role=form.cleaned_data["role"])
    messages.success(request, f"{user.get_username()} is now {membership.get_role_display().lower()}.")


def _invite(request: SignedInHttpRequest, project: Project) -> None:
    form = InviteForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return
    invitation = user_invite(
        project=project,
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        invited_by=request.user,
        site_url=request.build_absolute_uri("/"),
    )
    user = invitation.membership.user
    role = invitation.membership.get_role_display().lower()
    made = "A new account" if invitation.created else "The account"
    messages.success(request, f"{made} {user.get_username()} <{user.email}> is now {role}.")
    console = settings.EMAIL_BACKEND.endswith("console.EmailBackend")
    if invitation.emailed and not console:
        messages.info(request, f"An email went to {user.email}.")
    elif not invitation.emailed:
        messages.warning(request, f"The email to {user.email} could not be sent.")
    if invitation.link and (console or not invitation.emailed):
        messages.info(request, f"Send them this one-time link to choose their password: {invitation.link}")
