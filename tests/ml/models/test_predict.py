"""Prediction (``ml/models/predict.py``): (N, C, S) shapes, determinism, MC dropout and train/eval modes."""

from __future__ import annotations

import numpy as np

from ml.models.cnn import build_model
from ml.models.predict import predict_proba


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_predict_proba_shapes_and_normalisation(model):
    images = random_images(7)
    probs = predict_proba(model, images)
    assert probs.shape == (7, 4, 1) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    mc = predict_proba(model, images, mc_samples=5, batch_size=3)
    assert mc.shape == (7, 4, 5)
    np.testing.assert_allclose(mc.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_proba_empty(model):
    assert predict_proba(model, np.zeros((0, 32, 32, 3), dtype=np.uint8)).shape == (0, 4, 1)
    assert predict_proba(model, np.zeros((0, 32, 32, 3), dtype=np.uint8), mc_samples=6).shape == (0, 4, 6)


def test_single_sample_is_deterministic_and_batch_independent(model):
    images = random_images(9)
    a = predict_proba(model, images)
    b = predict_proba(model, images, batch_size=2)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a, predict_proba(model, images))


def test_mc_dropout_samples_differ_and_modes_are_restored(model):
    model.train()
    probs = predict_proba(model, random_images(3), mc_samples=8)
    assert not np.allclose(probs[:, :, 0], probs[:, :, 1])
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    predict_proba(model, random_images(3), mc_samples=8)
    assert not any(m.training for m in model.modules())


def test_mc_dropout_runs_the_backbone_once_per_batch(model):
    calls = []
    model.features.register_forward_hook(lambda *_: calls.append(1))
    predict_proba(model, random_images(10), mc_samples=20, batch_size=4)
    assert len(calls) == 3


def test_mc_dropout_keeps_batchnorm_in_eval(model):
    # Batch statistics would make an item's prediction depend on its batch mates.
    images = random_images(6)
    net = build_model(4, input_size=32, dropout=0.0)
    net.load_state_dict(model.state_dict())
    with_others = predict_proba(net, images, mc_samples=3)[:1]
    alone = predict_proba(net, images[:1], mc_samples=3)
    np.testing.assert_allclose(alone, with_others, rtol=1e-4, atol=1e-6)
