"""A generated image dataset that the engine was never tuned on: coloured shapes on cluttered ground.

Six classes (circle, ring, square, triangle, cross, star) drawn with Pillow at random sizes,
positions, rotations and colours, over a random background colour with a few stray lines and
pixel noise, so that neither colour nor position gives the class away. Written as an
ImageFolder directory (one subfolder per class) of PNGs, which ``manage.py simulate --dataset
PATH`` and the import read like any other folder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "ring", "square", "triangle", "cross", "star")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in rng.integers(0, 256, size=3))
    return red, green, blue


def _contrasting(rng: np.random.Generator, ground: tuple[int, int, int]) -> tuple[int, int, int]:
    """A random colour at least 120 apart from ``ground`` (sum of channel differences)."""
    while True:
        colour = _colour(rng)
        if sum(abs(a - b) for a, b in zip(colour, ground, strict=True)) >= 120:
            return colour


def _polygon(cx: float, cy: float, radii: list[float], turn: float) -> list[tuple[float, float]]:
    """Vertices at evenly spaced angles from ``turn``, each at its own radius."""
    n = len(radii)
    return [
        (cx + r * math.cos(turn + 2 * math.pi * i / n), cy + r * math.sin(turn + 2 * math.pi * i / n))
        for i, r in enumerate(radii)
    ]


def paint(
    draw: ImageDraw.ImageDraw,
    kind: str,
    centre: tuple[float, float],
    r: float,
    turn: float,
    colour: tuple[int, int, int],
) -> tuple[float, float, float, float]:
    """Draw one shape of ``kind`` of radius ``r`` around ``centre``, turned by ``turn`` radians; returns
    its tight box ``(x0, y0, x1, y1)`` in pixels (the extent of what was drawn)."""
    cx, cy = centre
    if kind in ("circle", "ring"):
        box = (cx - r, cy - r, cx + r, cy + r)
        if kind == "circle":
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=max(2, round(r * 0.3)))
        return box
    if kind == "cross":  # two bars at right angles
        points: list[tuple[float, float]] = []
        for angle in (turn, turn + math.pi / 2):
            dx, dy = math.cos(angle), math.sin(angle)
            w = r * 0.28
            bar = [
                (cx - r * dx - w * dy, cy - r * dy + w * dx),
                (cx + r * dx - w * dy, cy + r * dy + w * dx),
                (cx + r * dx + w * dy, cy + r * dy - w * dx),
                (cx - r * dx + w * dy, cy - r * dy - w * dx),
            ]
            draw.polygon(bar, fill=colour)
            points += bar
    else:
        radii = {"square": [r] * 4, "triangle": [r] * 3, "star": [r, r * 0.42] * 5}[kind]
        points = _polygon(cx, cy, radii, turn)
        draw.polygon(points, fill=colour)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of ``kind``."""
    if kind not in CLASSES:
        raise ValueError(f"unknown shape {kind!r}; valid: {', '.join(CLASSES)}")
    ground = _colour(rng)
    image = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 4))):  # clutter: a few thin lines in other colours
        ends = [float(v) for v in rng.uniform(0, size, size=4)]
        draw.line(ends, fill=_colour(rng), width=max(1, size // 32))
    colour = _contrasting(rng, ground)
    r = float(rng.uniform(0.18, 0.38)) * size
    cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, size=2))
    turn = float(rng.uniform(0, 2 * math.pi))
    paint(draw, kind, (cx, cy), r, turn, colour)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, size=(size, size, 3))
    return pixels.clip(0, 255).astype(np.uint8)


def write_shapes(root: Path, *, per_class: int = 300, size: int = 64, seed: int = 0) -> int:
    """Write ``per_class`` PNGs of each class under ``root/<class>/``; returns how many were written.

    Deterministic given ``seed``.
    """
    if per_class < 1 or size < 16:
        raise ValueError("per_class must be at least 1 and size at least 16")
    rng = np.random.default_rng(seed)
    root = Path(root)
    for kind in CLASSES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw_shape(kind, size, rng)).save(folder / f"{kind}_{i:05d}.png")
    return per_class * len(CLASSES)
