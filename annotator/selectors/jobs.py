"""Background jobs (imports and exports run by a worker) as their project's members see them."""

from __future__ import annotations

from django.contrib.auth.models import User

from annotator.models import Job, Project
from annotator.selectors.projects import project_list_for_user


def job_get_for_user(*, user: User, job_id: int) -> Job | None:
    """A background job of a project ``user`` may see; ``None`` otherwise."""
    job = Job.objects.select_related("project").filter(id=job_id).first()
    if job is None or not project_list_for_user(user=user).filter(id=job.project_id).exists():
        return None
    return job


def job_list(*, project: Project, limit: int = 20) -> list[Job]:
    """The project's latest background jobs, newest first."""
    return list(Job.objects.filter(project=project).order_by("-id")[:limit])
