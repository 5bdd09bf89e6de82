"""The network, its input conversion, prediction with optional MC dropout, and persistence.

The model is an ``nn.Sequential`` with two children, ``features`` (convolutions down
to a pooled feature vector) and ``head`` (dropout + linear), so that MC dropout runs
the backbone once and only the cheap head once per sample. Predictions always have
the shape (N, C, S): items, classes, samples. A multi-label model (``multi_label=True``)
gives a sigmoid probability per class instead of a softmax over the classes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

#: Pixels are mapped by x / 255 then (x - MEAN) / STD: 0..255 becomes -2..2, mid-grey ~0.
MEAN = 0.5
STD = 0.25

_FORMAT_VERSION = 1
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


#: Inputs of at least this side get a stride-2 first convolution (a quarter of the cost).
STRIDE_2_FROM = 32


def build_model(
    n_classes: int,
    *,
    input_size: int,
    dropout: float = 0.3,
    multi_label: bool = False,
    stem_stride: int | None = None,
) -> nn.Module:
    """A small CNN for (B, 3, input_size, input_size) input giving (B, n_classes) logits.

    Four conv-BN-ReLU stages (16, 32, 64, 128 channels), each but the last followed by
    2x2 max pooling; inputs of ``STRIDE_2_FROM`` pixels or more get a stride-2 first
    convolution (``stem_stride``), so the cost stays small. Works for input sizes 16..128
    (and larger: the end is a global average pool). ``model.features`` gives (B, 128);
    ``model.head`` maps that to logits.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if input_size < 16:
        raise ValueError(f"input_size must be at least 16, got {input_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if stem_stride is None:
        stem_stride = 2 if input_size >= STRIDE_2_FROM else 1
    widths = (16, 32, 64, 128)
    layers: list[nn.Module] = []
    in_ch = 3
    for i, out_ch in enumerate(widths):
        stride = stem_stride if i == 0 else 1
        layers += [
            nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        in_ch = out_ch
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    features = nn.Sequential(*layers)
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_ch, n_classes))
    model = nn.Sequential(OrderedDict(features=features, head=head))
    model = model.to(memory_format=torch.channels_last)  # ~1.5x faster on CPU
    model.arch = {
        "n_classes": n_classes,
        "input_size": input_size,
        "dropout": dropout,
        "multi_label": multi_label,
        "stem_stride": stem_stride,
    }
    return model


class Standardize(nn.Module):
    """(B, D) -> (B, D): subtract a fixed per-dimension mean, divide by a fixed scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


def build_head(
    dim: int, n_classes: int, *, hidden: int = 256, dropout: float = 0.5, multi_label: bool = False
) -> nn.Module:
    """A small classifier on frozen (B, dim) embeddings giving (B, n_classes) logits.

    Standardisation (buffers, set by the trainer), one hidden layer, dropout, a linear
    output. The dropout comes after the hidden layer on purpose: MC-dropout samples then
    rerun only the last (hidden x classes) layer, on a hidden state computed once.
    """
    if n_classes < 1 or dim < 1:
        raise ValueError(f"dim and n_classes must be at least 1, got {dim}, {n_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    head = nn.Sequential(
        Standardize(dim),
        nn.Linear(dim, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    )
    head.arch = {
        "kind": "head",
        "dim": dim,
        "n_classes": n_classes,
        "hidden": hidden,
        "dropout": dropout,
        "multi_label": multi_label,
    }
    return head


def is_multi_label(model: nn.Module) -> bool:
    """Whether ``model`` scores each class on its own (sigmoid) rather than one of them (softmax)."""
    return bool(getattr(model, "arch", {}).get("multi_label", False))


def probabilities(logits: torch.Tensor, *, multi_label: bool) -> torch.Tensor:
    """Logits (..., C) to probabilities: a sigmoid per class, or a softmax over the classes."""
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def _dropout_linear(part: nn.Module) -> tuple[float, nn.Linear] | None:
    """(p, linear) if ``part`` is exactly Sequential(Dropout(p), Linear), else None."""
    if isinstance(part, nn.Sequential) and len(part) == 2:
        drop, linear = part[0], part[1]
        if type(drop) is nn.Dropout and isinstance(linear, nn.Linear):
            return float(drop.p), linear
    return None


def _mc_masks(mc_samples: int, width: int, p: float) -> torch.Tensor:
    """(S, width) dropout masks, scaled by 1 / (1 - p); drawn from torch's global RNG like nn.Dropout."""
    keep = torch.rand(mc_samples, width) >= p
    return keep.float() / (1.0 - p) if p < 1 else keep.float()


def _mc_logits(x: torch.Tensor, part: nn.Module, masks: torch.Tensor | None, mc_samples: int) -> torch.Tensor:
    """(S, B, C) logits of the dropout part of a head on (B, D) inputs.

    For a Dropout + Linear part and given ``masks`` (S, D), every item sees the same S
    sampled networks (consistent MC dropout, as in BatchBALD) and the S passes are one
    matrix product with the S masked weight matrices side by side, (B, D) x (D, S * C):
    the cost of one slightly wider linear layer, not of S copies of the input. Any other
    part runs on S stacked copies.
    """
    b = x.shape[0]
    found = _dropout_linear(part)
    if masks is not None and found is not None:
        _, linear = found
        s, c = masks.shape[0], linear.out_features
        weights = (masks[:, None, :] * linear.weight[None]).reshape(s * c, -1)  # (S * C, D)
        logits = (x @ weights.t()).reshape(b, s, c).transpose(0, 1)  # (S, B, C), a view
        return logits + linear.bias if linear.bias is not None else logits
    stacked = x.unsqueeze(0).expand(mc_samples, *x.shape).reshape(mc_samples * b, -1)
    return part(stacked).reshape(mc_samples, b, -1)


def predict_proba_features(
    head: nn.Module, features: np.ndarray, *, mc_samples: int = 1, batch_size: int = 4096
) -> np.ndarray:
    """Probabilities (N, C, S) float32 of a head on (N, D) float32 embeddings (softmax, or
    sigmoid for a multi-label head).

    ``mc_samples > 1`` keeps dropout on (MC dropout): the layers of a sequential head up
    to its first dropout run once, the rest S times; the backbone never runs here.
    """
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    n_classes = n_classes_of(head)
    multi_label = is_multi_label(head)
    device = _device_of(head)
    feats = np.asarray(features, dtype=np.float32)
    out = np.empty((len(feats), n_classes, mc_samples), dtype=np.float32)
    modes = {m: m.training for m in head.modules()}
    head.eval()
    if mc_samples > 1:
        for m in head.modules():
            if isinstance(m, _DROPOUTS):
                m.train()
    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    first_dropout = next((i for i, m in enumerate(layers) if isinstance(m, _DROPOUTS)), len(layers))
    fixed, sampled = nn.Sequential(*layers[:first_dropout]), nn.Sequential(*layers[first_dropout:])
    found = _dropout_linear(sampled)
    try:
        with torch.inference_mode():
            masks = _mc_masks(mc_samples, found[1].in_features, found[0]) if found and mc_samples > 1 else None
            masks = masks.to(device) if masks is not None else None
            for start in range(0, len(feats), batch_size):
                x = fixed(torch.from_numpy(feats[start : start + batch_size]).to(device))  # deterministic part, once
                b = x.shape[0]
                if mc_samples > 1:
                    logits = _mc_logits(x, sampled, masks, mc_samples)
                else:
                    logits = sampled(x).reshape(1, b, n_classes)
                probs = probabilities(logits.float(), multi_label=multi_label)
                out[start : start + b] = probs.permute(1, 2, 0).cpu().numpy()
    finally:
        for m, training in modes.items():
            m.training = training
    return out


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's weights are: predictions run there (the inputs are moved to it)."""
    return next(model.parameters()).device


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Convert (N, H, W, 3) uint8 images to a (N, 3, H, W) float32 tensor, ``(x/255 - MEAN) / STD``."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
    # (N, H, W, 3) memory viewed as (N, 3, H, W) is channels_last, which the model uses.
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
    return x.mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)


def n_classes_of(model: nn.Module) -> int:
    """Number of classes a model predicts: the output width of its last linear layer."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layer to read the number of classes from")
    return linears[-1].out_features


def predict_proba(model: nn.Module, images: np.ndarray, *, mc_samples: int = 1, batch_size: int = 256) -> np.ndarray:
    """Probabilities of shape (N, C, S) float32 for (N, H, W, 3) uint8 images (softmax, or
    sigmoid per class for a multi-label model).

    ``mc_samples == 1``: eval mode, deterministic, S = 1. ``mc_samples > 1``: MC dropout,
    BatchNorm stays in eval mode, dropout is on; the backbone runs once per batch and
    the head ``mc_samples`` times (a Dropout + Linear head: S masks drawn once per call
    and shared by every item, one batched matmul). The model's train/eval modes are
    restored afterwards.
    """
    return predict_with_features(model, images, mc_samples=mc_samples, batch_size=batch_size)[0]


def predict_with_features(
    model: nn.Module, images: np.ndarray, *, mc_samples: int = 1, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict_proba``'s (N, C, S) probabilities and the (N, D) float32 ``model.features`` output.

    The features come from the same single backbone pass (deterministic, eval mode); they
    are None for a model without ``features`` and ``head`` children.
    """
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_classes = n_classes_of(model)
    multi_label = is_multi_label(model)
    device = _device_of(model)
    images = np.asarray(images)
    split = hasattr(model, "features") and hasattr(model, "head")
    if len(images) == 0:
        empty = np.zeros((0, n_classes, mc_samples), dtype=np.float32)
        if not split:
            return empty, None
        width = next((m.in_features for m in model.head.modules() if isinstance(m, nn.Linear)), 0)
        return empty, np.zeros((0, width), dtype=np.float32)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    if mc_samples > 1:
        for m in model.modules():
            if isinstance(m, _DROPOUTS):
                m.train()
    found = _dropout_linear(model.head) if split else None
    out = np.empty((len(images), n_classes, mc_samples), dtype=np.float32)
    features: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            masks = _mc_masks(mc_samples, found[1].in_features, found[0]) if found and mc_samples > 1 else None
            masks = masks.to(device) if masks is not None else None
            for start in range(0, len(images), batch_size):
                x = to_tensor(images[start : start + batch_size]).to(device)
                b = x.shape[0]
                if not split:
                    logits = torch.stack([model(x) for _ in range(mc_samples)])  # (S, B, C)
                else:
                    feats = model.features(x)  # (B, D), once
                    features.append(feats.float().cpu().numpy())
                    if mc_samples > 1:
                        logits = _mc_logits(feats, model.head, masks, mc_samples)
                    else:
                        logits = model.head(feats).reshape(1, b, n_classes)
                probs = probabilities(logits.float(), multi_label=multi_label).permute(1, 2, 0)  # (B, C, S)
                out[start : start + b] = probs.cpu().numpy()
    finally:
        for m, training in modes.items():
            m.training = training
    return out, (np.concatenate(features) if split else None)


def save_model(model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
    """Write the model's weights and ``meta`` to ``path`` atomically.

    The file is written under a temporary name in the same directory, fsynced and
    renamed over ``path``, so readers see the old file or the complete new one. ``meta``
    must be JSON-serialisable (NumPy scalars and arrays are converted); the build
    arguments (n_classes, input_size, dropout, multi_label) are added to it.
    """
    arch = dict(getattr(model, "arch", {}))
    if not arch:
        raise ValueError("model has no .arch: build it with ml.model.build_model or build_head")
    clash = {k for k in arch if k in meta and meta[k] != arch[k]}
    if clash:
        raise ValueError(f"meta disagrees with the model on {sorted(clash)}")
    meta_json = json.dumps({**meta, **arch}, default=_json_default)
    payload = {
        "format_version": _FORMAT_VERSION,
        "arch": arch,
        "meta_json": meta_json,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    write_atomically(Path(path), lambda f: torch.save(payload, f))


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, fsync it, rename it over ``path`` and
    fsync the folder: readers see the old file or the complete new one, even after a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by ``save_model``; returns (model in eval mode, meta)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported model file format {payload.get('format_version')!r}")
    arch = dict(payload["arch"])
    if arch.get("kind") != "head" and "stem_stride" not in arch:  # files from before the setting
        arch["stem_stride"] = 2 if arch["input_size"] >= 64 else 1
    model = (
        build_head(**{k: v for k, v in arch.items() if k != "kind"})
        if arch.get("kind") == "head"
        else build_model(**arch)
    )
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, json.loads(payload["meta_json"])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON-serialisable")
