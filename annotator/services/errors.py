"""The errors services raise: their message is shown to the user as it is (the API answers 400, or 409
for a conflict)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; the message is shown to the user."""


class ConflictError(ServiceError):
    """A request that conflicts with what is stored or held by someone else (the API answers 409)."""
