"""The user's own page (projects, roles, the API token) and the password pages: change it when signed
in, reset it by email (rate-limited, never saying whether an address has an account), and set it from
an invitation's one-time link. The password pages are Django's own views with our templates."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from annotator.auth import SignedInHttpRequest
from annotator.login_limits import client_address
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


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's password (the old one first); the session stays signed in."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


def _reset_keys(request: HttpRequest, email: str) -> list[str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"reset-request:email:{digest}", f"reset-request:addr:{client_address(request)}"]


def _reset_allowed(request: HttpRequest, email: str) -> bool:
    """Count a reset request for its address and its email address; whether both are still under
    ``PASSWORD_RESET_MAX_REQUESTS`` within ``LOGIN_FAILURE_WINDOW`` seconds (the login limits' cache)."""
    window, allowed = settings.LOGIN_FAILURE_WINDOW, True
    for key in _reset_keys(request, email):
        if cache.add(key, 1, timeout=window):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired in between
                cache.add(key, 1, timeout=window)
                count = 1
        allowed = allowed and count <= settings.PASSWORD_RESET_MAX_REQUESTS
    return allowed


class ResetForm(PasswordResetForm):
    """Django's form, which also sends a link to active accounts without a password yet (invited
    people whose invitation link expired)."""

    def get_users(self, email: str) -> list[User]:
        found = User.objects.filter(email__iexact=email, is_active=True)
        return [user for user in found if user.email.casefold() == email.casefold()]


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link by email address. The answer is the same whether or not an account has it;
    more than ``PASSWORD_RESET_MAX_REQUESTS`` requests from one address or for one email address get 429."""

    template_name = "registration/password_reset_form.html"
    form_class = ResetForm
    email_template_name = "registration/password_reset_email.txt"
    html_email_template_name = "registration/password_reset_email.html"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _reset_allowed(request, str(request.POST.get("email", ""))):
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
            message = f"Too many password reset requests. Try again in {minutes} minutes."
            return render(request, "registration/password_reset_limited.html", {"message": message}, status=429)
        return super().post(request, *args, **kwargs)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The emailed link: choose a new password (the link then stops working)."""

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"


class InvitationConfirmView(auth_views.PasswordResetConfirmView):
    """An invitation's one-time link: the new member chooses their password and is signed in."""

    template_name = "registration/invitation_confirm.html"
    post_reset_login = True
    success_url = reverse_lazy("project-list")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set, and you are signed in.")
        return response
