"""More than one machine's worth of workers: two Celery workers on one Redis train different
projects at the same time, while one project's runs never overlap."""

from __future__ import annotations

import itertools

import pytest

from annotator import services
from annotator.models import ModelVersion, Project
from tests.factories import wait_for
from tests.test_faults import broker, digits_project, request_training, start_worker, stop  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def intervals(project: Project) -> list[tuple]:
    versions = ModelVersion.objects.filter(project=project, number__gt=1).order_by("number")
    return [(v.created, v.finished) for v in versions]


def test_two_workers_train_two_projects_in_parallel_never_one_project_twice(broker):  # noqa: F811
    # Given two projects with a first version each, and two workers on the same Redis
    first = digits_project(n_images=200, n_labels=100)
    second = digits_project(n_images=200, n_labels=100, name="Second")
    workers = [start_worker(broker["url"], "w1"), start_worker(broker["url"], "w2")]
    try:
        # When both projects ask for a retrain
        request_training(first)
        request_training(second)
        # and the first asks again while it trains (the request joins one follow-up run)
        wait_for(lambda: ModelVersion.objects.filter(project=first, number=2).exists(), 120, "first to start")
        services.training_request(project_id=first.id)
        wait_for(
            lambda: all(
                ModelVersion.objects.filter(project=p, number=2, status="ready").exists() for p in (first, second)
            ),
            240,
            "both projects to publish version 2",
        )
        # A request made while the first project trains coalesces into one follow-up run
        wait_for(lambda: not Project.objects.get(id=first.id).training_requested, 60, "requests to drain")
        wait_for(
            lambda: not ModelVersion.objects.filter(project__in=[first, second], status="training").exists(),
            120,
            "runs to finish",
        )
    finally:
        for worker in workers:
            stop(worker)

    # Then the two projects' runs overlapped in time (two workers, in parallel)
    (a_start, a_end), (b_start, b_end) = intervals(first)[0], intervals(second)[0]
    assert a_start < b_end and b_start < a_end, "the two projects did not train in parallel"
    # and the first project's own runs never overlapped
    runs = intervals(first)
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end
    assert ModelVersion.objects.filter(project=first, status="failed").count() == 0
