"""Box datasets for the simulation: generated scenes, or a folder of images with a COCO file.

Either way a ``BoxDataset`` holds every image's true boxes (``x, y, w, h`` in the displayed image's
pixels, EXIF applied) and classes, its displayed size, and ``load(i)``, which decodes image ``i`` as
the product's feature cache reads a stored file (``ml.data.decode_displayed``), so the simulation
computes the detector's maps exactly as a worker does (``ml.detection.feature_cache``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data import decode_displayed
from ml.detection.feature_cache import features_ensure, features_read
from ml.evaluation.box_simulate import BoxData
from ml.evaluation.scenes import draw_scene
from ml.evaluation.shapes import CLASSES
from ml.mobilenet import load_mobilenet_v2


@dataclass
class BoxDataset:
    """N images: ``boxes`` (K_i, 4) and ``labels`` (K_i,) each, ``sizes`` (width, height) each,
    ``classes`` the C names, ``load(i)`` -> ((h, w, 3) uint8 possibly shrunk, (width, height)),
    and ``key``, which names the data and its content for the feature cache."""

    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    sizes: list[tuple[int, int]]
    classes: list[str]
    load: Callable[[int], tuple[np.ndarray, tuple[int, int]]]
    key: str

    def __len__(self) -> int:
        return len(self.boxes)


def shapes_dataset(n_images: int, *, size: int = 128, seed: int = 0) -> BoxDataset:
    """``n_images`` generated scenes (``ml.evaluation.scenes``, as ``make_shapes --boxes`` writes)."""
    rng = np.random.default_rng(seed)
    scenes = [draw_scene(size, rng) for _ in range(n_images)]
    return BoxDataset(
        boxes=[s.boxes for s in scenes],
        labels=[s.labels for s in scenes],
        sizes=[(size, size)] * n_images,
        classes=list(CLASSES),
        load=lambda i: (scenes[i].pixels, (size, size)),
        key=f"shapes{size}_{n_images}_{seed}",
    )


def coco_folder_dataset(root: Path, *, max_side: int) -> BoxDataset:
    """A folder with images and a COCO file (``annotations.json``, or the only ``*.json`` in it):
    the images the file lists that exist (``file_name`` under the folder or its ``images/``), their
    boxes (crowd boxes left out) in category order. Raises ``ValueError`` for a folder without one
    COCO file or with no image found."""
    root = Path(root)
    found = [root / "annotations.json"] if (root / "annotations.json").is_file() else sorted(root.glob("*.json"))
    if len(found) != 1:
        raise ValueError(f"{root} needs one COCO file (annotations.json or a single *.json); found {len(found)}")
    try:
        coco = json.loads(found[0].read_text())
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        position = {c["id"]: k for k, c in enumerate(categories)}
        per_image: dict[int, list[tuple[list[float], int]]] = {im["id"]: [] for im in coco["images"]}
        for a in coco.get("annotations", []):
            if not a.get("iscrowd") and a["image_id"] in per_image and a["category_id"] in position:
                per_image[a["image_id"]].append(([float(v) for v in a["bbox"]], position[a["category_id"]]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{found[0]} is not a COCO file: {exc}") from exc
    files, boxes, labels, sizes = [], [], [], []
    for image in coco["images"]:
        path = next((p for p in (root / image["file_name"], root / "images" / image["file_name"]) if p.is_file()), None)
        if path is None:
            continue
        entries = per_image[image["id"]]
        files.append(path)
        boxes.append(np.array([b for b, _ in entries], dtype=np.float64).reshape(-1, 4))
        labels.append(np.array([c for _, c in entries], dtype=np.int64))
        sizes.append((int(image["width"]), int(image["height"])))
    if not files:
        raise ValueError(f"none of the images {found[0].name} lists is in {root} or {root / 'images'}")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()[:12]
    return BoxDataset(
        boxes=boxes,
        labels=labels,
        sizes=sizes,
        classes=[str(c["name"]) for c in categories],
        load=lambda i: decode_displayed(files[i], max_side),
        key=f"{root.name or 'data'}_{len(files)}_{digest}",
    )


def box_data(
    dataset: BoxDataset,
    *,
    test_fraction: float,
    seed: int,
    input_size: int,
    cache_dir: Path,
    log: Callable[[str], None] | None = None,
) -> BoxData:
    """Split ``dataset`` into pool and test (a seeded permutation, ``test_fraction`` to test) and
    read the detector's maps of every image, computed once by the product's feature cache
    (``ml.detection.feature_cache``) into ``cache_dir`` and read back on later runs."""

    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    cache = Path(cache_dir) / f"boxsim_{dataset.key}.cache"
    cache.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    computed = features_ensure(cache, len(dataset), dataset.load, load_mobilenet_v2(), input_size=input_size)
    if log and computed:
        log(f"  backbone maps of {computed} images computed once ({time.perf_counter() - started:.0f} s)")
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_test = max(1, round(len(dataset) * test_fraction))
    test, pool = np.sort(order[:n_test]), np.sort(order[n_test:])
    return BoxData(
        pool=features_read(cache, pool, input_size=input_size),
        pool_boxes=[dataset.boxes[i] for i in pool],
        pool_labels=[dataset.labels[i] for i in pool],
        test=features_read(cache, test, input_size=input_size),
        test_boxes=[dataset.boxes[i] for i in test],
        test_labels=[dataset.labels[i] for i in test],
        n_classes=len(dataset.classes),
    )
