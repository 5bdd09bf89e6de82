"""Projects as their members see them: which projects a user sees, their role, project creation's
permission, the members, and the queue's counts."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet
from django.utils import timezone

from annotator.models import Item, Membership, Project

#: The Django permission ("Can add project") that lets a user create projects, and so become their
#: manager. An admin grants it on the admin's user or group page; superusers have every permission.
PROJECT_CREATE_PERMISSION = "annotator.add_project"


#: What the page and the API say to someone without it.
PROJECT_CREATE_REFUSED = (
    "You do not have the permission to create projects. Ask an admin to give it to you "
    "(“Can add project”, on your user or group page in the admin)."
)


def user_can_create_projects(*, user: User) -> bool:
    return user.has_perm(PROJECT_CREATE_PERMISSION)


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_get_for_user(*, user: User, project_id: int) -> Project | None:
    """The project if ``user`` may see it (a member, or a superuser); ``None`` otherwise, whether or not it exists."""
    return project_list_for_user(user=user).filter(id=project_id).first()


def project_role(*, user: User, project: Project) -> str | None:
    if user.is_superuser:
        return Membership.Role.MANAGER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def prelabels_visible(*, user: User, project: Project) -> bool:
    """Whether ``user`` may see the model's guesses on the project's items (pre-labels,
    probabilities, scores): always a manager; an annotator when the project shows pre-labels."""
    return project.show_prelabels or project_role(user=user, project=project) == Membership.Role.MANAGER


def project_roles_for_user(*, user: User) -> dict[int, str]:
    """``{project_id: role}`` for every project ``user`` is a member of."""
    return dict(Membership.objects.filter(user=user).values_list("project_id", "role"))


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def project_counts(*, project: Project) -> dict[str, int]:
    """Items per status, plus how many are leased right now."""
    counts = {status: 0 for status in Item.Status.values}
    for row in Item.objects.filter(project=project).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Item.Status.values)
    counts["leased"] = Item.objects.filter(
        project=project, status=Item.Status.UNLABELED, lease_until__gt=timezone.now()
    ).count()
    return counts
