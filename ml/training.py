"""Training: one loop, a typed config, a schedule that grows with the labels.

``fit`` trains a model for a fixed number of AdamW steps under a cosine-annealed learning rate,
on batches of its labeled items and, when it has them, pseudo-labeled unlabeled items (half of
each batch). There is no validation split and no early stopping: the schedule is set by the
number of labels (``schedule_steps``), so every label trains the model, and how good the model is
gets measured out of fold (``ml.crossfit``, ``ml.calibration``). ``train`` and ``train_head`` fit
one model on every label; ``ml.crossfit`` fits the served model and its fold models side by side.

Labels are (N,) class indices (one class per item: softmax and cross-entropy) or an (N, C) 0/1
matrix (multi-label: several classes per item, a sigmoid per class and binary cross-entropy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ml.models.cnn import Standardize, build_head, build_model, feature_head, to_tensor

#: Steps of a schedule: MIN_STEPS + STEPS_PER_LABEL * labels, at most MAX_STEPS.
MIN_STEPS = 150
STEPS_PER_LABEL = 0.5
MAX_STEPS = 600
#: Heads (on cached embeddings) cost little per step: a longer schedule.
HEAD_STEPS_FACTOR = 2


@dataclass(frozen=True)
class TrainConfig:
    """How a model trains: batch size, AdamW's learning rate and weight decay, augmentation."""

    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    augment: bool = True
    allow_flips: bool = False
    multi_label: bool = False


#: The CNN on images, and a head on embeddings (no augmentation, stronger weight decay).
CNN_CONFIG = TrainConfig()
HEAD_CONFIG = TrainConfig(lr=1e-3, weight_decay=1e-2, augment=False)


def schedule_steps(n_labels: int, *, head: bool = False) -> int:
    """Optimiser steps for a number of labels: MIN_STEPS + STEPS_PER_LABEL per label, at most MAX_STEPS.

    Parameters
    ----------
    n_labels : int
    head : bool
        A head on embeddings: ``HEAD_STEPS_FACTOR`` times as many (its steps cost little).

    Returns
    -------
    int
    """
    steps = min(MAX_STEPS, max(MIN_STEPS, round(MIN_STEPS + STEPS_PER_LABEL * n_labels)))
    return steps * (HEAD_STEPS_FACTOR if head else 1)


class _Stream:
    """Endless batches of indices into n items: one shuffled pass after another."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n, self.rng, self.buffer = n, rng, np.zeros(0, dtype=np.int64)

    def take(self, size: int) -> np.ndarray:
        while len(self.buffer) < size:
            self.buffer = np.concatenate([self.buffer, self.rng.permutation(self.n)])
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def _stages(model: nn.Module) -> list[nn.Module]:
    """The model as a flat list of stages: a CNN is [features, dropout, linear]; a head its layers."""
    split = feature_head(model)
    if split is not None:
        return [split[0], *split[1].children()]
    return list(model.children())


def _forward_train(stages: list[nn.Module], x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training-mode forward pass with dropout masks drawn from the model's own generator, so
    models trained in parallel threads stay deterministic (``nn.Dropout`` shares torch's global RNG)."""
    for stage in stages:
        if isinstance(stage, nn.Dropout):
            if stage.p > 0:
                keep = torch.rand(x.shape, generator=generator, device=x.device) >= stage.p
                x = x * keep / (1.0 - stage.p)
        else:
            x = stage(x)
    return x


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: np.ndarray,
    *,
    steps: int,
    config: TrainConfig,
    seed: int,
    pool_x: torch.Tensor | None = None,
    pseudo_rows: np.ndarray | None = None,
    pseudo_classes: np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
) -> nn.Module:
    """Train ``model`` in place on the labeled ``rows`` (the one training loop of ``ml``).

    AdamW under a cosine-annealed learning rate for exactly ``steps`` steps. With pseudo-labels,
    half of each batch is pseudo-labeled, with its own cross-entropy added to the loss.
    Deterministic given ``seed`` (dropout masks come from the model's own generator).

    Parameters
    ----------
    model : nn.Module
        A ``build_model`` CNN or a ``build_head`` head.
    x : (N, 3, S, S) or (N, D) float32 tensor
        Images (``ml.models.cnn.to_tensor``) or embeddings.
    y : (N,) int64 or (N, C) float32 0/1 tensor
        Classes, or class sets (``config.multi_label``).
    rows : (R,) int
        The rows of x trained on.
    steps : int
    config : TrainConfig
    seed : int
    pool_x : (M, ...) float32 tensor, optional
        Unlabeled inputs that pseudo-labels point into.
    pseudo_rows : (P,) int, optional
        Rows of ``pool_x``.
    pseudo_classes : (P,) int, optional
        Their pseudo-labels.
    progress : callable, optional
        Gets fractions 0..1.

    Returns
    -------
    nn.Module
        ``model``, in eval mode.
    """
    report = progress or (lambda _fraction: None)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps))
    loss_fn: nn.Module = nn.BCEWithLogitsLoss() if config.multi_label else nn.CrossEntropyLoss()
    pseudo = None
    if pool_x is not None and pseudo_rows is not None and len(pseudo_rows) and not config.multi_label:
        pseudo = _Stream(len(pseudo_rows), rng)
        pseudo_y = torch.from_numpy(np.asarray(pseudo_classes, dtype=np.int64)).to(x.device)
    labeled = _Stream(len(rows), rng)
    stages = _stages(model)
    model.train()
    for step in range(steps):
        size = config.batch_size // 2 if pseudo is not None else config.batch_size
        batch = torch.from_numpy(rows[labeled.take(size)]).to(x.device)
        xb, n_real = x[batch], len(batch)
        if pseudo is not None:
            assert pool_x is not None and pseudo_rows is not None
            picks = pseudo.take(config.batch_size - n_real)
            xb = torch.cat([xb, pool_x[torch.from_numpy(pseudo_rows[picks]).to(x.device)]])
        if config.augment:
            xb = _augment(xb, rng, config.allow_flips)
        logits = _forward_train(stages, xb, generator)
        loss = loss_fn(logits[:n_real], y[batch])
        if pseudo is not None:
            loss = loss + nn.functional.cross_entropy(logits[n_real:], pseudo_y[torch.from_numpy(picks)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 10 == 9 or step == steps - 1:
            report((step + 1) / steps)
    model.eval()
    report(1.0)
    return model


def train(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    steps: int | None = None,
    allow_flips: bool = False,
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict]:
    """A CNN trained on every labeled image.

    Parameters
    ----------
    images : (N, S, S, 3) uint8
    labels : (N,) int in [0, n_classes), or (N, n_classes) 0/1
        Class indices, or class sets for a multi-label model.
    n_classes : int
    seed : int
        Deterministic given it; the caller's torch RNG is left as it was.
    steps : int, optional
        Default ``schedule_steps(N)``.
    allow_flips : bool
        Mirror images in augmentation.
    progress : callable, optional
        Gets fractions 0..1.

    Returns
    -------
    model : nn.Module
        In eval mode.
    metrics : dict
        ``n_train``, ``steps``, ``train_seconds``.

    Raises
    ------
    ValueError
        For bad shapes, labels out of range, N == 0 or steps < 1.
    """
    started = time.perf_counter()
    images = np.asarray(images)
    labels, multi_label = labels_as_targets(labels, n_classes)
    _validate(images, labels, n_classes)
    steps = schedule_steps(len(labels)) if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    config = replace(CNN_CONFIG, allow_flips=allow_flips, multi_label=multi_label)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(n_classes, input_size=images.shape[1], multi_label=multi_label)
    x, y = to_tensor(images), torch.from_numpy(labels.copy())
    fit(model, x, y, np.arange(len(labels)), steps=steps, config=config, seed=seed, progress=progress)
    return model, {"n_train": len(labels), "steps": steps, "train_seconds": time.perf_counter() - started}


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    reference: np.ndarray | None = None,
    seed: int = 0,
    steps: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict]:
    """A ``build_head`` classifier trained on every labeled embedding; ``train`` without augmentation.

    Parameters
    ----------
    features : (N, D) float32
    labels : (N,) int, or (N, n_classes) 0/1 for a multi-label head
    n_classes : int
    reference : (M, D) float32, optional
        Where the standardisation statistics come from (e.g. every embedding of the project,
        labeled or not); default ``features``.
    seed : int
    steps : int, optional
        Default ``schedule_steps(N, head=True)``.
    progress : callable, optional

    Returns
    -------
    head : nn.Module
        In eval mode.
    metrics : dict
        ``n_train``, ``steps``, ``train_seconds``.
    """
    started = time.perf_counter()
    feats = np.asarray(features, dtype=np.float32)
    labels, multi_label = labels_as_targets(labels, n_classes)
    if feats.ndim != 2:
        raise ValueError(f"expected features of shape (N, D), got {feats.shape}")
    if len(feats) != len(labels):
        raise ValueError(f"{len(feats)} feature rows but {len(labels)} labels")
    check_labels(labels, n_classes)
    steps = schedule_steps(len(labels), head=True) if steps is None else steps
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = standardized_head(feats, n_classes, reference=reference, multi_label=multi_label)
    x, y = torch.from_numpy(feats.copy()), torch.from_numpy(labels.copy())
    config = replace(HEAD_CONFIG, multi_label=multi_label)
    fit(head, x, y, np.arange(len(labels)), steps=steps, config=config, seed=seed, progress=progress)
    return head, {"n_train": len(labels), "steps": steps, "train_seconds": time.perf_counter() - started}


def standardized_head(
    features: np.ndarray, n_classes: int, *, reference: np.ndarray | None = None, multi_label: bool = False
) -> nn.Sequential:
    """A fresh head whose input standardisation comes from ``reference``, else from ``features``.

    Parameters
    ----------
    features : (N, D) float
    n_classes : int
    reference : (M, D) float, optional
    multi_label : bool

    Returns
    -------
    nn.Sequential
    """
    ref = np.asarray(reference if reference is not None and len(reference) else features, dtype=np.float32)
    head = build_head(ref.shape[1], n_classes, multi_label=multi_label)
    standardize = head[0]
    assert isinstance(standardize, Standardize)
    standardize.mean.copy_(torch.from_numpy(ref.mean(axis=0)))
    standardize.scale.copy_(torch.from_numpy(ref.std(axis=0)).clamp_min(1e-3))
    return head


def _validate(images: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"expected images of shape (N, S, S, 3) uint8, got {images.shape} {images.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    check_labels(labels, n_classes)


def labels_as_targets(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, bool]:
    """Labels as training targets, and whether they are multi-label.

    Parameters
    ----------
    labels : (N,) int or (N, C) 0/1
    n_classes : int
        C; a 2-D ``labels`` must have C columns.

    Returns
    -------
    targets : (N,) int64 or (N, C) float32
    multi_label : bool
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != n_classes:
            raise ValueError(f"multi-label targets need {n_classes} columns, got {labels.shape}")
        return labels.astype(np.float32), True
    return labels.astype(np.int64, copy=False).reshape(-1), False


def check_labels(labels: np.ndarray, n_classes: int) -> None:
    """``ValueError`` unless there are labels and each is a class index (or a 0/1 row of C).

    Parameters
    ----------
    labels : (N,) int or (N, C) float
    n_classes : int
    """
    if len(labels) == 0:
        raise ValueError("cannot train without labeled items")
    if labels.ndim == 2:
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("multi-label targets must be 0 or 1")
    elif labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")


def _augment(x: torch.Tensor, rng: np.random.Generator, allow_flips: bool) -> torch.Tensor:
    """Random shifts of up to 1/8 of the side (zero padding, i.e. mid-grey) on x (B, 3, S, S).

    Horizontal flips of half the batch on average if ``allow_flips``.
    """
    b, _, h, w = x.shape
    pad = max(1, round(min(h, w) / 8))
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.from_numpy(rng.integers(0, 2 * pad + 1, size=b)).to(x.device)
    dx = torch.from_numpy(rng.integers(0, 2 * pad + 1, size=b)).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    out = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device)[:, None, None], rows, cols]  # (B, H, W, 3)
    out = out.permute(0, 3, 1, 2)  # (B, 3, H, W), channels_last in memory
    if allow_flips:
        flip = torch.from_numpy(rng.random(b) < 0.5).to(x.device)
        out[flip] = out[flip].flip(-1)
    return out
