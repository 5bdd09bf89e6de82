"""Prediction: probabilities of a network on images or embeddings, with optional MC dropout.

Predictions always have the shape (N, C, S): items, classes, samples. ``mc_samples == 1`` is one
deterministic pass; ``mc_samples > 1`` keeps dropout on, runs the deterministic part of the
network once and only the dropout part S times, with masks shared by every item.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ml.models.cnn import feature_head, is_multi_label, n_classes_of, to_tensor

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def probabilities(logits: torch.Tensor, *, multi_label: bool) -> torch.Tensor:
    """Logits to probabilities: a softmax over the classes, or a sigmoid per class.

    Parameters
    ----------
    logits : (..., C) float tensor
    multi_label : bool
        A sigmoid per class instead of the softmax.

    Returns
    -------
    (..., C) float tensor
    """
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
    """Probabilities of a head on embeddings (softmax, or sigmoid for a multi-label head).

    ``mc_samples > 1`` keeps dropout on (MC dropout): the layers of a sequential head up to its
    first dropout run once, the rest S times; the backbone never runs here.

    Parameters
    ----------
    head : nn.Module
    features : (N, D) float32
    mc_samples : int
        S.
    batch_size : int

    Returns
    -------
    (N, C, S) float32
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


def predict_proba(model: nn.Module, images: np.ndarray, *, mc_samples: int = 1, batch_size: int = 256) -> np.ndarray:
    """Probabilities of a model on images (softmax, or sigmoid per class for a multi-label model).

    ``mc_samples == 1``: eval mode, deterministic, S = 1. ``mc_samples > 1``: MC dropout,
    BatchNorm stays in eval mode, dropout is on; the backbone runs once per batch and the head
    ``mc_samples`` times (a Dropout + Linear head: S masks drawn once per call and shared by
    every item, one batched matmul). The model's train/eval modes are restored afterwards.

    Parameters
    ----------
    model : nn.Module
    images : (N, H, W, 3) uint8
    mc_samples : int
        S.
    batch_size : int

    Returns
    -------
    (N, C, S) float32
    """
    return predict_with_features(model, images, mc_samples=mc_samples, batch_size=batch_size)[0]


def predict_with_features(
    model: nn.Module, images: np.ndarray, *, mc_samples: int = 1, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict_proba``'s probabilities and the ``model.features`` output of the same pass.

    Parameters
    ----------
    model : nn.Module
    images : (N, H, W, 3) uint8
    mc_samples : int
    batch_size : int

    Returns
    -------
    probs : (N, C, S) float32
    features : (N, D) float32 or None
        From the single deterministic backbone pass; None for a model without ``features`` and
        ``head`` children.
    """
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be at least 1, got {mc_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_classes = n_classes_of(model)
    multi_label = is_multi_label(model)
    device = _device_of(model)
    images = np.asarray(images)
    split = feature_head(model)
    if len(images) == 0:
        empty = np.zeros((0, n_classes, mc_samples), dtype=np.float32)
        if split is None:
            return empty, None
        width = next((m.in_features for m in split[1].modules() if isinstance(m, nn.Linear)), 0)
        return empty, np.zeros((0, width), dtype=np.float32)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    if mc_samples > 1:
        for m in model.modules():
            if isinstance(m, _DROPOUTS):
                m.train()
    found = _dropout_linear(split[1]) if split is not None else None
    out = np.empty((len(images), n_classes, mc_samples), dtype=np.float32)
    features: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            masks = _mc_masks(mc_samples, found[1].in_features, found[0]) if found and mc_samples > 1 else None
            masks = masks.to(device) if masks is not None else None
            for start in range(0, len(images), batch_size):
                x = to_tensor(images[start : start + batch_size]).to(device)
                b = x.shape[0]
                if split is None:
                    logits = torch.stack([model(x) for _ in range(mc_samples)])  # (S, B, C)
                else:
                    feats = split[0](x)  # (B, D), once
                    features.append(feats.float().cpu().numpy())
                    if mc_samples > 1:
                        logits = _mc_logits(feats, split[1], masks, mc_samples)
                    else:
                        logits = split[1](feats).reshape(1, b, n_classes)
                probs = probabilities(logits.float(), multi_label=multi_label).permute(1, 2, 0)  # (B, C, S)
                out[start : start + b] = probs.cpu().numpy()
    finally:
        for m, training in modes.items():
            m.training = training
    return out, (np.concatenate(features) if split else None)
