"""A model version's predictions, kept beside its weights so that an item's history can show what
every version guessed: one structured ``.npy`` array, sorted by item id, read memory-mapped (a lookup
is a binary search, whatever the pool's size). No HTTP and no database here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

#: One row per item: its id, the predicted class's id, and the chance that guess is right.
DTYPE = np.dtype([("item", "<i8"), ("label_class", "<i8"), ("confidence", "<f4")])


def predictions_write(path: Path, item_ids: np.ndarray, class_ids: np.ndarray, confidence: np.ndarray) -> None:
    """Store (N,) ``item_ids``, their predicted (N,) ``class_ids`` and (N,) ``confidence`` at ``path``,
    whole or not at all (written to a temporary file, then renamed)."""
    rows = np.empty(len(item_ids), dtype=DTYPE)
    rows["item"], rows["label_class"], rows["confidence"] = item_ids, class_ids, confidence
    rows.sort(order="item")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prediction_read(path: Path, item_id: int) -> tuple[int, float] | None:
    """The (class id, confidence) stored for ``item_id`` at ``path``; ``None`` without the file or the row."""
    try:
        rows = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    at = int(np.searchsorted(rows["item"], item_id))
    if at >= len(rows) or int(rows["item"][at]) != item_id:
        return None
    return int(rows["label_class"][at]), float(rows["confidence"][at])
