"""Reads: what pages, the API and the worker ask of the database, one module per domain.

Selectors return objects, dicts or ``None`` (never an HTTP error: the API and the pages turn a
missing object into their 404). Callers import a selector from its domain's module (``from
annotator.selectors.items import item_list``); this package re-exports nothing.

- ``projects``, ``classes``: projects, roles, counts; the class order and per-class counts
- ``items``, ``answers``: items and annotations as clients read them; stored answers
- ``training_data``, ``review``: what a training run and a review scan read
- ``model_versions``, ``dashboard``, ``agreement``: versions, the dashboard's figures, agreement
- ``jobs``, ``exports``: background jobs; the rows an export writes
"""
