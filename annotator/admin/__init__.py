"""The admin console: every model with list columns, filters, search and actions, one module per
domain (projects and memberships, users, classes, items and annotations, model versions, jobs).

Actions call services; list pages read related rows with joins and counts with subqueries, so a
page costs the same few queries whatever the number of rows on it. Importing the package registers
every model admin with the default site.
"""

from annotator.admin import classes, items, jobs, projects, users, versions

__all__ = ["classes", "items", "jobs", "projects", "users", "versions"]
