"""The network the model tests share: a 4-class CNN on 32x32 images with dropout 0.5."""

from __future__ import annotations

import pytest
import torch

from ml.models.cnn import build_model


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(4, input_size=32, dropout=0.5)
