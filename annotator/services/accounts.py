"""Accounts: a user's API token, rotated (the earlier one stops working) or revoked."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token


def api_token_rotate(*, user: User) -> str:
    """Give ``user`` a new API token (replacing any earlier one, which stops working); returns its key."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key


def api_token_revoke(*, user: User) -> bool:
    """Delete ``user``'s API token; whether there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)
