"""Workers for real: two Celery workers on one Redis train different projects at the same time
while one project's runs never overlap; the two workers of ``make run`` each consume their own
queue; a cold start missed while the broker was down happens once workers are up."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from django.conf import settings

from annotator import embedded_redis
from annotator.celery import app
from annotator.management.commands.serve import worker_commands
from annotator.models import Item, Job, ModelVersion, Project
from annotator.services.jobs import job_export_request
from annotator.services.training import training_request
from annotator.tasks import export_job_task
from tests.factories import digits_pngs, make_project, make_user, wait_for
from tests.system.helpers import child_env, digits_project, request_training, start_worker, stop

pytestmark = pytest.mark.django_db(transaction=True)


def intervals(project: Project) -> list[tuple]:
    versions = ModelVersion.objects.filter(project=project, number__gt=1).order_by("number")
    return [(v.created, v.finished) for v in versions]


def test_two_workers_train_two_projects_in_parallel_never_one_project_twice(broker):
    # Given two projects with a first version each, and two workers on the same Redis
    first = digits_project(n_images=120, n_labels=40)
    second = digits_project(n_images=120, n_labels=40, name="Second")
    workers = [start_worker(broker["url"], "w1"), start_worker(broker["url"], "w2")]
    try:
        # When both projects ask for a retrain
        request_training(first)
        request_training(second)
        # and the first asks again while it trains (the request joins one follow-up run)
        wait_for(lambda: ModelVersion.objects.filter(project=first, number=2).exists(), 120, "first to start")
        training_request(project_id=first.id)
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


def test_a_cold_start_missed_while_the_broker_was_down_runs_once_workers_are_up(broker, tmp_path):
    # Given a project whose images are imported while the broker is down (a separate process: the
    # import's enqueue fails fast and is only logged)
    manager = make_user("manager-cold")
    project = make_project(manager, name="Cold", labels=[str(d) for d in range(10)])
    folder = tmp_path / "images"
    folder.mkdir()
    pngs, truth = digits_pngs(80)
    for i, data in enumerate(pngs):
        (folder / f"{i}.png").write_bytes(data)
    embedded_redis.stop(broker["process"])
    command = [sys.executable, "manage.py", "import_images", "--project", str(project.id), str(folder)]
    done = subprocess.run(command, env=child_env(broker["url"]), cwd=settings.BASE_DIR, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "broker unavailable" in done.stderr
    # Then the queue is still in random order: no cold start happened
    assert Item.objects.filter(project=project).count() == 80
    assert not Item.objects.filter(project=project, priority__gt=1).exists()
    assert Project.objects.get(id=project.id).cold_start_at is None

    # When the broker and a worker come up, with no manual step
    broker["process"] = embedded_redis.start(broker["socket"])
    worker = start_worker(broker["url"], "cold")
    try:
        # Then the workers' reconciliation asks for the cold start, and the queue starts with it
        wait_for(lambda: Project.objects.get(id=project.id).cold_start_at is not None, 120, "the cold start")
    finally:
        stop(worker)
    first = list(Item.objects.filter(project=project, priority__gt=1).order_by("-priority"))
    assert len(first) == 20
    assert len({truth[int(item.original_name[:-4])] for item in first}) >= 7  # spread over the classes


def test_the_two_workers_of_make_run_each_consume_their_queue(broker):
    # Given a project with a first version, and the two workers `make run` starts (training, default)
    project = digits_project(n_images=300, n_labels=200)
    env = child_env(broker["url"])
    workers = [
        subprocess.Popen(command, env={**env, **extra}, cwd=settings.BASE_DIR)
        for command, extra in worker_commands(sys.executable, 2)
    ]
    try:
        # When a retrain runs
        request_training(project)
        training = wait_for(
            lambda: ModelVersion.objects.filter(project=project, number=2, status="training", progress__gt=0).first(),
            120,
            "version 2 to start training",
        )
        # and a manager asks for an export meanwhile (sent to the test's broker)
        job = job_export_request(project=project, user=None, fmt="csv")
        with app.connection_for_write(broker["url"]) as connection_:
            export_job_task.apply_async((job.id,), connection=connection_)
        # Then the export is done while the training run is still going
        wait_for(lambda: Job.objects.get(id=job.id).status == Job.Status.DONE, 60, "the export")
        training.refresh_from_db()
        assert training.status == "training", "the export waited for the training run"
        wait_for(lambda: ModelVersion.objects.filter(id=training.id, status="ready").exists(), 180, "version 2")
    finally:
        for worker in workers:
            stop(worker)
    done = Job.objects.get(id=job.id)
    assert done.finished < ModelVersion.objects.get(id=training.id).finished
