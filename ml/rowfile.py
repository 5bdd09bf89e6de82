"""Append-only files of fixed-size array rows: the image cache and the embedding caches.

A row file is raw, headerless bytes: row i of shape ``row_shape`` and ``dtype`` starts at byte
``i * row_bytes``, so it is read back through a read-only memory map and grows only at its end.
Writers take an exclusive ``flock``, drop a torn tail left by a writer that died mid-write, write
with ``pwrite`` and fsync before unlocking; readers need no lock, since rows once handed out
never change.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike


def row_bytes(row_shape: tuple[int, ...], dtype: DTypeLike) -> int:
    """Bytes of one row.

    Parameters
    ----------
    row_shape : tuple of int
        Shape of one row, e.g. ``(S, S, 3)`` or ``(D,)``; every side positive.
    dtype : numpy dtype
        Element type of the file.

    Returns
    -------
    int
        ``prod(row_shape) * itemsize``.
    """
    if any(side < 1 for side in row_shape):
        raise ValueError(f"row sides must be positive, got {row_shape}")
    return int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def row_count(path: Path, row_shape: tuple[int, ...], dtype: DTypeLike) -> int:
    """Complete rows in the file at ``path``; 0 when it does not exist."""
    size = row_bytes(row_shape, dtype)
    try:
        return os.stat(path).st_size // size
    except FileNotFoundError:
        return 0


def read_rows(path: Path, rows: Sequence[int] | np.ndarray, row_shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    """Rows of a row file, copied out of a read-only memory map.

    Parameters
    ----------
    path : Path
        The row file.
    rows : (K,) int
        Row indices; they may repeat and come in any order.
    row_shape, dtype
        The file's row layout.

    Returns
    -------
    (K, *row_shape) ndarray of ``dtype``

    Raises
    ------
    IndexError
        Naming the file's length, when a row is out of range (or the file is missing).
    """
    idx = np.asarray(rows, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"rows must be one-dimensional, got shape {idx.shape}")
    if idx.size == 0:
        return np.empty((0, *row_shape), dtype=dtype)
    n = row_count(path, row_shape, dtype)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise IndexError(f"rows out of range: {bad[:5].tolist()} ({path} has {n} rows of shape {row_shape})")
    mm = np.memmap(path, dtype=dtype, mode="r", shape=(n, *row_shape))
    try:
        return np.array(mm[idx])
    finally:
        del mm


class RowWriter:
    """A row file held under an exclusive lock (from ``locked``): ``rows`` complete rows so far."""

    def __init__(self, fd: int, row_size: int) -> None:
        self._fd, self._row_size = fd, row_size
        self.rows = os.fstat(fd).st_size // row_size

    def truncate(self, rows: int) -> None:
        """Keep the first ``rows`` rows (at most ``self.rows``) and drop any torn tail after them."""
        self.rows = min(max(0, rows), self.rows)
        os.ftruncate(self._fd, self.rows * self._row_size)

    def append(self, arrays: np.ndarray) -> range:
        """Write (N, *row_shape) rows after the last complete row; returns their N indices."""
        data = np.ascontiguousarray(arrays)
        if data.size and data.nbytes != len(data) * self._row_size:
            raise ValueError(f"rows of {data.nbytes // max(1, len(data))} bytes, the file has {self._row_size}")
        view, offset, written = data.data.cast("B"), self.rows * self._row_size, 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], offset + written)
        start, self.rows = self.rows, self.rows + len(data)
        return range(start, self.rows)


@contextmanager
def locked(path: Path, row_shape: tuple[int, ...], dtype: DTypeLike) -> Iterator[RowWriter]:
    """Hold the row file at ``path`` (created if missing) under an exclusive ``flock``.

    The block gets a ``RowWriter`` whose torn tail, if any, is already dropped; on leaving, the
    file (and, when it was created, its directory) is fsynced before the lock is released.
    Several processes may write at once: each sees the rows the others appended.
    """
    path = Path(path)
    size = row_bytes(row_shape, dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            writer = RowWriter(fd, size)
            writer.truncate(writer.rows)
            yield writer
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def append_rows(path: Path, arrays: np.ndarray) -> range:
    """Append (N, *row_shape) rows to the row file at ``path``, safely beside other writers.

    Returns
    -------
    range
        The N row indices assigned, in order.
    """
    data = np.ascontiguousarray(arrays)
    with locked(path, data.shape[1:], data.dtype) as writer:
        return writer.append(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
