"""Shared fixtures for the ml tests: scikit-learn's digits rendered as 32x32 RGB images."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 32, 32, 3) uint8 images and (1797,) int64 labels, in a fixed shuffled order."""
    data = load_digits()
    grey = np.rint(data.images / 16.0 * 255.0).astype(np.uint8)  # (N, 8, 8), values 0..16
    grey = grey.repeat(4, axis=1).repeat(4, axis=2)  # (N, 32, 32)
    images = np.repeat(grey[:, :, :, None], 3, axis=3)
    order = np.random.default_rng(0).permutation(len(images))
    return np.ascontiguousarray(images[order]), data.target.astype(np.int64)[order]
