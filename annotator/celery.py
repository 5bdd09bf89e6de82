"""The Celery application; configuration comes from Django settings (``CELERY_*``), the tasks from
``annotator/tasks.py``."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["annotator"], related_name="tasks")


@worker_process_init.connect
def _torch_threads(**kwargs: Any) -> None:
    """``TORCH_THREADS`` torch threads in each worker process, so workers sharing a host share its cores."""
    from django.conf import settings

    threads = getattr(settings, "TORCH_THREADS", 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
