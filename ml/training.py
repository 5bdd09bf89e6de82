"""Training: pick the epoch count on a held-out split, then refit on every label.

``train`` holds out a stratified validation split, trains with AdamW, light shift
augmentation and early stopping, and records the best epoch and its validation
accuracy; it then trains a fresh model on all labeled items for that many epochs, so
the model that gets served has seen every label. Small sets, where a minimum step
count fixes the schedule anyway, skip the separate validation run: one run measures the
split half-way and then trains on every label (half the time, no label left out).

Labels are (N,) class indices (one class per item: softmax and cross-entropy) or an
(N, C) 0/1 matrix (multi-label: several classes per item, a sigmoid per class and binary
cross-entropy; accuracy then means every class of the item right, an exact match).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ml.model import build_head, build_model, to_tensor

#: An epoch covers at least this many (augmented) samples, repeating small sets.
MIN_EPOCH_SAMPLES = 256

#: A drop in validation loss smaller than this (nats) does not restart early-stopping patience.
LOSS_MIN_DELTA = 0.05

#: The refit on all items runs at least this many epochs (at most max_epochs).
MIN_REFIT_EPOCHS = 10

#: ... and at least this many optimiser steps (at most max_epochs epochs): a small set
#: needs several hundred annealed steps, whatever a tiny validation split suggested.
MIN_REFIT_STEPS = 240


def train(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    max_epochs: int = 60,
    patience: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    augment: bool = True,
    allow_flips: bool = False,
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Train a model on (N, S, S, 3) uint8 images with (N,) int labels in [0, n_classes),
    or (N, n_classes) 0/1 labels for a multi-label model (see the module docstring).

    Deterministic given ``seed``; the caller's global torch RNG state is left as it was.
    With N >= 5 a stratified validation split of about ``val_fraction`` (at least one
    item) picks the epoch count by early stopping on validation accuracy, ties broken
    by validation loss; with N < 5 (or ``val_fraction == 0``) there is no split and the
    model trains for ``max_epochs``. The returned model (eval mode) is then refit on
    all N for the best epoch count, but at least ``MIN_REFIT_EPOCHS`` epochs and
    ``MIN_REFIT_STEPS`` steps, with a cosine-annealed learning rate. An epoch covers at
    least ``MIN_EPOCH_SAMPLES`` samples. When ``MIN_REFIT_STEPS`` alone asks for more
    than ``MIN_REFIT_EPOCHS`` epochs (small N: a few hundred items at batch size 64),
    that count is the schedule and there is one run instead of two: its first half on
    the training split, then the validation accuracy is taken, then every item for the
    second half under the same annealed learning rate. Raises ``ValueError`` for N == 0.

    Returns ``(model, metrics)``, metrics = {"val_accuracy": float | None (at the best
    epoch), "n_train": size of the training split, "n_val": size of the validation
    split, "epochs": epochs the returned model was trained for, "train_seconds": float}.
    ``progress`` is called now and then with a non-decreasing fraction in [0, 1].
    """
    started = time.perf_counter()
    images = np.asarray(images)
    labels, multi_label = _labels(labels, n_classes)
    _validate(images, labels, n_classes, val_fraction, max_epochs, batch_size)
    report = progress or (lambda _fraction: None)
    rng = np.random.default_rng(seed)
    x_all = to_tensor(images)
    y_all = torch.from_numpy(labels.copy())
    config = _config(batch_size, lr, weight_decay, multi_label, augment=augment, allow_flips=allow_flips)
    val_idx = _stratified_split(labels, val_fraction, rng)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        epochs, val_accuracy = max_epochs, None
        model = build_model(n_classes, input_size=images.shape[1], multi_label=multi_label)
        floor = min(_min_refit_epochs(len(labels), batch_size), max_epochs)
        if len(val_idx) and floor > MIN_REFIT_EPOCHS:
            # Small sets: the refit's minimum step count sets the schedule, and a handful
            # of validation items could only nudge it, so validation just measures. One
            # run: the first half of the steps on the training split, then validation
            # accuracy, then the rest on every item.
            epochs = floor
            val_accuracy = _fit_measured(model, x_all, y_all, train_idx, val_idx, epochs, rng, config, report)
        else:
            model, epochs, val_accuracy = _select_then_refit(
                lambda: build_model(n_classes, input_size=images.shape[1], multi_label=multi_label),
                model,
                x_all,
                y_all,
                train_idx,
                val_idx,
                max_epochs=max_epochs,
                patience=patience,
                rng=rng,
                config=config,
                report=report,
            )
    model.eval()
    report(1.0)
    metrics = {
        "val_accuracy": val_accuracy,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "epochs": int(epochs),
        "train_seconds": time.perf_counter() - started,
    }
    return model, metrics


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    reference: np.ndarray | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    max_epochs: int = 100,
    patience: int = 15,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Train a ``build_head`` classifier on (N, D) float32 embeddings with (N,) labels (or
    (N, n_classes) 0/1 labels: a multi-label head).

    The same recipe as ``train`` (stratified validation split picks the epoch count,
    then a refit on all N), without augmentation. Standardisation statistics come from
    ``reference`` (M, D) when given (e.g. every embedding of the project, labeled or
    not), else from ``features``. Returns ``(head in eval mode, metrics)`` with the keys
    of ``train``. Seconds, not minutes: the backbone never runs here.
    """
    started = time.perf_counter()
    feats = np.asarray(features, dtype=np.float32)
    labels, multi_label = _labels(labels, n_classes)
    if feats.ndim != 2:
        raise ValueError(f"expected features of shape (N, D), got {feats.shape}")
    if len(feats) != len(labels):
        raise ValueError(f"{len(feats)} feature rows but {len(labels)} labels")
    _check_labels(labels, n_classes)
    report = progress or (lambda _fraction: None)
    ref = np.asarray(reference, dtype=np.float32) if reference is not None and len(reference) else feats
    mean = torch.from_numpy(ref.mean(axis=0))
    scale = torch.from_numpy(ref.std(axis=0)).clamp_min(1e-3)
    rng = np.random.default_rng(seed)
    x_all, y_all = torch.from_numpy(feats.copy()), torch.from_numpy(labels.copy())
    config = _config(batch_size, lr, weight_decay, multi_label)
    val_idx = _stratified_split(labels, val_fraction, rng)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)

    def fresh() -> nn.Module:
        head = build_head(feats.shape[1], n_classes, multi_label=multi_label)
        head[0].mean.copy_(mean)
        head[0].scale.copy_(scale)
        return head

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head, epochs, val_accuracy = _select_then_refit(
            fresh,
            fresh(),
            x_all,
            y_all,
            train_idx,
            val_idx,
            max_epochs=max_epochs,
            patience=patience,
            rng=rng,
            config=config,
            report=report,
        )
    head.eval()
    report(1.0)
    return head, {
        "val_accuracy": val_accuracy,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "epochs": int(epochs),
        "train_seconds": time.perf_counter() - started,
    }


def _select_then_refit(
    build: Callable[[], nn.Module],
    first: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    max_epochs: int,
    patience: int,
    rng: np.random.Generator,
    config: dict,
    report: Callable[[float], None],
) -> tuple[nn.Module, int, float | None]:
    """With a validation split: early-stop ``first`` on it to pick the epoch count, then train a
    ``build()`` model on every item for that many epochs (at least the refit minimum). Without one:
    train ``first`` on every item for ``max_epochs``. Returns (model, epochs, validation accuracy)."""
    model, epochs, val_accuracy, refit_start = first, max_epochs, None, 0.0
    if len(val_idx):
        epochs, val_accuracy = _fit(
            model,
            x[train_idx],
            y[train_idx],
            max_epochs,
            rng,
            config,
            val=(x[val_idx], y[val_idx]),
            patience=patience,
            report=lambda f: report(0.5 * f),
        )
        # Tiny validation sets are noisy and can stop very early; refit longer.
        floor = min(_min_refit_epochs(len(y), config["batch_size"]), max_epochs)
        epochs, refit_start = max(epochs, floor), 0.5
        model = build()
    _fit(model, x, y, epochs, rng, config, report=lambda f: report(refit_start + (1 - refit_start) * f))
    return model, epochs, val_accuracy


def _min_refit_epochs(n: int, batch_size: int) -> int:
    """Epochs that give a refit on n items at least MIN_REFIT_EPOCHS epochs and MIN_REFIT_STEPS steps."""
    repeats = max(1, math.ceil(MIN_EPOCH_SAMPLES / n))
    steps_per_epoch = max(1, math.ceil(repeats * n / batch_size))
    return max(MIN_REFIT_EPOCHS, math.ceil(MIN_REFIT_STEPS / steps_per_epoch))


def _validate(
    images: np.ndarray, labels: np.ndarray, n_classes: int, val_fraction: float, max_epochs: int, batch_size: int
) -> None:
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"expected images of shape (N, S, S, 3) uint8, got {images.shape} {images.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    _check_labels(labels, n_classes)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if max_epochs < 1 or batch_size < 1:
        raise ValueError("max_epochs and batch_size must be at least 1")


def _config(
    batch_size: int,
    lr: float,
    weight_decay: float,
    multi_label: bool,
    *,
    augment: bool = False,
    allow_flips: bool = False,
) -> dict:
    """The settings ``_fit``, ``_fit_measured`` and ``_steps`` read."""
    return dict(
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        augment=augment,
        allow_flips=allow_flips,
        multi_label=multi_label,
    )


def _labels(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, bool]:
    """(N,) int64 class indices, or (N, C) float32 0/1 targets; and whether they are multi-label."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != n_classes:
            raise ValueError(f"multi-label targets need {n_classes} columns, got {labels.shape}")
        return labels.astype(np.float32), True
    return labels.astype(np.int64, copy=False).reshape(-1), False


def _check_labels(labels: np.ndarray, n_classes: int) -> None:
    if len(labels) == 0:
        raise ValueError("cannot train without labeled items")
    if labels.ndim == 2:
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("multi-label targets must be 0 or 1")
    elif labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")


def _strata(labels: np.ndarray) -> np.ndarray:
    """(N,) stratum per item: its class, or for (N, C) multi-label targets its rarest class
    (C for an item with none), so that rare classes get into both sides of a split."""
    if labels.ndim == 1:
        return labels
    counts = labels.sum(axis=0)
    rarity = np.where(labels > 0, counts[None, :], np.inf)
    return np.where(labels.any(axis=1), rarity.argmin(axis=1), labels.shape[1])


def _stratified_split(labels: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted validation indices for (N,) labels (or (N, C) multi-label targets, stratified by
    ``_strata``): about val_fraction of N, none if N < 5.

    Each class's items are shuffled and given evenly spaced keys (rank + 0.5) / count;
    the items with the smallest keys overall form the split, so every class gives its
    share and a class with a single item stays in training unless val_fraction > 0.5.
    """
    n = len(labels)
    if n < 5 or val_fraction <= 0:
        return np.empty(0, dtype=np.int64)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    keys = np.empty(n, dtype=np.float64)
    strata = _strata(labels)
    for cls in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == cls))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(n), keys))
    return np.sort(order[:n_val])


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    rng: np.random.Generator,
    config: dict,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    patience: int = 0,
    report: Callable[[float], None],
) -> tuple[int, float | None]:
    """Train ``model`` on x (N, 3, S, S), y (N,) (or (N, C) multi-label) for up to ``epochs`` epochs.

    With ``val``, stop after ``patience`` epochs without improvement and return (best
    epoch, validation accuracy at it); without, return (epochs, None).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    loss_fn = _loss_fn(config)
    # Small sets repeat within an epoch so that an epoch is at least MIN_EPOCH_SAMPLES
    # samples: otherwise 30 items would mean one optimiser step per epoch.
    repeats = max(1, math.ceil(MIN_EPOCH_SAMPLES / len(x)))
    n_batches = max(1, math.ceil(repeats * len(x) / config["batch_size"]))
    # A run of known length (the refit) anneals its learning rate to zero: the last
    # steps then settle instead of jumping around, which steadies small-data results.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * n_batches) if val is None else None
    best_key, best_epoch, best_accuracy = (-1.0, 0.0), epochs, None
    top_accuracy, low_loss, stale = -1.0, math.inf, 0
    for epoch in range(1, epochs + 1):
        model.train()
        # Near-equal batches: never a lone item, which BatchNorm statistics would not like.
        order = np.concatenate([rng.permutation(len(x)) for _ in range(repeats)])
        for batch in np.array_split(order, n_batches):
            xb = x[batch]
            if config["augment"]:
                xb = _augment(xb, rng, config["allow_flips"])
            loss = loss_fn(model(xb), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        report(epoch / epochs)
        if val is None:
            continue
        val_loss, val_accuracy = _evaluate(model, *val, multi_label=config["multi_label"])
        if (val_accuracy, -val_loss) > best_key:
            best_key, best_epoch, best_accuracy = (val_accuracy, -val_loss), epoch, val_accuracy
        # Patience restarts on a better accuracy or a clearly lower loss, not on the
        # slow creep of an already tiny loss.
        if val_accuracy > top_accuracy or val_loss < low_loss - LOSS_MIN_DELTA:
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                break
        top_accuracy, low_loss = max(top_accuracy, val_accuracy), min(low_loss, val_loss)
    if val is None:
        return epochs, None
    return best_epoch, best_accuracy


def _fit_measured(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    epochs: int,
    rng: np.random.Generator,
    config: dict,
    report: Callable[[float], None],
) -> float:
    """Train ``model`` on x (N, 3, S, S), y (N,) for ``epochs`` epochs' worth of steps, measuring on the way.

    The first half of the steps sees only ``train_idx``; the accuracy on ``val_idx`` is
    taken then (and returned); the second half sees every item. One cosine-annealed
    learning rate spans both halves, so the result is a model trained on all N.
    """
    total = epochs * _epoch_plan(len(x), config["batch_size"])[1]
    first = total // 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    _steps(model, x[train_idx], y[train_idx], first, optimizer, scheduler, rng, config, lambda f: report(0.5 * f))
    _, accuracy = _evaluate(model, x[val_idx], y[val_idx], multi_label=config["multi_label"])
    _steps(model, x, y, total - first, optimizer, scheduler, rng, config, lambda f: report(0.5 + 0.5 * f))
    return accuracy


def _epoch_plan(n: int, batch_size: int) -> tuple[int, int]:
    """(repeats, batches) of an epoch over n items: repeated up to MIN_EPOCH_SAMPLES samples."""
    repeats = max(1, math.ceil(MIN_EPOCH_SAMPLES / n))
    return repeats, max(1, math.ceil(repeats * n / batch_size))


def _steps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rng: np.random.Generator,
    config: dict,
    report: Callable[[float], None],
) -> None:
    """``steps`` optimiser steps on x (N, 3, S, S), y (N,), in epochs as ``_fit`` makes them."""
    loss_fn = _loss_fn(config)
    repeats, n_batches = _epoch_plan(len(x), config["batch_size"])
    done = 0
    model.train()
    while done < steps:
        order = np.concatenate([rng.permutation(len(x)) for _ in range(repeats)])
        for batch in np.array_split(order, n_batches):
            if done >= steps:
                break
            xb = x[batch]
            if config["augment"]:
                xb = _augment(xb, rng, config["allow_flips"])
            loss = loss_fn(model(xb), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
        report(done / steps)


def _loss_fn(config: dict) -> nn.Module:
    """Cross-entropy over the classes, or for multi-label targets binary cross-entropy per class."""
    return nn.BCEWithLogitsLoss() if config.get("multi_label") else nn.CrossEntropyLoss()


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, multi_label: bool = False) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on x (N, 3, S, S), y (N,); for (N, C) multi-label
    targets, binary cross-entropy and exact-match accuracy (every class right)."""
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[i : i + 512]) for i in range(0, len(x), 512)])
        if multi_label:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y).item()
            accuracy = ((logits > 0) == (y > 0.5)).all(dim=1).float().mean().item()
        else:
            loss = nn.functional.cross_entropy(logits, y).item()
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def _augment(x: torch.Tensor, rng: np.random.Generator, allow_flips: bool) -> torch.Tensor:
    """Random shifts of up to 1/8 of the side (zero padding, i.e. mid-grey) on x (B, 3, S, S).

    Horizontal flips of half the batch on average if ``allow_flips``.
    """
    b, _, h, w = x.shape
    pad = max(1, round(min(h, w) / 8))
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.from_numpy(rng.integers(0, 2 * pad + 1, size=b))
    dx = torch.from_numpy(rng.integers(0, 2 * pad + 1, size=b))
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
    out = padded.permute(0, 2, 3, 1)[torch.arange(b)[:, None, None], rows, cols]  # (B, H, W, 3)
    out = out.permute(0, 3, 1, 2)  # (B, 3, H, W), channels_last in memory
    if allow_flips:
        flip = torch.from_numpy(rng.random(b) < 0.5)
        out[flip] = out[flip].flip(-1)
    return out
