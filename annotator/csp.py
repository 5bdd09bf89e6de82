"""The Content-Security-Policy header, on every response: the pages load only their own scripts, styles
and images (nothing inline, no other origin), so injected markup cannot run script.

``CONTENT_SECURITY_POLICY`` holds the directives; ``CONTENT_SECURITY_POLICY_PATHS`` replaces some of them
under one path prefix only. Django 6 has this built in (``SECURE_CSP``); the Django here (5.2) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def policy_header(directives: Mapping[str, str]) -> str:
    """``{"default-src": "'self'", ...}`` as the header's value: ``default-src 'self'; ...``."""
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """First in ``MIDDLEWARE``, so that every response gets the header: static files, redirects and
    errors included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        base = settings.CONTENT_SECURITY_POLICY
        self.default = policy_header(base)
        self.by_prefix = [
            (prefix, policy_header({**base, **changes}))
            for prefix, changes in settings.CONTENT_SECURITY_POLICY_PATHS.items()
        ]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        header = next((h for prefix, h in self.by_prefix if request.path_info.startswith(prefix)), self.default)
        response.headers["Content-Security-Policy"] = header
        return response
