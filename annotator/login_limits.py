"""Login attempts, rate-limited: after ``LOGIN_MAX_FAILURES`` failed logins for one username or
from one address within ``LOGIN_FAILURE_WINDOW`` seconds, further attempts get 429 until the
window passes. Counts live in Django's cache, which every web process shares."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def client_address(request: HttpRequest) -> str:
    """The caller's address; behind a trusted reverse proxy, the first ``X-Forwarded-For`` hop."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def _keys(request: HttpRequest) -> list[str]:
    username = request.POST.get("username", "").strip().lower()
    digest = hashlib.sha256(username.encode()).hexdigest()[:32]
    return [f"login-fail:user:{digest}", f"login-fail:addr:{client_address(request)}"]


def is_blocked(request: HttpRequest) -> bool:
    return any((cache.get(key) or 0) >= settings.LOGIN_MAX_FAILURES for key in _keys(request))


def record_failure(request: HttpRequest) -> None:
    for key in _keys(request):
        if cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired in between
            cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW)


def clear(request: HttpRequest) -> None:
    cache.delete_many(_keys(request))


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view with a limit on failed attempts."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if is_blocked(request):
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
            form = self.get_form()
            form.add_error(None, f"Too many failed logins. Try again in {minutes} minutes.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        record_failure(self.request)
        return super().form_invalid(form)

    def form_valid(self, form) -> HttpResponse:
        clear(self.request)
        return super().form_valid(form)
