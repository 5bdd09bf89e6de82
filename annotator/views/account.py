"""The user's own page: projects, roles and the API token."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render

from annotator.auth import SignedInHttpRequest
from annotator.selectors.projects import (
    project_list_for_user,
    project_roles_for_user,
)
from annotator.services.accounts import api_token_revoke, api_token_rotate


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
