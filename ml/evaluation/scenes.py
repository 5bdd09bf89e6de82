"""A generated object-detection dataset: scenes of several coloured shapes, each with its box.

Each scene is a cluttered background (a random colour, stray lines, pixel noise) with 0 to
``max_objects`` shapes of the six classes of ``ml.evaluation.shapes``, at sizes from small to a
third of the image, in random colours and turns, overlapping up to a limit so each stays
recognisable; a share of scenes holds none ("nothing here" is an answer too). The boxes are the
tight extents of what was drawn, in pixels. Written as ``OUT/images/*.png`` and a COCO file
``OUT/annotations.json``, which detectors, pycocotools and the box import read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ml.boxes import iou_matrix
from ml.evaluation.shapes import CLASSES, _colour, _contrasting, paint

#: The share of scenes drawn with no object at all.
EMPTY_SHARE = 0.1
#: A new shape is placed elsewhere when its box would overlap an earlier one's this much (IoU).
MAX_OVERLAP = 0.4
#: Shape radius as a share of the image side: from small objects to large ones.
RADIUS_RANGE = (0.05, 0.17)


@dataclass(frozen=True)
class Scene:
    """One generated scene: ``pixels`` (H, W, 3) uint8, ``boxes`` (K, 4) float ``x, y, w, h`` in
    pixels, ``labels`` (K,) class positions in ``CLASSES``."""

    pixels: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


def draw_scene(size: int, rng: np.random.Generator, *, max_objects: int = 6) -> Scene:
    """One (size, size) scene with up to ``max_objects`` shapes; deterministic given ``rng``'s state."""
    if size < 32 or max_objects < 0:
        raise ValueError("size must be at least 32 and max_objects at least 0")
    ground = _colour(rng)
    image = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 6))):  # clutter: thin lines in other colours
        ends = [float(v) for v in rng.uniform(0, size, size=4)]
        draw.line(ends, fill=_colour(rng), width=max(1, size // 64))
    wanted = 0 if max_objects == 0 or rng.random() < EMPTY_SHARE else int(rng.integers(1, max_objects + 1))
    boxes: list[tuple[float, float, float, float]] = []
    labels: list[int] = []
    for _ in range(wanted):
        for _attempt in range(20):  # a free spot, or the object is left out
            r = float(rng.uniform(*RADIUS_RANGE)) * size
            cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, size=2))
            square = np.array([[cx - r, cy - r, 2 * r, 2 * r]])
            if not boxes or iou_matrix(square, _xywh(boxes)).max() <= MAX_OVERLAP:
                break
        else:
            continue
        kind = int(rng.integers(0, len(CLASSES)))
        turn = float(rng.uniform(0, 2 * math.pi))
        x0, y0, x1, y1 = paint(draw, CLASSES[kind], (cx, cy), r, turn, _contrasting(rng, ground))
        boxes.append((max(x0, 0.0), max(y0, 0.0), min(x1, size), min(y1, size)))
        labels.append(kind)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 10, size=(size, size, 3))
    return Scene(pixels.clip(0, 255).astype(np.uint8), _xywh(boxes), np.asarray(labels, dtype=np.int64))


def _xywh(corners: list[tuple[float, float, float, float]]) -> np.ndarray:
    """(K, 4) ``x, y, w, h`` from ``(x0, y0, x1, y1)`` corners."""
    array = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([array[:, :2], array[:, 2:] - array[:, :2]])


def write_scenes(
    root: Path, *, n_images: int = 500, size: int = 128, max_objects: int = 6, seed: int = 0
) -> dict[str, int]:
    """Write ``n_images`` scenes as ``root/images/scene_NNNNN.png`` and their boxes as a COCO file
    ``root/annotations.json`` (``bbox`` ``[x, y, w, h]`` in pixels rounded to 0.01, ``area``,
    ``iscrowd`` 0; category ids from 1 in ``CLASSES`` order). Returns the counts written:
    ``images``, ``boxes``, ``empty`` (scenes without an object). Deterministic given ``seed``."""
    if n_images < 1:
        raise ValueError("n_images must be at least 1")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    empty = 0
    for i in range(n_images):
        scene = draw_scene(size, rng, max_objects=max_objects)
        name = f"scene_{i:05d}.png"
        Image.fromarray(scene.pixels).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        empty += len(scene.labels) == 0
        for box, label in zip(scene.boxes, scene.labels, strict=True):
            x, y, w, h = (round(float(v), 2) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(label) + 1,
                    "bbox": [x, y, w, h],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(CLASSES)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(coco))
    return {"images": n_images, "boxes": len(annotations), "empty": empty}
