"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["ml", "annotator"], related_name="tasks")


def _reconcile_forever(interval: float) -> None:
    """Every ``interval`` seconds, put training back on track after faults (``training_reconcile``)."""
    import logging
    import time

    from django.db import connection

    from annotator import services

    log = logging.getLogger("annotator.reconcile")
    while True:
        try:
            resent = services.training_reconcile()
            if resent:
                log.info("re-sent training requests of projects %s", resent)
        except Exception:
            log.exception("training reconciliation failed; trying again later")
        finally:
            connection.close()
        time.sleep(interval)


@worker_ready.connect
def _start_reconciliation(**kwargs) -> None:
    """Each worker reconciles at start and then periodically: runs interrupted by a dead worker are
    marked failed and requested again; requests lost while the broker was down are sent again;
    retrains a label should have requested (its request failed after commit) are requested."""
    import threading

    from django.conf import settings

    if getattr(settings, "RECONCILE_SECONDS", 0) > 0:
        interval = float(settings.RECONCILE_SECONDS)
        threading.Thread(target=_reconcile_forever, args=(interval,), daemon=True, name="reconcile").start()


@worker_process_init.connect
def _torch_threads(**kwargs) -> None:
    """``TORCH_THREADS`` torch threads in each worker process, so workers sharing a host share its cores."""
    from django.conf import settings

    threads = getattr(settings, "TORCH_THREADS", 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
