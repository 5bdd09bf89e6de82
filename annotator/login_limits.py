"""Login attempts, rate-limited: after ``LOGIN_MAX_FAILURES`` failed logins for one username or
from one address, each within ``LOGIN_FAILURE_WINDOW`` seconds of the one before, further attempts
get 429 until the window passes with no new failure. Counts live in Django's cache, which every web
process shares.

One implementation for every login path: failures are counted from Django's ``user_login_failed``
signal (sent by ``authenticate()``, so by any form or view that checks a password) and cleared by
``user_logged_in``; ``limit_logins`` wraps each view that takes a password (the app's
``/accounts/login/`` and the admin's ``/admin/login/``) and refuses a blocked one before it checks
anything. Tokens are made on the account page, by a logged-in session only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind ``TRUSTED_PROXIES`` reverse proxies (with ``TRUST_X_FORWARDED_FOR``),
    the ``X-Forwarded-For`` hop that many entries from the right: the one the outermost trusted proxy
    appended. Entries left of it are whatever the client sent, so they are never used."""
    if settings.TRUST_X_FORWARDED_FOR and settings.TRUSTED_PROXIES > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if hops:
            # Fewer hops than proxies: the farthest one, still written by a trusted proxy.
            return hops[max(0, len(hops) - settings.TRUSTED_PROXIES)]
    return request.META.get("REMOTE_ADDR", "")


def _keys(request: HttpRequest, username: str) -> list[str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:user:{digest}", f"login-fail:addr:{client_address(request)}"]


def _posted_username(request: HttpRequest) -> str:
    return request.POST.get("username", "")


def is_blocked(request: HttpRequest, username: str) -> bool:
    return any((cache.get(key) or 0) >= settings.LOGIN_MAX_FAILURES for key in _keys(request, username))


def record_failure(request: HttpRequest, username: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    for key in _keys(request, username):
        if cache.add(key, 1, timeout=window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired in between
            cache.add(key, 1, timeout=window)
        else:
            # Some caches (files, the database) reset a key's expiry to their default on incr.
            cache.touch(key, timeout=window)


def clear(request: HttpRequest, username: str) -> None:
    cache.delete_many(_keys(request, username))


def refusal(request: HttpRequest) -> HttpResponse:
    """429 with a readable page."""
    minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
    message = f"Too many failed logins. Try again in {minutes} minutes."
    return render(request, "registration/login_limited.html", {"message": message}, status=429)


def limit_logins(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A login view whose POST is refused, before any password is checked, while its username or
    address is blocked."""

    @wraps(view)
    def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST" and is_blocked(request, _posted_username(request)):
            return refusal(request)
        return view(request, *args, **kwargs)

    return limited


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """``user_login_failed``: count the failure (calls made without a request, such as scripts, are not)."""
    if request is not None:
        record_failure(request, str(credentials.get("username") or ""))


def on_logged_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """``user_logged_in``: a successful login clears its username's and address's counts."""
    if request is not None:
        clear(request, user.get_username())
