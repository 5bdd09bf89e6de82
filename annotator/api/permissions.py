"""Who may call what: DRF permission classes for the API's role matrix.

A project's members read it, its managers change it, superusers are managers everywhere. The
object a URL names (``project_id``, ``item_id`` or ``job_id``) is loaded once, here, and left on the
view as ``view.project`` (and ``view.item`` or ``view.job``). Someone who is not a member gets a
404 for it, as if it did not exist; a member without the role a call needs gets a 403; a
logged-out caller gets a 401.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from annotator.models import Item, Job, Membership, Project
from annotator.selectors.items import item_get_for_user
from annotator.selectors.jobs import job_get_for_user
from annotator.selectors.projects import (
    PROJECT_CREATE_REFUSED,
    project_get_for_user,
    project_role,
    user_can_create_projects,
)

MANAGERS_ONLY = "Only the project's managers may do this."


class ProjectApiView(APIView):
    """A view behind the project permissions below: what they load is there when a handler runs
    (``item`` or ``job`` only where the URL names one)."""

    project: Project
    item: Item
    job: Job


def _answers(request: Request, view: APIView) -> bool:
    """Whether ``view`` has a handler of its own for the request's method: ``OPTIONS`` (the view's
    description) and methods it does not answer (a 405) need no object, so they load none."""
    method = (request.method or "").lower()
    return method != "options" and method in view.http_method_names and hasattr(view, method)


def _signed_in(request: Request) -> User:
    """The caller, once ``has_permission`` has turned away anyone not signed in."""
    return cast(User, request.user)


def _load_project(request: Request, view: APIView) -> Project:
    """The project the URL names, directly or through its item or job, set on ``view``; 404 for non-members."""
    user = _signed_in(request)
    scoped = cast(ProjectApiView, view)  # these permissions guard only ProjectApiView subclasses
    kwargs = scoped.kwargs
    if "item_id" in kwargs:
        item = item_get_for_user(user=user, item_id=kwargs["item_id"])
        if item is None:
            raise NotFound("No such item.")
        scoped.item, project = item, item.project
    elif "job_id" in kwargs:
        job = job_get_for_user(user=user, job_id=kwargs["job_id"])
        if job is None:
            raise NotFound("No such job.")
        scoped.job, project = job, job.project
    else:
        found = project_get_for_user(user=user, project_id=kwargs["project_id"])
        if found is None:
            raise NotFound("No such project.")
        project = found
    scoped.project = project
    return project


def _is_manager(request: Request, project: Project) -> bool:
    return project_role(user=_signed_in(request), project=project) == Membership.Role.MANAGER


class _ProjectPermission(BasePermission):
    """Signed in, then the project the URL names loaded (404 for non-members), then ``allows``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False
        if not _answers(request, view):
            return True
        return self.allows(request, _load_project(request, view))

    def allows(self, request: Request, project: Project) -> bool:
        raise NotImplementedError


class IsProjectMember(_ProjectPermission):
    """Members of the project (and superusers)."""

    def allows(self, request: Request, project: Project) -> bool:
        return True


class IsProjectManager(_ProjectPermission):
    """The project's managers (and superusers); other members get a 403."""

    message = MANAGERS_ONLY

    def allows(self, request: Request, project: Project) -> bool:
        return _is_manager(request, project)


class IsProjectManagerOrReadOnly(_ProjectPermission):
    """Members read (``GET``); only managers change (every other method)."""

    message = MANAGERS_ONLY

    def allows(self, request: Request, project: Project) -> bool:
        return request.method in SAFE_METHODS or _is_manager(request, project)


class CanCreateProjects(BasePermission):
    """Listing is for every logged-in user; creating a project needs the permission an admin grants."""

    message = PROJECT_CREATE_REFUSED

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False
        return request.method in SAFE_METHODS or user_can_create_projects(user=request.user)
