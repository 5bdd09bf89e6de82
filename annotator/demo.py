"""The demo's images: scikit-learn's digits as 64×64 PNGs, for ``manage.py create_demo`` and the
benchmarks' digits projects (``annotator.benchdata``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def render_digits(folder: Path, *, limit: int | None = None) -> list[int]:
    """Write scikit-learn's 8×8 digits as 64×64 grayscale PNGs; returns the true labels in file order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, targets = digits.images, digits.target
    if limit is not None:
        images, targets = images[:limit], targets[:limit]
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        path = folder / f"digit_{i:04d}.png"
        if not path.exists():
            pixels = (255 - image * (255 / 16)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).resize((64, 64), Image.Resampling.BILINEAR).save(path)
    return [int(t) for t in targets]
