"""The annotation app: projects, items, annotations, model versions, and the pages and API over them."""

from annotator.celery import app as celery_app

__all__ = ["celery_app"]
