"""Exported models (TorchScript and ONNX) predict what the served model predicts, for every family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ml.embeddings import Backbone, load_backbone
from ml.export import (
    INPUT_NAME,
    Resize,
    example_input,
    export_onnx,
    export_torchscript,
    image_classifier,
    preprocessing,
    trace,
)
from ml.models.files import load_model, save_model
from ml.models.predict import predict_proba, predict_proba_features
from ml.training import train, train_head


def as_input(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [0, 1], the exported models' input."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def exported_probs(network: torch.nn.Module, images: np.ndarray, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) probabilities of the TorchScript and the ONNX export of ``network`` on (N, S, S, 3) images."""
    example = example_input(images.shape[1])  # batch 2; the files must take any batch size
    traced = trace(network, example)
    ts_path = export_torchscript(traced, example, tmp_path / "model.pt")
    onnx_path = export_onnx(traced, example, tmp_path / "model.onnx")
    onnx.checker.check_model(str(onnx_path))
    x = as_input(images)
    with torch.no_grad():
        ts = torch.jit.load(str(ts_path))(torch.from_numpy(x)).numpy()
    from_onnx = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
    return ts, from_onnx


def assert_same_predictions(served: np.ndarray, *exported: np.ndarray) -> None:
    for probs in exported:
        assert probs.shape == served.shape
        np.testing.assert_array_equal(probs.argmax(axis=1), served.argmax(axis=1))
        np.testing.assert_allclose(probs, served, atol=1e-4)


def test_cnn_export_matches_the_served_model(digits, tmp_path):
    # Given a small CNN trained on digits, saved and loaded back as the worker does
    images, labels = digits[0][:60], digits[1][:60] % 3
    model, _ = train(images, labels, 3, steps=40)
    save_model(model, tmp_path / "v1.pt", {"family": "cnn"})
    served_model, _ = load_model(tmp_path / "v1.pt")
    pool = digits[0][100:107]
    served = predict_proba(served_model, pool)[:, :, 0]
    # When it is exported
    network = image_classifier(served_model, family="cnn", input_size=32)
    ts, from_onnx = exported_probs(network, pool, tmp_path)
    # Then both files give the served probabilities, on a batch of another size than the example
    assert served.max(axis=1).mean() > 0.4  # not uniform (1/3)
    assert_same_predictions(served, ts, from_onnx)


@pytest.fixture(scope="module")
def pretrained() -> Backbone:
    return load_backbone("pretrained")


def scripted_backbone(path: Path) -> Backbone:
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x))  # (B, 8, h, w): the loader averages it

    torch.jit.script(Tiny()).save(str(path))
    return load_backbone("torchscript", path)


@pytest.mark.parametrize("family", ["pretrained", "torchscript"])
def test_backbone_families_export_the_backbone_with_the_head(family, pretrained, digits, tmp_path):
    # Given a head trained on a backbone's embeddings of digits, saved and loaded back
    backbone = pretrained if family == "pretrained" else scripted_backbone(tmp_path / "tiny.pt")
    images, labels = digits[0][:24], digits[1][:24] % 3
    head, _ = train_head(backbone.embed(images), labels, 3, steps=10)
    save_model(head, tmp_path / "v1.pt", {"family": family})
    served_head, _ = load_model(tmp_path / "v1.pt")
    pool = digits[0][100:105]
    served = predict_proba_features(served_head, backbone.embed(pool))[:, :, 0]
    # When the head is exported with its backbone
    network = image_classifier(served_head, family=family, input_size=32, backbone=backbone)
    ts, from_onnx = exported_probs(network, pool, tmp_path)
    # Then the files take raw 32 px images (resized inside to the backbone's 96) and agree
    assert_same_predictions(served, ts, from_onnx)


@pytest.mark.parametrize(("size_in", "size_out"), [(32, 96), (240, 224), (50, 50)])
def test_resize_is_the_served_antialiased_bilinear_resize(size_in, size_out):
    x = torch.rand(2, 3, size_in, size_in, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.interpolate(x, size=(size_out, size_out), mode="bilinear", antialias=True)
    torch.testing.assert_close(Resize(size_in, size_out)(x), expected, atol=1e-5, rtol=0)


def test_preprocessing_card_and_refusals():
    card = preprocessing(family="pretrained", input_size=32)
    assert json.loads(json.dumps(card)) == card
    assert card["input_shape"] == ["N", 3, 32, 32] and card["value_range"] == [0.0, 1.0]
    assert card["backbone_input_size"] == 96 and card["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert preprocessing(family="cnn", input_size=64)["normalization"]["std"] == [0.25] * 3
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="features and head"):
        image_classifier(model, family="cnn", input_size=32)
    with pytest.raises(ValueError, match="valid: cnn, pretrained, torchscript"):
        image_classifier(model, family="vit", input_size=32)
    with pytest.raises(ValueError, match="backbone"):
        image_classifier(model, family="pretrained", input_size=32)
