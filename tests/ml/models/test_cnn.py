"""The networks (``ml/models/cnn.py``): shapes for every input size and the input conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.models.cnn import build_model, to_tensor


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [16, 24, 32, 64, 96, 128])
def test_build_model_works_for_input_sizes(size):
    net = build_model(3, input_size=size).eval()
    with torch.inference_mode():
        assert net(to_tensor(random_images(2, size))).shape == (2, 3)
        assert net.features(to_tensor(random_images(2, size))).ndim == 2


def test_to_tensor_shape_and_normalisation():
    images = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 128, 255)
    x = to_tensor(images)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-2.0, 128 / 63.75 - 2, 2.0]))
