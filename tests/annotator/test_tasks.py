"""The Celery tasks (``annotator/tasks.py``): every name the services send is a task on its queue; and the
model's tasks beyond the CNN: the pretrained family, progress, and the cold start."""

from __future__ import annotations

import io

import numpy as np
import pytest

from annotator import paths
from annotator.celery import app
from annotator.models import Item, ModelVersion, Project
from annotator.services import enqueue
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.training import model_version_progress, training_request
from annotator.tasks import cold_start_project_task
from ml.models.files import load_model
from tests.factories import digits_pngs, make_project, wait_for

#: Each task the services send, and the queue it runs on: training and cold starts have their own worker.
QUEUES = {
    enqueue.TRAIN_PROJECT_TASK: "training",
    enqueue.COLD_START_PROJECT_TASK: "training",
    enqueue.REVIEW_PROJECT_TASK: "default",
    enqueue.IMPORT_JOB_TASK: "default",
    enqueue.EXPORT_JOB_TASK: "default",
}


def test_every_task_the_services_send_is_registered_on_its_queue():
    # Given the task names the services send by name (they never import the tasks)
    sent = {value for name, value in vars(enqueue).items() if name.endswith("_TASK")}
    assert sent == set(QUEUES)
    # Then each is a registered task, routed to its queue
    app.loader.import_default_modules()
    for task, queue in QUEUES.items():
        assert task in app.tasks, task
        assert app.amqp.router.route({}, task)["queue"].name == queue, task


def import_digits(project: Project, user, n: int) -> list[int]:
    images, truth = digits_pngs(n)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(data)) for i, data in enumerate(images)], user=user
    )
    return truth


@pytest.mark.django_db
def test_cold_start_ranks_a_spread_out_batch_first_until_a_model_exists(user):
    # Given a project with 60 unlabeled digits and no model
    project = make_project(user, labels=[str(d) for d in range(10)], retrain_every=10)
    truth = import_digits(project, user, 60)
    # When the cold start runs
    assert cold_start_project_task(project.id) == 20
    # Then 20 items lead the queue (priority above every random one), covering most classes
    first = list(Item.objects.filter(project=project, priority__gt=1).order_by("-priority"))
    assert len(first) == 20
    assert len({truth[int(item.original_name[:-4])] for item in first}) >= 7
    # And once a model version is ready, the cold start leaves the queue alone
    ModelVersion.objects.create(project=project, number=1, strategy="entropy", n_labels=0, status="ready")
    assert cold_start_project_task(project.id) == 0


@pytest.mark.django_db
def test_progress_is_recorded_only_while_training(user):
    project = make_project(user)
    version = ModelVersion.objects.create(project=project, number=1, strategy="entropy", n_labels=0)
    model_version_progress(version_id=version.id, progress=0.4)
    version.refresh_from_db()
    assert version.progress == pytest.approx(0.4)
    ModelVersion.objects.filter(id=version.id).update(status="failed")
    model_version_progress(version_id=version.id, progress=0.9)
    version.refresh_from_db()
    assert version.progress == pytest.approx(0.4)


@pytest.mark.django_db(transaction=True)
def test_pretrained_family_with_a_real_worker(celery_worker, user):
    # Given a pretrained-family BALD project with 80 digits, 20 of them labeled
    project = make_project(user, labels=[str(d) for d in range(10)], retrain_every=1000)
    Project.objects.filter(id=project.id).update(model_family="pretrained", strategy="bald")
    truth = import_digits(project, user, 80)
    wait_for(lambda: Item.objects.filter(project=project, priority__gt=1).exists(), 120, "the cold start")
    for item in list(Item.objects.filter(project=project).order_by("-priority"))[:20]:
        annotation_create(item=item, user=user, label=str(truth[int(item.original_name[:-4])]))

    # When a retrain is requested
    training_request(project_id=project.id)

    # Then the worker publishes a pretrained version trained on the cached embeddings
    version = wait_for(
        lambda: ModelVersion.objects.filter(project=project, status="ready").first(), 180, "a ready version"
    )
    assert version.model_family == "pretrained" and version.progress == 1.0
    assert version.metrics["selection"] == "diverse" and version.metrics["n_pool"] == 60
    cache = paths.cache_path(project.id, project.input_size)
    assert list(cache.parent.glob(f"{cache.stem}.emb_mobilenet_v2.f32"))
    head, meta = load_model(paths.model_path(version.weights))
    assert meta["family"] == "pretrained" and head.arch["kind"] == "head"
    pool = Item.objects.filter(project=project, status="unlabeled")
    assert not pool.filter(pred_version__isnull=True).exists()
    correct = np.mean(
        [int(i.pred_label.name) == truth[int(i.original_name[:-4])] for i in pool.select_related("pred_label")]
    )
    assert correct > 0.3  # chance is 0.1
    # The queue is the planned order (``ml.selection.plan_batch``), stored as ranks: the batch, then by score
    served = list(pool.order_by("-priority"))
    assert [item.priority for item in served] == list(range(len(served), 0, -1))
    after_batch = served[10:]
    assert [i.score for i in after_batch] == sorted((i.score for i in after_batch), reverse=True)
    # And the estimate it shows rests on the 20 labels, with its interval
    assert version.metrics["val_n"] == 20
    assert (
        version.metrics["val_accuracy_low"] <= version.metrics["val_accuracy"] <= version.metrics["val_accuracy_high"]
    )
