"""Accounts: a user's API token, rotated (the earlier one stops working) or revoked; and invitations,
which add a person to a project by email address, creating their account when there is none (with a
one-time link to set a password: Django's password-reset tokens)."""

from __future__ import annotations

import logging
import re
import smtplib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from annotator.models import Membership, Project
from annotator.selectors.users import users_with_email
from annotator.services.errors import ServiceError
from annotator.services.members import membership_add

logger = logging.getLogger(__name__)

#: What a person typed that is not an email address.
INVALID_EMAIL = "Enter a valid email address, such as name@example.com."


def api_token_rotate(*, user: User) -> str:
    """Give ``user`` a new API token (replacing any earlier one, which stops working); returns its key."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key


def api_token_revoke(*, user: User) -> bool:
    """Delete ``user``'s API token; whether there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


@dataclass(frozen=True)
class Invitation:
    """What ``user_invite`` did: the membership; whether it made the account; the one-time link to set
    a password (for an account that has none yet, else ``None``); whether the email went out."""

    membership: Membership
    created: bool
    link: str | None
    emailed: bool


def user_invite(
    *, project: Project, email: str, role: str, invited_by: User, site_url: str, send_email: bool = True
) -> Invitation:
    """Add the person with ``email`` to ``project`` with ``role``: the user with that address if there is
    one, otherwise a new account (a username from the address, no password yet). ``site_url`` (scheme
    and host, such as ``https://label.example.com``) starts the links. With ``send_email``, they are told
    by email: a link to set their password when they have none, else a link to the project. A failed
    email leaves the membership in place (``emailed`` is false; the link is in the result)."""
    email = _valid_email(email)
    with transaction.atomic():
        found = users_with_email(email=email)
        if len(found) > 1:
            raise ServiceError("Several accounts have this email address; add the person by username instead.")
        user = found[0] if found else _user_create(email=email)
        if not user.is_active:
            raise ServiceError("The account with this email address is deactivated; an admin can reactivate it.")
        membership = membership_add(project=project, user=user, role=role)
    link = None if user.has_usable_password() else site_url.rstrip("/") + invitation_path(user=user)
    emailed = False
    if send_email:
        context = {
            "user": user,
            "project": project,
            "role": membership.get_role_display().lower(),
            "invited_by": invited_by.get_full_name() or invited_by.get_username(),
            "link": link,
            "project_url": site_url.rstrip("/") + reverse("project-detail", args=[project.id]),
            "login_url": site_url.rstrip("/") + reverse("login"),
        }
        emailed = _mail(prefix="invitation" if link else "member_added", to=email, context=context)
    return Invitation(membership=membership, created=not found, link=link, emailed=emailed)


def invitation_path(*, user: User) -> str:
    """The path of ``user``'s one-time set-password page (valid until they set a password, or for
    ``PASSWORD_RESET_TIMEOUT`` seconds)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("invitation-confirm", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def _valid_email(email: str) -> str:
    email = User.objects.normalize_email(email.strip())
    try:
        if len(email) > User._meta.get_field("email").max_length:  # type: ignore[operator]
            raise ValidationError(INVALID_EMAIL)
        validate_email(email)
    except ValidationError as exc:
        raise ServiceError(INVALID_EMAIL) from exc
    return email


def _user_create(*, email: str) -> User:
    """A new active account for ``email``, without a usable password, named after the address's local
    part (``ann.lee``, then ``ann.lee2``... when taken)."""
    base = re.sub(r"[^\w.+-]", "", email.split("@", 1)[0], flags=re.ASCII)[:140] or "user"
    for attempt in range(1, 1000):
        username = base if attempt == 1 else f"{base}{attempt}"
        if User.objects.filter(username__iexact=username).exists():
            continue
        user = User(username=username, email=email, is_active=True)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # taken in between by a concurrent request
            continue
        return user
    raise ServiceError("Could not find a free username for this address; an admin can create the account.")


def _mail(*, prefix: str, to: str, context: dict[str, Any]) -> bool:
    """Send ``registration/<prefix>_subject.txt`` with its ``_email.txt`` and ``_email.html`` bodies;
    whether the email backend took it (an unreachable server is logged, not raised)."""
    subject = " ".join(render_to_string(f"registration/{prefix}_subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render_to_string(f"registration/{prefix}_email.txt", context), to=[to])
    message.attach_alternative(render_to_string(f"registration/{prefix}_email.html", context), "text/html")
    try:
        message.send()
    except (smtplib.SMTPException, OSError):
        logger.exception("Could not send the %s email", prefix)
        return False
    return True
