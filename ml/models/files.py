"""Model files: a network's weights with its build arguments and metadata, written atomically.

A file is a ``torch.save`` of plain data (a format version, the ``arch`` build arguments, the
metadata as JSON, the state dict), so it loads with ``weights_only=True`` and rebuilds the
network from ``ml.models.cnn`` whatever module wrote it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from ml.models.cnn import build_head, build_model

_FORMAT_VERSION = 1


def save_model(model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
    """Write the model's weights and ``meta`` to ``path`` atomically.

    The file is written under a temporary name in the same directory, fsynced and
    renamed over ``path`` (``write_atomically``), so readers see the old file or the
    complete new one.

    Parameters
    ----------
    model : nn.Module
        Built by ``build_model`` or ``build_head`` (its ``.arch`` is stored).
    path : Path
    meta : dict
        JSON-serialisable (NumPy scalars and arrays, paths are converted); the build
        arguments (n_classes, input_size, dropout, multi_label, ...) are added to it.

    Raises
    ------
    ValueError
        For a model without ``.arch``, or ``meta`` that contradicts it.
    """
    arch = dict(getattr(model, "arch", {}))
    if not arch:
        raise ValueError("model has no .arch: build it with ml.models.cnn.build_model or build_head")
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
    """Have ``write`` fill a temporary file beside ``path``, then put it in place as
    ``write_path_atomically`` does.

    Parameters
    ----------
    path : Path
        Its folder is created if missing.
    write : callable
        Writes the whole content to the binary file object it is given.
    """

    def fill(tmp: Path) -> None:
        with tmp.open("wb") as f:
            write(f)

    write_path_atomically(path, fill)


def write_path_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Have ``write`` create the file at a temporary name beside ``path`` (for writers that take a
    file name, as torch's and ONNX's do), fsync it, rename it over ``path`` and fsync the folder:
    readers see the old file or the complete new one, even after a crash. Returns ``path``.

    Parameters
    ----------
    path : Path
        Its folder is created if missing.
    write : callable
        Writes the whole content to the path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by ``save_model``.

    Files written before ``stem_stride`` was a setting get the stride they were built with.

    Parameters
    ----------
    path : Path

    Returns
    -------
    model : nn.Module
        In eval mode, on the CPU.
    meta : dict
        The saved metadata, with the build arguments.
    """
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
