"""The packaged MobileNetV2: our module loads torchvision's weights strictly, after a sha256 check."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ml.mobilenet import WEIGHTS_SHA256, MobileNetV2, file_sha256, load_mobilenet_v2, weights_path


@pytest.fixture(scope="module")
def mobilenet() -> MobileNetV2:
    return load_mobilenet_v2()


def test_weights_file_matches_the_pinned_sha256():
    assert file_sha256(weights_path()) == WEIGHTS_SHA256


def test_state_dict_names_and_shapes_match_the_file_exactly(mobilenet):
    stored = torch.load(weights_path(), map_location="cpu", weights_only=True)
    ours = MobileNetV2().state_dict()
    assert list(ours) == list(stored)
    assert all(ours[k].shape == stored[k].shape for k in ours)
    assert not any(p.requires_grad for p in mobilenet.parameters())


def test_a_tampered_file_is_refused(tmp_path):
    copy = tmp_path / "weights.pth"
    shutil.copy(weights_path(), copy)
    with open(copy, "r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="sha256"):
        load_mobilenet_v2(copy)


def test_imagenet_classifier_is_sane(mobilenet):
    # The ImageNet head gives a proper distribution; embeddings are (B, 1280), finite.
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 96, 96)).astype(np.float32))
    with torch.inference_mode():
        probs = torch.softmax(mobilenet(x), dim=1)
        emb = mobilenet.embed(x)
    assert probs.shape == (2, 1000) and torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert emb.shape == (2, 1280) and torch.isfinite(emb).all()
