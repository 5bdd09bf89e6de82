"""A box project's training round (``training_run`` hands box projects here): the detector of
``ml.detection`` trained on the labeled images' boxes, its pre-boxes written for every unlabeled
image with the version, the pool re-ranked by what would teach it most, and the version published
with its mAP on held-out images.

The backbone's maps are computed once per image from the original file (``ml.detection.
feature_cache``, beside the image cache) and read back on every later round. "Nothing here" images
train as negatives. Until the first model, the queue's cold start is the classification one (on
embeddings), as for every project.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import torch
from django.conf import settings
from django.core.files.storage import default_storage

from annotator import paths
from annotator.kinds.boxes import CheckedBox
from annotator.models import BoxRole, Item, ItemBox, ModelVersion, Project
from annotator.selectors.classes import class_order
from annotator.selectors.training_data import training_data
from annotator.services.boxes import item_boxes_store
from annotator.services.training import model_version_publish
from ml.data import cache_len, decode_displayed
from ml.detection.feature_cache import features_ensure, features_read
from ml.detection.loop import detector_round
from ml.mobilenet import load_mobilenet_v2
from ml.selection import plan_batch, priorities_with_batch

logger = logging.getLogger(__name__)


def detector_input_size() -> int:
    """The detector's square input side (``DETECTOR_INPUT_SIZE``, a multiple of 32; 256 by default)."""
    return int(settings.DETECTOR_INPUT_SIZE)


def _loader(project: Project, input_size: int) -> Callable[[int], tuple[np.ndarray, tuple[int, int]]]:
    """Image-cache row -> the item's image as displayed, decoded from its stored file (at most twice
    the detector's input on its longer side) and its full size."""
    files = dict(Item.objects.filter(project=project, cache_row__isnull=False).values_list("cache_row", "file"))
    storage = default_storage

    def load(row: int) -> tuple[np.ndarray, tuple[int, int]]:
        name = files.get(row)
        if name is None:  # a cache row whose item was deleted: a grey square, never read
            return np.full((input_size, input_size, 3), 128, np.uint8), (input_size, input_size)
        with storage.open(name, "rb") as fh:
            return decode_displayed(cast(BinaryIO, fh), 2 * input_size)  # a stored file reads as a binary file

    return load


def detector_maps_ensure(project: Project, *, progress: Callable[[float], None] | None = None) -> Path:
    """Compute the detector's maps of the project's cached images not done yet (``ml.detection.
    feature_cache``, at ``detector_input_size()``); returns the image cache they sit beside."""
    size = detector_input_size()
    cache = paths.cache_path(project.id, project.input_size)
    loader = _loader(project, size)
    features_ensure(
        cache, cache_len(cache, project.input_size), loader, load_mobilenet_v2(), input_size=size, progress=progress
    )
    return cache


def labeled_boxes(item_ids: np.ndarray, positions: dict[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each labeled item's consensus boxes, (K, 4) ``x, y, w, h`` and (K,) class positions; one query."""
    found: dict[int, list[tuple[float, float, float, float, int]]] = {int(i): [] for i in item_ids}
    rows = ItemBox.objects.filter(item_id__in=[int(i) for i in item_ids], role=BoxRole.CONSENSUS)
    for item_id, class_id, x, y, w, h in rows.values_list("item_id", "label_class_id", "x", "y", "w", "h"):
        if class_id in positions:
            found[item_id].append((x, y, w, h, positions[class_id]))
    boxes = [np.array([b[:4] for b in found[int(i)]], dtype=np.float64).reshape(-1, 4) for i in item_ids]
    labels = [np.array([b[4] for b in found[int(i)]], dtype=np.int64) for i in item_ids]
    return boxes, labels


def rounded_box(box: np.ndarray) -> tuple[float, float, float, float]:
    x, y, w, h = (round(float(v), 2) for v in box)
    return x, y, w, h


def detector_round_publish(*, project: Project, version: ModelVersion, progress: Callable[[float], None]) -> None:
    """Train, detect, score and publish ``version`` of the box project (see the module docstring)."""
    data = training_data(project=project)
    order = class_order(project_id=project.id)
    size = detector_input_size()
    cache = detector_maps_ensure(project, progress=lambda f: progress(0.3 * f))
    labeled = features_read(cache, data.labeled_rows, input_size=size)
    pool = features_read(cache, data.pool_rows, input_size=size)
    boxes, labels = labeled_boxes(data.labeled_ids, order.position_of_id)
    result = detector_round(
        labeled,
        boxes,
        labels,
        pool,
        len(order),
        input_size=size,
        strategy=version.strategy,
        allow_flips=project.allow_flips,
        epochs=int(settings.DETECTOR_EPOCHS),
        min_steps=int(settings.DETECTOR_MIN_STEPS),
        seed=version.number,
        progress=lambda f: progress(0.3 + 0.65 * f),
    )
    relpath = paths.model_relpath(project.id, version.number)
    meta = {"kind": "boxes", "detector": "centernet", "input_size": size, "classes": order.names}
    target = paths.model_path(relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": result.head.state_dict(), "meta": meta, "n_classes": len(order)}, target)
    preboxes = {
        int(item_id): [
            CheckedBox(order.ids[int(c)], *rounded_box(box), confidence=round(float(p), 4))
            for box, c, p in zip(found.boxes, found.labels, sure, strict=True)
        ]
        for item_id, found, sure in zip(data.pool_ids, result.pool, result.confidence, strict=True)
    }
    item_boxes_store(boxes=preboxes, role=BoxRole.PREDICTED, version_id=version.id)
    counts = np.array([sum(int((lab == c).any()) for lab in labels) for c in range(len(order))])
    pooled = pool.maps[2].float().mean(dim=(2, 3)).numpy() if len(pool) else np.zeros((0, 320))
    batch = plan_batch(
        result.scores,
        project.retrain_every,
        strategy=version.strategy,
        selection="diverse",
        probs=result.presence,
        counts=counts,
        embeddings=pooled,
        seed=version.number,
    )
    held = result.held_out
    held_out = (
        np.asarray(data.labeled_ids)[held],
        result.held_out_presence,
        result.held_out_presence.max(axis=1) if len(held) else np.zeros(0),
    )
    model_version_publish(
        version=version,
        item_ids=data.pool_ids,
        probs=result.presence,
        confidence=result.presence.max(axis=1) if len(result.presence) else np.zeros(0),
        scores=result.scores,
        priorities=priorities_with_batch(result.scores, batch),
        metrics={**result.metrics, "n_pool": len(data.pool_ids), "input_size": size, "detector": "centernet"},
        weights=relpath,
        held_out=held_out if len(held) else None,
    )
    logger.info("project %s: published detector version %s %s", project.id, version.number, result.metrics)
