"""The workers' runs: train and publish a model version, the cold start, the label-error scan.

Each loads the project's arrays from its caches, calls ``ml`` with them, writes the files and
publishes through the other services; the Celery tasks (``annotator/tasks.py``) do nothing but call
these, and tests call them as plain functions, without a broker.
What a round leaves for the next one (pseudo-labels, out-of-fold probabilities) is kept beside
the version's weights (``paths.round_path``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from django.conf import settings

from annotator import paths
from annotator.kinds import kind_of
from annotator.models import ModelVersion, Project
from annotator.selectors.classes import class_order
from annotator.selectors.model_versions import model_version_current
from annotator.selectors.review import ReviewData, review_data
from annotator.selectors.training_data import TrainingData, training_data
from annotator.services.detection_review import box_review_scan_run
from annotator.services.detection_run import detector_round_publish
from annotator.services.imports import items_ensure_cached
from annotator.services.review import review_flags_publish, review_scan_request
from annotator.services.training import (
    TrainingHeartbeat,
    items_cold_start_publish,
    model_version_fail,
    model_version_progress,
    model_version_publish,
    training_begin,
    training_end,
)
from ml.calibration import expected_correct
from ml.confusion import confusion_summary
from ml.coverage import class_counts
from ml.crossfit import CrossFitState, resolve_device
from ml.data import cache_read
from ml.embeddings import embeddings_ensure, embeddings_read, load_backbone
from ml.loop import LoopResult, fit_and_score, fit_and_score_features
from ml.models.files import save_model
from ml.review import SCAN_MIN_LABELS, find_label_issues, find_multilabel_issues, scan_label_issues
from ml.selection import (
    cold_start,
    cold_start_family,
    cold_start_size,
    default_selection,
    pixel_embeddings,
    plan_batch,
    priorities_with_batch,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def _progress_reporter(version_id: int, start: float, end: float) -> Callable[[float], None]:
    """A callback mapping 0..1 onto start..end of the version's progress, written at most every 5%."""
    last = [-1.0]

    def report(fraction: float) -> None:
        value = start + (end - start) * min(max(fraction, 0.0), 1.0)
        if value - last[0] >= 0.05 or (fraction >= 1.0 and value > last[0]):
            last[0] = value
            model_version_progress(version_id=version_id, progress=value)

    return report


def previous_state(*, project: Project, family: str) -> CrossFitState | None:
    """What the project's latest ready version handed on, if it was of the same family and left it."""
    version = model_version_current(project=project)
    if version is None or version.model_family != family or not version.weights:
        return None
    path = paths.round_path(version.weights)
    try:
        return CrossFitState.load(path) if path.is_file() else None
    except (OSError, ValueError, KeyError):
        logger.warning("project %s: unreadable round state %s; starting without it", project.id, path, exc_info=True)
        return None


class _FitArgs(TypedDict):
    """What both families' fits take alike."""

    strategy: str
    seed: int
    keys: np.ndarray
    pool_keys: np.ndarray
    previous: CrossFitState | None
    device: torch.device


def _fit(project: Project, version: ModelVersion, data: TrainingData) -> tuple[LoopResult, dict]:
    """Train on the labels and score the pool with the version's family; returns the result and
    what goes into the model file's meta."""
    family = version.model_family
    cache = paths.cache_path(project.id, project.input_size)
    common = _FitArgs(
        strategy=version.strategy,
        seed=version.number,
        keys=data.labeled_ids,
        pool_keys=data.pool_ids,
        previous=previous_state(project=project, family=family),
        device=resolve_device(settings.TORCH_DEVICE),
    )
    meta = {"input_size": project.input_size}
    if family == "cnn":
        result = fit_and_score(
            cache_read(cache, data.labeled_rows, project.input_size),
            data.labels,
            cache_read(cache, data.pool_rows, project.input_size),
            data.n_classes,
            allow_flips=project.allow_flips,
            progress=_progress_reporter(version.id, 0.0, 1.0),
            **common,
        )
        return result, meta
    backbone = load_backbone(family, project.backbone_path or None)
    emb = embeddings_ensure(cache, project.input_size, backbone, progress=_progress_reporter(version.id, 0.0, 0.5))
    result = fit_and_score_features(
        embeddings_read(emb, data.labeled_rows, backbone.dim),
        data.labels,
        embeddings_read(emb, data.pool_rows, backbone.dim),
        data.n_classes,
        progress=_progress_reporter(version.id, 0.5, 1.0),
        **common,
    )
    return result, {**meta, "backbone": backbone.key}


def _confusion(project: Project, data: TrainingData, result: LoopResult) -> dict[str, object]:
    """Where the model goes wrong, from the out-of-fold predictions its estimate rests on, with the
    class names in output order (``ml.confusion.confusion_summary``)."""
    oof = result.oof_probs if result.oof_probs is not None else np.zeros((0, data.n_classes), dtype=np.float32)
    summary = confusion_summary(oof, data.labels, multi_label=kind_of(project).multi_label)
    return {"classes": class_order(project_id=project.id).names, **summary}


def _held_out(
    data: TrainingData, result: LoopResult, *, multi_label: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The labeled items with an out-of-fold prediction: their ids (L,), probabilities (L, C) and the
    chance each prediction is right (L,)."""
    if result.oof_probs is None or len(result.oof_probs) != len(data.labeled_ids):
        return None
    known = ~np.isnan(result.oof_probs).any(axis=1)
    probs = result.oof_probs[known]
    return np.asarray(data.labeled_ids)[known], probs, expected_correct(probs, multi_label=multi_label)


def training_run(*, project_id: int) -> int | None:
    """Retrain the project's model, re-score its pool, and publish a new version.

    Returns the version number published, or ``None`` when another run holds the project or
    nothing was requested. A failure is recorded on the version; the previous one keeps serving.
    """
    version = training_begin(project_id=project_id)
    if version is None:
        return None
    heartbeat = TrainingHeartbeat(version.id)
    heartbeat.start()
    try:
        project = Project.objects.get(id=project_id)
        items_ensure_cached(project=project)
        if kind_of(project).boxes:  # a detector, trained on the boxes
            detector_round_publish(project=project, version=version, progress=_progress_reporter(version.id, 0.0, 1.0))
            review_scan_request(project_id=project_id, version_number=version.number)
            return version.number
        data = training_data(project=project)
        result, meta = _fit(project, version, data)
        selection = default_selection(version.model_family)
        batch = plan_batch(
            result.scores,
            project.retrain_every,
            strategy=version.strategy,
            selection=selection,
            probs=result.probs,
            counts=class_counts(data.labels, data.n_classes),
            embeddings=result.embeddings,
            # Exploring needs both spaces (ml.coverage uses neither without the other).
            explore=None
            if result.embeddings is None or result.labeled_embeddings is None
            else (result.embeddings, result.labeled_embeddings),
            seed=version.number,
        )
        relpath = paths.model_relpath(project.id, version.number)
        meta.update(
            project=project.id,
            version=version.number,
            n_classes=data.n_classes,
            family=version.model_family,
            multi_label=project.multi_label,
            temperature=result.metrics["temperature"],
        )
        save_model(result.model, paths.model_path(relpath), meta)
        if result.state is not None:
            result.state.save(paths.round_path(relpath))
        model_version_publish(
            version=version,
            item_ids=data.pool_ids,
            probs=result.probs,
            confidence=expected_correct(result.probs, multi_label=project.multi_label),
            scores=result.scores,
            priorities=priorities_with_batch(result.scores, batch),
            metrics={
                **result.metrics,
                "n_pool": len(data.pool_ids),
                "selection": selection,
                "confusion": _confusion(project, data, result),
            },
            weights=relpath,
            held_out=_held_out(data, result, multi_label=project.multi_label),
        )
        logger.info("project %s: published version %s %s", project_id, version.number, result.metrics)
        review_scan_request(project_id=project_id, version_number=version.number)
        return version.number
    except Exception as exc:
        logger.exception("project %s: training version %s failed", project_id, version.number)
        model_version_fail(version=version, error=f"{exc}\n\n{traceback.format_exc()}")
        return None
    finally:
        heartbeat.stop()
        training_end(project_id=project_id)


def cold_start_run(*, project_id: int) -> int:
    """Before the first model: embed the pool and put a spread-out, typical batch at the head of the queue.

    Uses the project's backbone (the packaged MobileNetV2 for ``cnn`` projects too, whose
    embeddings are then ready should the project switch families); 16x16 thumbnails if no
    backbone can be loaded. Returns how many items were given cold-start priorities (0 when a
    model already serves the queue or there is nothing to rank).
    """
    project = Project.objects.filter(id=project_id).first()
    if project is None or model_version_current(project=project) is not None:
        return 0
    items_ensure_cached(project=project)
    data = training_data(project=project)
    if len(data.pool_ids) == 0:
        return items_cold_start_publish(project_id=project.id, item_ids=[])
    cache = paths.cache_path(project.id, project.input_size)
    try:
        backbone = load_backbone(cold_start_family(project.model_family), project.backbone_path or None)
        emb = embeddings_read(embeddings_ensure(cache, project.input_size, backbone), data.pool_rows, backbone.dim)
    except (FileNotFoundError, ValueError, RuntimeError):
        logger.warning("project %s: no backbone for the cold start; using thumbnails", project_id, exc_info=True)
        emb = pixel_embeddings(cache_read(cache, data.pool_rows, project.input_size))
    k = min(len(emb), cold_start_size(project.retrain_every))
    picks = cold_start(emb, k, seed=project.id)
    return items_cold_start_publish(project_id=project.id, item_ids=data.pool_ids[picks].tolist())


def _version_oof(project: Project, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mask (N,) of items that have one, (N, C) probabilities) from the latest version's out-of-fold
    predictions, or ``None`` when that version left none."""
    version = model_version_current(project=project)
    if version is None or not version.weights:
        return None
    path = paths.round_path(version.weights)
    if not path.is_file():
        return None
    state = CrossFitState.load(path)
    if len(state.oof_keys) == 0:
        return None
    order = np.argsort(state.oof_keys)
    keys = state.oof_keys[order]
    at = np.clip(np.searchsorted(keys, item_ids), 0, len(keys) - 1)
    known = (keys[at] == item_ids) & ~np.isnan(state.oof_probs[order][at]).any(axis=1)
    return known, state.oof_probs[order][at]


def review_scan_run(*, project_id: int, version_number: int | None = None) -> int | None:
    """Look for likely label errors and store them with the disagreement flags; returns how many
    items are flagged, or ``None`` when skipped (the project is gone, or after version
    ``version_number`` another retrain is pending or done: its own scan follows).

    The out-of-fold probabilities come from the latest version's training run, which computed
    them anyway (no model is trained here); labels that arrived since it wait for the next
    version. Without such a version (older files), the folds are trained here
    (``ml.review.scan_label_issues``). Box projects train their fold heads here, on the kept
    backbone maps (``detection_review.box_review_scan_run``).
    """
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        return None
    if version_number is not None:
        newer = ModelVersion.objects.filter(project=project, status="ready", number__gt=version_number)
        if project.training_requested or newer.exists():
            return None
    items_ensure_cached(project=project)
    if kind_of(project).boxes:  # likely box errors, from out-of-fold detections
        return box_review_scan_run(project=project)
    data = review_data(project=project)
    if len(data.labels) < SCAN_MIN_LABELS or len(np.unique(data.labels, axis=0)) < 2:
        return review_flags_publish(project_id=project.id)  # disagreements only
    found = _version_oof(project, data.item_ids)
    if found is not None:
        known, all_probs = found
        subset = np.flatnonzero(known)
        probs = all_probs[subset].astype(np.float64)
        labels = data.labels[subset]
        judge = find_multilabel_issues if project.multi_label else find_label_issues
        issues = judge(labels, probs)
    else:
        subset = np.arange(len(data.labels))
        labels = data.labels
        issues, probs = _scan_here(project, data, scan_label_issues)
    class_ids = np.array(data.class_ids, dtype=np.int64)
    suggested: list[tuple[int, ...]]
    if project.multi_label:  # the model's set, and its mean confidence in each class's yes or no
        suggested = [tuple(class_ids[np.asarray(row, dtype=bool)].tolist()) for row in issues.predicted]
        confidence = np.maximum(probs, 1 - probs).mean(axis=1)
    else:
        suggested, confidence = [(int(class_ids[p]),) for p in issues.predicted], probs.max(axis=1)
    item_ids = data.item_ids[subset]
    n_flagged = review_flags_publish(
        project_id=project.id,
        item_ids=item_ids.tolist(),
        answers=[data.answers[i] for i in subset],
        quality=issues.quality.tolist(),
        suggested=suggested,
        confidence=confidence.tolist(),
        flagged=item_ids[issues.ranked].tolist(),
    )
    logger.info("project %s: review scan of %s labels flagged %s", project_id, len(labels), n_flagged)
    return n_flagged


def _scan_here(project: Project, data: ReviewData, scan: Callable) -> tuple:
    """Out-of-fold models trained for the scan itself, on the cached images or embeddings."""
    cache = paths.cache_path(project.id, project.input_size)
    if project.model_family == "cnn":
        inputs = cache_read(cache, data.rows, project.input_size)
    else:
        backbone = load_backbone(project.model_family, project.backbone_path or None)
        inputs = embeddings_read(embeddings_ensure(cache, project.input_size, backbone), data.rows, backbone.dim)
    return scan(inputs, data.labels, data.n_classes, features=project.model_family != "cnn")
