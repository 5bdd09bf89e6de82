"""Backbones and the embedding cache: rows computed once, in cache order, growing with the image cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.data import cache_append
from ml.embeddings import embedding_path, embeddings_ensure, embeddings_read, load_backbone


@pytest.fixture(scope="module")
def pretrained():
    return load_backbone("pretrained")


def test_embed_shapes_and_determinism(pretrained, digits):
    emb = pretrained.embed(digits[0][:5])
    assert emb.shape == (5, 1280) and emb.dtype == np.float32
    np.testing.assert_allclose(emb[2:3], pretrained.embed(digits[0][2:3]), rtol=1e-4, atol=1e-4)


def test_cache_computes_each_row_once_and_grows(pretrained, digits, tmp_path, monkeypatch):
    images = digits[0][:12]
    cache = tmp_path / "images_32.u8"
    cache_append(cache, images[:8])
    calls: list[int] = []
    real = pretrained.embed
    monkeypatch.setattr(pretrained, "embed", lambda x, **k: calls.append(len(x)) or real(x, **k))

    path = embeddings_ensure(cache, 32, pretrained)
    assert path == embedding_path(cache, pretrained) and calls == [8]
    embeddings_ensure(cache, 32, pretrained)
    assert calls == [8]  # nothing new to embed
    cache_append(cache, images[8:])
    embeddings_ensure(cache, 32, pretrained)
    assert calls == [8, 4]  # only the new rows

    rows = embeddings_read(path, np.array([11, 0, 11]), 1280)
    np.testing.assert_allclose(rows, real(images[[11, 0, 11]]), rtol=1e-4, atol=1e-4)
    with pytest.raises(IndexError):
        embeddings_read(path, np.array([12]), 1280)


def test_torchscript_backbone(tmp_path, digits):
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 7, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)  # (B, 7, h, w): pooled by the loader

    path = tmp_path / "backbone.pt"
    torch.jit.script(Tiny()).save(str(path))
    backbone = load_backbone("torchscript", path)
    assert backbone.dim == 7
    assert backbone.embed(digits[0][:3]).shape == (3, 7)
    with pytest.raises(ValueError, match="backbone"):
        load_backbone("torchscript", None)
    with pytest.raises(ValueError, match="valid"):
        load_backbone("nope")


def test_embeddings_of_a_recreated_image_cache_are_recomputed(pretrained, digits, tmp_path):
    cache = tmp_path / "images_32.u8"
    cache_append(cache, digits[0][:4])
    path = embeddings_ensure(cache, 32, pretrained)
    cache.unlink()  # e.g. the project was deleted and its id reused
    cache_append(cache, digits[0][4:7])
    embeddings_ensure(cache, 32, pretrained)
    rows = embeddings_read(path, np.arange(3), 1280)
    np.testing.assert_allclose(rows, pretrained.embed(digits[0][4:7]), rtol=1e-4, atol=1e-4)
    with pytest.raises(IndexError):
        embeddings_read(path, np.array([3]), 1280)
