"""Frozen backbones and the per-project embedding cache.

A backbone maps (B, H, W, 3) uint8 images to (B, D) float32 embeddings: the packaged
ImageNet MobileNetV2 (``pretrained``) or a user's TorchScript file (``torchscript``).
Embeddings are computed once per image-cache row and kept in an append-only float32
row file (``ml.rowfile``) beside the image cache; row i of the embedding file belongs to row i of the image
cache, so the file only ever grows at its end, like the image cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml import rowfile
from ml.data import cache_len, cache_read
from ml.mobilenet import IMAGENET_MEAN, IMAGENET_STD, load_mobilenet_v2

#: Backbone input side: the cached images are resized to this when smaller (bilinear),
#: and to at most MAX_EMBED_SIZE when larger, which bounds the one-off embedding cost.
MIN_EMBED_SIZE = 96
MAX_EMBED_SIZE = 224

EMBED_BATCH = 128


def embed_side(size: int) -> int:
    """The side that (size, size) cached images are resized to before the backbone runs."""
    return min(max(size, MIN_EMBED_SIZE), MAX_EMBED_SIZE)


@dataclass
class Backbone:
    """A frozen feature extractor; ``key`` names its embedding cache file."""

    module: nn.Module
    key: str
    dim: int
    forward: Callable[[torch.Tensor], torch.Tensor]

    def embed(self, images: np.ndarray, *, batch_size: int = EMBED_BATCH) -> np.ndarray:
        """(N, H, W, 3) uint8 images -> (N, dim) float32 embeddings."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        side = embed_side(images.shape[1]) if len(images) else 0
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(images[start : start + batch_size].astype(np.float32)).permute(0, 3, 1, 2)
                x = x / 255.0
                if x.shape[2] != side or x.shape[3] != side:
                    x = nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
                x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
                out[start : start + len(x)] = self.forward(x).float().reshape(len(x), -1).numpy()
        return out


def load_backbone(family: str, backbone_path: str | os.PathLike | None = None) -> Backbone:
    """The frozen backbone of a model family: ``pretrained`` or ``torchscript`` (needs ``backbone_path``).

    A TorchScript backbone takes (B, 3, H, W) ImageNet-normalised float input and returns
    (B, D) or (B, D, h, w) (then averaged over h, w).
    """
    if family == "pretrained":
        model = load_mobilenet_v2().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return Backbone(module=model, key="mobilenet_v2", dim=1280, forward=model.embed)
    if family == "torchscript":
        if not backbone_path:
            raise ValueError("the torchscript family needs a backbone file (project.backbone_path)")
        path = Path(backbone_path)
        module = torch.jit.load(str(path), map_location="cpu").eval()

        def forward(x: torch.Tensor) -> torch.Tensor:
            y = module(x)
            return y.mean(dim=(2, 3)) if y.ndim == 4 else y

        with torch.inference_mode():
            dim = int(forward(torch.zeros(1, 3, MIN_EMBED_SIZE, MIN_EMBED_SIZE)).reshape(1, -1).shape[1])
        stat = path.stat()
        return Backbone(module=module, key=f"ts_{stat.st_size}_{int(stat.st_mtime)}", dim=dim, forward=forward)
    raise ValueError(f"unknown backbone family {family!r}; valid: pretrained, torchscript")


def embedding_path(image_cache: Path, backbone: Backbone) -> Path:
    """The embedding file that goes with an image cache file, one per backbone."""
    image_cache = Path(image_cache)
    return image_cache.with_name(f"{image_cache.stem}.emb_{backbone.key}.f32")


def embeddings_ensure(
    image_cache: Path,
    size: int,
    backbone: Backbone,
    *,
    progress: Callable[[float], None] | None = None,
    chunk: int = 1024,
) -> Path:
    """Embed every image-cache row that has no embedding yet; returns the embedding file.

    Several processes may call this at once: the rows are computed and appended while the
    embedding file is locked (``ml.rowfile.locked``), so each row is embedded once.

    Parameters
    ----------
    image_cache : Path
        The (R, size, size, 3) uint8 image cache (``ml.data``).
    size : int
        Its image side.
    backbone : Backbone
        What embeds; its ``key`` names the file, its ``dim`` D the row width.
    progress : callable, optional
        Gets fractions 0..1 of the rows still to embed.
    chunk : int
        Rows embedded per batch.

    Returns
    -------
    Path
        The (R, D) float32 row file beside the image cache (``embedding_path``).
    """
    path = embedding_path(image_cache, backbone)
    report = progress or (lambda _f: None)
    with rowfile.locked(path, (backbone.dim,), np.float32) as writer:
        total = cache_len(image_cache, size)
        # The embeddings belong to this image cache only if its first row is the one
        # they were computed from (a recreated cache, e.g. of a reused project id, is not).
        stamp = path.with_name(path.name + ".src")
        first = hashlib.sha256(cache_read(image_cache, [0], size).tobytes()).hexdigest() if total else ""
        done = writer.rows
        if done > total or (done and (not stamp.exists() or stamp.read_text() != first)):
            writer.truncate(0)  # stale: everything is recomputed
            done = 0
        if total and not done:
            stamp.write_text(first)
        for start in range(done, total, chunk):
            rows = np.arange(start, min(start + chunk, total))
            writer.append(np.asarray(backbone.embed(cache_read(image_cache, rows, size)), dtype=np.float32))
            report((rows[-1] + 1 - done) / max(1, total - done))
    report(1.0)
    return path


def embeddings_read(path: Path, rows: np.ndarray, dim: int) -> np.ndarray:
    """Rows of an embedding file.

    Parameters
    ----------
    path : Path
        The file ``embeddings_ensure`` returned.
    rows : (K,) int
        Image-cache rows.
    dim : int
        The backbone's embedding width D.

    Returns
    -------
    (K, D) float32

    Raises
    ------
    IndexError
        If a row has no embedding (or the file is missing).
    """
    return rowfile.read_rows(path, np.asarray(rows, dtype=np.int64).reshape(-1), (dim,), np.float32)
