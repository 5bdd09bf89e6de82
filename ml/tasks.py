"""Celery tasks: thin wrappers that load by id, call ``ml``, and save through a service."""

from __future__ import annotations

import logging
import traceback

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def train_project_task(project_id: int) -> int | None:
    """Retrain the project's model, re-score its pool, and publish a new version.

    Returns the version number published, or ``None`` when another run holds the project or
    nothing was requested.
    """
    from annotator import paths, selectors, services
    from annotator.models import Project
    from ml.data import cache_read
    from ml.loop import fit_and_score
    from ml.model import save_model
    from ml.selection import priorities_from_scores

    version = services.training_begin(project_id=project_id)
    if version is None:
        return None
    try:
        project = Project.objects.get(id=project_id)
        services.items_ensure_cached(project=project)
        data = selectors.training_data(project=project)
        cache = paths.cache_path(project.id, project.input_size)
        result = fit_and_score(
            cache_read(cache, data.labeled_rows, project.input_size),
            data.labels,
            cache_read(cache, data.pool_rows, project.input_size),
            data.n_classes,
            strategy=version.strategy,
            seed=version.number,
        )
        relpath = paths.model_relpath(project.id, version.number)
        save_model(
            result.model,
            paths.model_path(relpath),
            {
                "project": project.id,
                "version": version.number,
                "n_classes": data.n_classes,
                "input_size": project.input_size,
            },
        )
        services.model_version_publish(
            version=version,
            item_ids=data.pool_ids,
            probs=result.probs,
            scores=result.scores,
            priorities=priorities_from_scores(result.scores),
            metrics={**result.metrics, "n_pool": len(data.pool_ids)},
            weights=relpath,
        )
        logger.info("project %s: published version %s %s", project_id, version.number, result.metrics)
        return version.number
    except Exception as exc:
        logger.exception("project %s: training version %s failed", project_id, version.number)
        services.model_version_fail(version=version, error=f"{exc}\n\n{traceback.format_exc()}")
        return None
    finally:
        services.training_end(project_id=project_id)
