"""Detection quality with the library everyone uses: COCO mAP from ``pycocotools``' COCOeval."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from ml.detection.centernet import Detections


def coco_map(
    truth_boxes: Sequence[np.ndarray],
    truth_labels: Sequence[np.ndarray],
    detections: Sequence[Detections],
    *,
    n_classes: int,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, float]:
    """``map50`` (mAP at IoU 0.5) and ``map`` (mAP over IoU 0.5:0.95) of N images' detections against
    their true boxes ((K, 4) ``x, y, w, h`` and (K,) classes each) on images of ``sizes`` (width,
    height); ``n`` images. -1 where COCOeval has nothing to measure (no true box at all)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "width": w, "height": h} for i, (w, h) in enumerate(sizes)]
    annotations: list[dict[str, object]] = []
    for i, (boxes, labels) in enumerate(zip(truth_boxes, truth_labels, strict=True)):
        for box, label in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(labels), strict=True):
            x, y, w, h = (float(v) for v in box)
            entry = {"image_id": i + 1, "category_id": int(label) + 1, "bbox": [x, y, w, h], "area": w * h}
            annotations.append({"id": len(annotations) + 1, "iscrowd": 0, **entry})
    results = [
        {"image_id": i + 1, "category_id": int(c) + 1, "bbox": [float(v) for v in b], "score": float(s)}
        for i, d in enumerate(detections)
        for b, s, c in zip(d.boxes, d.scores, d.labels, strict=True)
    ]
    if not annotations:
        return {"map50": -1.0, "map": -1.0, "n": len(sizes)}
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        truth = COCO()
        truth.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": str(k)} for k in range(n_classes)],
        }
        truth.createIndex()
        found = truth.loadRes(results) if results else COCO()
        if not results:
            return {"map50": 0.0, "map": 0.0, "n": len(sizes)}
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map50": float(evaluation.stats[1]), "map": float(evaluation.stats[0]), "n": len(sizes)}
