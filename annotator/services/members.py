"""Project members: adding one with a role, changing the role, removing one (their leases are given
back, their labels stay). A project always keeps at least one manager."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from annotator.models import Item, Membership, Project
from annotator.services.errors import ServiceError


def membership_add(*, project: Project, user: User, role: str = Membership.Role.ANNOTATOR) -> Membership:
    """Make ``user`` a member of ``project`` with ``role`` (or change their role)."""
    if role not in Membership.Role.values:
        raise ServiceError(f"Unknown role {role!r}; valid roles: {', '.join(Membership.Role.values)}.")
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if current is not None and current.role == Membership.Role.MANAGER and role != Membership.Role.MANAGER:
            _keep_a_manager(project=project, leaving=user)
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def membership_remove(*, project: Project, user: User) -> bool:
    """Remove ``user`` from ``project`` (their labels stay); whether they were a member. Their leases are
    given back. The last manager cannot leave."""
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if current is None:
            return False
        if current.role == Membership.Role.MANAGER:
            _keep_a_manager(project=project, leaving=user)
        current.delete()
        Item.objects.filter(project=project, lease_user=user).update(lease_user=None, lease_until=None)
    return True


def _keep_a_manager(*, project: Project, leaving: User) -> None:
    others = Membership.objects.filter(project=project, role=Membership.Role.MANAGER).exclude(user=leaving)
    if not others.exists():
        raise ServiceError("A project needs at least one manager: make someone else a manager first.")
