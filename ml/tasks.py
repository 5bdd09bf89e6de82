"""Celery tasks: thin wrappers that load by id, call ``ml``, and save through a service."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import numpy as np
from celery import shared_task

logger = logging.getLogger(__name__)

#: Items that get cold-start priorities: two retrain batches, but at least MIN and at most MAX.
COLD_START_MIN = 20
COLD_START_MAX = 200


def _progress_reporter(version_id: int, start: float, end: float) -> Callable[[float], None]:
    """A callback mapping 0..1 onto start..end of the version's progress, written at most every 5%."""
    from annotator import services

    last = [-1.0]

    def report(fraction: float) -> None:
        value = start + (end - start) * min(max(fraction, 0.0), 1.0)
        if value - last[0] >= 0.05 or (fraction >= 1.0 and value > last[0]):
            last[0] = value
            services.model_version_progress(version_id=version_id, progress=value)

    return report


def _pixel_embeddings(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 256) float32: 16x16 grey thumbnails, a fallback when no backbone is installed."""
    grey = images.astype(np.float32).mean(axis=3)
    n, s, _ = grey.shape
    f = max(1, s // 16)
    grey = grey[:, : f * (s // f), : f * (s // f)].reshape(n, s // f, f, s // f, f).mean(axis=(2, 4))
    return grey.reshape(n, -1) / 255.0


@shared_task(acks_late=True, ignore_result=True)
def train_project_task(project_id: int) -> int | None:
    """Retrain the project's model, re-score its pool, and publish a new version.

    The family comes from ``project.model_family``: ``cnn`` trains on the cached images;
    ``pretrained`` and ``torchscript`` embed new items once (kept on disk) and train a
    head on the embeddings. Returns the version number published, or ``None`` when another
    run holds the project or nothing was requested.
    """
    from annotator import paths, selectors, services
    from annotator.models import Project
    from ml.data import cache_read
    from ml.embeddings import embeddings_ensure, embeddings_read, load_backbone
    from ml.loop import fit_and_score, fit_and_score_features
    from ml.model import save_model
    from ml.selection import priorities_from_scores, priorities_with_batch
    from ml.simulate import choose_batch, default_selection

    version = services.training_begin(project_id=project_id)
    if version is None:
        return None
    heartbeat = services.TrainingHeartbeat(version.id)
    heartbeat.start()
    try:
        project = Project.objects.get(id=project_id)
        family = version.model_family
        services.items_ensure_cached(project=project)
        data = selectors.training_data(project=project)
        cache = paths.cache_path(project.id, project.input_size)
        meta = {
            "project": project.id,
            "version": version.number,
            "n_classes": data.n_classes,
            "family": family,
            "multi_label": project.multi_label,
        }
        if family == "cnn":
            result = fit_and_score(
                cache_read(cache, data.labeled_rows, project.input_size),
                data.labels,
                cache_read(cache, data.pool_rows, project.input_size),
                data.n_classes,
                strategy=version.strategy,
                seed=version.number,
                progress=_progress_reporter(version.id, 0.0, 1.0),
            )
            pool_embeddings = result.embeddings
            meta["input_size"] = project.input_size
        else:
            backbone = load_backbone(family, project.backbone_path or None)
            emb = embeddings_ensure(
                cache, project.input_size, backbone, progress=_progress_reporter(version.id, 0.0, 0.6)
            )
            pool_embeddings = embeddings_read(emb, data.pool_rows, backbone.dim)
            result = fit_and_score_features(
                embeddings_read(emb, data.labeled_rows, backbone.dim),
                data.labels,
                pool_embeddings,
                data.n_classes,
                strategy=version.strategy,
                seed=version.number,
                progress=_progress_reporter(version.id, 0.6, 1.0),
            )
            meta.update(backbone=backbone.key, input_size=project.input_size)
        selection = default_selection(family)
        if selection == "diverse" and pool_embeddings is not None and version.strategy != "random":
            batch = choose_batch(
                result.scores,
                project.retrain_every,
                embeddings=pool_embeddings,
                selection=selection,
                seed=version.number,
            )
            priorities = priorities_with_batch(result.scores, batch)
        else:
            priorities = priorities_from_scores(result.scores)
        relpath = paths.model_relpath(project.id, version.number)
        save_model(result.model, paths.model_path(relpath), meta)
        services.model_version_publish(
            version=version,
            item_ids=data.pool_ids,
            probs=result.probs,
            scores=result.scores,
            priorities=priorities,
            metrics={**result.metrics, "n_pool": len(data.pool_ids), "selection": selection},
            weights=relpath,
        )
        logger.info("project %s: published version %s %s", project_id, version.number, result.metrics)
        services.review_scan_request(project_id=project_id, version_number=version.number)
        return version.number
    except Exception as exc:
        logger.exception("project %s: training version %s failed", project_id, version.number)
        services.model_version_fail(version=version, error=f"{exc}\n\n{traceback.format_exc()}")
        return None
    finally:
        heartbeat.stop()
        services.training_end(project_id=project_id)


@shared_task(acks_late=True, ignore_result=True)
def cold_start_project_task(project_id: int) -> int:
    """Before the first model: embed the pool and put a spread-out, typical batch at the head of the queue.

    Uses the project's backbone (the packaged MobileNetV2 for ``cnn`` projects too, whose
    embeddings are then ready should the project switch families); 16x16 thumbnails if
    no backbone can be loaded. Returns how many items were given cold-start priorities
    (0 when a model already serves the queue).
    """
    from annotator import paths, selectors, services
    from annotator.models import Project
    from ml.data import cache_read
    from ml.embeddings import embeddings_ensure, embeddings_read, load_backbone
    from ml.selection import cold_start

    project = Project.objects.filter(id=project_id).first()
    if project is None or selectors.model_version_current(project=project) is not None:
        return 0
    services.items_ensure_cached(project=project)
    data = selectors.training_data(project=project)
    if len(data.pool_ids) == 0:
        return 0
    cache = paths.cache_path(project.id, project.input_size)
    family = project.model_family if project.model_family != "cnn" else "pretrained"
    try:
        backbone = load_backbone(family, project.backbone_path or None)
        emb = embeddings_read(embeddings_ensure(cache, project.input_size, backbone), data.pool_rows, backbone.dim)
    except (FileNotFoundError, ValueError, RuntimeError):
        logger.warning("project %s: no backbone for the cold start; using thumbnails", project_id, exc_info=True)
        emb = _pixel_embeddings(cache_read(cache, data.pool_rows, project.input_size))
    k = min(len(emb), max(COLD_START_MIN, min(2 * project.retrain_every, COLD_START_MAX)))
    picks = cold_start(emb, k, seed=project.id)
    return services.items_cold_start_publish(project_id=project.id, item_ids=data.pool_ids[picks].tolist())


@shared_task(acks_late=True, ignore_result=True)
def review_project_task(project_id: int, version_number: int | None = None) -> int | None:
    """Look for likely label errors: out-of-fold probabilities of every labeled item with the
    project's model family (``cnn``: short CNN runs on the cached images; the backbone families:
    a head on the cached embeddings), ranked by cleanlab; stored with the disagreement flags.

    Returns how many items are flagged, or ``None`` when skipped: the project is gone, or after
    version ``version_number`` another retrain is pending or done (its own scan follows).
    """
    from annotator import paths, selectors, services
    from annotator.models import ModelVersion, Project
    from ml.data import cache_read
    from ml.embeddings import embeddings_ensure, embeddings_read, load_backbone
    from ml.review import SCAN_MIN_LABELS, scan_label_issues

    project = Project.objects.filter(id=project_id).first()
    if project is None:
        return None
    if version_number is not None:
        newer = ModelVersion.objects.filter(project=project, status="ready", number__gt=version_number)
        if project.training_requested or newer.exists():
            return None
    services.items_ensure_cached(project=project)
    data = selectors.review_data(project=project)
    if len(data.labels) < SCAN_MIN_LABELS or len(np.unique(data.labels, axis=0)) < 2:
        return services.review_flags_publish(project_id=project.id)  # disagreements only
    cache = paths.cache_path(project.id, project.input_size)
    if project.model_family == "cnn":
        inputs = cache_read(cache, data.rows, project.input_size)
    else:
        backbone = load_backbone(project.model_family, project.backbone_path or None)
        inputs = embeddings_read(embeddings_ensure(cache, project.input_size, backbone), data.rows, backbone.dim)
    issues, probs = scan_label_issues(inputs, data.labels, data.n_classes, features=project.model_family != "cnn")
    if project.multi_label:  # the model's set, and its mean confidence in each class's yes or no
        names = np.array(data.class_names)
        suggested = [names[row].tolist() for row in issues.predicted]
        confidence = np.maximum(probs, 1 - probs).mean(axis=1)
    else:
        suggested, confidence = issues.predicted.tolist(), probs.max(axis=1)
    n_flagged = services.review_flags_publish(
        project_id=project.id,
        item_ids=data.item_ids.tolist(),
        label_ids=data.label_ids,
        quality=issues.quality.tolist(),
        suggested=suggested,
        confidence=confidence.tolist(),
        flagged=data.item_ids[issues.ranked].tolist(),
    )
    logger.info("project %s: review scan of %s labels flagged %s", project_id, len(data.labels), n_flagged)
    return n_flagged
