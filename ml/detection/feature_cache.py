"""The detector's backbone maps, computed once per image and kept: two row files beside a project's
image cache, row i for image-cache row i, so that a retrain reads the maps instead of decoding and
running the backbone again (as ``ml.embeddings`` keeps embeddings).

- ``*.det<S>.f16``: the three maps of one image (strides 8, 16, 32 at input side S), flattened,
  float16: 32·G² + 96·(G/2)² + 320·(G/4)² values with G = S / 8 (77,824 at S = 256, 152 KB).
- ``*.det<S>.box.f64``: where the image sits in the letterboxed input: scale, pad_x, pad_y, width,
  height (``centernet.Letterbox``).

Rows are appended under the file's lock (``ml.rowfile``), so several workers may ask at once and
each image is run through the backbone once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ml import rowfile
from ml.detection.centernet import FEATURE_CHANNELS, STRIDE, FeatureMaps, Letterbox, extract_features
from ml.mobilenet import MobileNetV2

#: Images run through the backbone per batch while the cache fills.
CHUNK = 64


def map_shapes(input_size: int) -> list[tuple[int, int, int]]:
    """The (channels, side, side) of the three maps at ``input_size``."""
    grid = input_size // STRIDE
    return [(c, grid >> k, grid >> k) for k, c in enumerate(FEATURE_CHANNELS)]


def feature_dim(input_size: int) -> int:
    """Values in one image's flattened maps."""
    return sum(c * h * w for c, h, w in map_shapes(input_size))


def feature_paths(image_cache: Path, input_size: int) -> tuple[Path, Path]:
    """The maps' file and the letterboxes' file that go with an image cache file."""
    image_cache = Path(image_cache)
    stem = f"{image_cache.stem}.det{input_size}"
    return image_cache.with_name(f"{stem}.f16"), image_cache.with_name(f"{stem}.box.f64")


def features_ensure(
    image_cache: Path,
    total: int,
    load: Callable[[int], tuple[np.ndarray, tuple[int, int]]],
    backbone: MobileNetV2,
    *,
    input_size: int = 256,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Compute the maps of image-cache rows not done yet, up to ``total`` rows; returns how many were
    computed. ``load(row)`` gives that row's image as displayed (the original file, not the cache's
    small square): (h, w, 3) uint8, possibly shrunk (``ml.data.decode_displayed``), and its full
    (width, height), which the letterbox is kept for, so that boxes map to the image's own pixels."""
    maps_path, box_path = feature_paths(image_cache, input_size)
    dim = feature_dim(input_size)
    report = progress or (lambda _f: None)
    with rowfile.locked(maps_path, (dim,), np.float16) as maps, rowfile.locked(box_path, (5,), np.float64) as boxes:
        done = min(maps.rows, boxes.rows)
        maps.truncate(done)  # a worker that died between the two files leaves one row more in one
        boxes.truncate(done)
        for start in range(done, total, CHUNK):
            rows = range(start, min(start + CHUNK, total))
            loaded = [load(row) for row in rows]
            found = extract_features(backbone, [pixels for pixels, _ in loaded], input_size=input_size)
            flat = torch.cat([m.reshape(len(rows), -1) for m in found.maps], dim=1)
            maps.append(flat.numpy().astype(np.float16))
            placed = [
                [b.scale * b.width / width, b.pad_x, b.pad_y, width, height]  # input px per full-size px
                for b, (_, (width, height)) in zip(found.boxes_in, loaded, strict=True)
            ]
            boxes.append(np.asarray(placed, dtype=np.float64))
            report((rows[-1] + 1 - done) / max(1, total - done))
    report(1.0)
    return max(0, total - done)


def features_read(image_cache: Path, rows: Sequence[int] | np.ndarray, *, input_size: int = 256) -> FeatureMaps:
    """The maps and letterboxes of image-cache ``rows`` (K,), as ``centernet.FeatureMaps``."""
    maps_path, box_path = feature_paths(image_cache, input_size)
    rows = np.asarray(rows, dtype=np.int64)
    flat = rowfile.read_rows(maps_path, rows, (feature_dim(input_size),), np.float16)
    placed = rowfile.read_rows(box_path, rows, (5,), np.float64)
    maps, at = [], 0
    for c, h, w in map_shapes(input_size):
        size = c * h * w
        maps.append(torch.from_numpy(np.ascontiguousarray(flat[:, at : at + size])).reshape(len(rows), c, h, w))
        at += size
    boxes_in = [Letterbox(float(s), float(px), float(py), int(w), int(h)) for s, px, py, w, h in placed]
    return FeatureMaps((maps[0], maps[1], maps[2]), boxes_in)
