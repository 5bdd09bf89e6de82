"""Writes: every change to projects, items, annotations, model versions and jobs goes through the
services, one module per domain. Services are atomic where they must be, take keyword-only arguments,
raise ``ServiceError`` (``services.errors``) with a message for the user, and enqueue Celery work
through ``services.enqueue`` once their transaction commits, so that a worker never sees uncommitted
rows.

Callers import a service from its domain's module (``from annotator.services.annotations import
annotation_create``); this package re-exports nothing.

- ``projects``, ``classes``, ``members``, ``accounts``: projects and their settings, classes, people
- ``imports``, ``jobs``, ``exports``: files in, background jobs, export files out
- ``leasing``: the queue (who holds which item)
- ``annotations``, ``consensus``, ``answers``: storing answers, adding them up, writing answer rows
- ``training``, ``training_run``, ``model_files``: retrain requests and locks, a worker's run, downloads
- ``review``: likely label errors and a manager's decisions
- ``enqueue``, ``errors``: sending tasks by name, the errors services raise
"""
