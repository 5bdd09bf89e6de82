"""Request types for the views only a signed-in user reaches.

``request.user`` is a ``User`` or an ``AnonymousUser``; behind ``login_required`` (Django views) or a
permission class that refuses anonymous callers (the API), it is always a ``User``. Annotating such a
handler's request with these types says so to the type checker; nothing changes at run time.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


class SignedInHttpRequest(HttpRequest):
    """A Django request from a signed-in user (a view behind ``login_required`` or the admin)."""

    user: User


class SignedInRequest(Request):
    """A DRF request that the view's permission classes let through only when signed in."""

    user: User
