"""Helpers every page shares: the project a user may see, the managers-only gate, readable refusals."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import BinaryIO, cast

from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpResponse, HttpResponseBase, HttpResponseForbidden

from annotator.auth import SignedInHttpRequest
from annotator.models import (
    Membership,
    Project,
)
from annotator.selectors.projects import (
    project_get_for_user,
    project_role,
)


def forbidden(message: str) -> HttpResponse:
    """403 with a readable reason, for actions only a project's managers may take."""
    return HttpResponseForbidden(f"<!doctype html><title>Not allowed</title><p>{message}</p>")


def project_or_404(request: SignedInHttpRequest, project_id: int) -> Project:
    """The project if the user may see it; a 404 otherwise (no hint that it exists)."""
    project = project_get_for_user(user=request.user, project_id=project_id)
    if project is None:
        raise Http404("No such project.")
    return project


def user_is_manager(request: SignedInHttpRequest, project: Project) -> bool:
    return project_role(user=request.user, project=project) == Membership.Role.MANAGER


def managers_only(action: str) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """A page for the project's managers: the view gets the project; others get a 403 saying who may
    ``action`` (404 for a project they do not see, the login page when logged out)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapper(request: SignedInHttpRequest, project_id: int) -> HttpResponseBase:
            project = project_or_404(request, project_id)
            if not user_is_manager(request, project):
                return forbidden(f"Only the project's managers may {action}.")
            return view(request, project)

        return wrapper

    return decorate


def uploads_named(files: list[UploadedFile]) -> list[tuple[str, BinaryIO]]:
    """The uploads as the import services take them: (name, binary file); an upload always has a name
    and reads like a binary file, which Django's types do not say."""
    return [(f.name or "", cast(BinaryIO, f)) for f in files]
