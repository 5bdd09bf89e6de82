"""Multi-label models: a sigmoid per class trained with binary cross-entropy, uncertainty scored
per class and averaged, saved and exported with their sigmoid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml.export import image_classifier
from ml.loop import fit_and_score, fit_and_score_features
from ml.models.cnn import is_multi_label
from ml.models.files import load_model, save_model
from ml.models.predict import predict_proba, predict_proba_features
from ml.scoring import per_class, score
from ml.training import train, train_head

# Three overlapping properties of a digit: an image has any subset of them.
PROPERTIES = {
    "even": lambda d: d % 2 == 0,
    "small": lambda d: d < 5,
    "round": lambda d: np.isin(d, [0, 6, 8, 9]),
}


def multi_hot(digits: np.ndarray) -> np.ndarray:
    return np.stack([rule(digits) for rule in PROPERTIES.values()], axis=1).astype(np.float32)


def test_a_cnn_learns_several_classes_per_image(digits):
    # Given 300 digits, each labeled with every property it has (0 to 3 of them)
    images, labels = digits
    targets = multi_hot(labels)
    model, metrics = train(images[:300], targets[:300], 3, seed=0)
    # Then held-out digits get each property right far above chance, and often all three
    held_out = slice(1000, 1400)
    probs = predict_proba(model, images[held_out])[:, :, 0]
    assert is_multi_label(model)
    assert probs.shape == (400, 3) and ((probs >= 0) & (probs <= 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent sigmoids, not a softmax
    predicted = probs >= 0.5
    per_property = (predicted == (targets[held_out] > 0.5)).mean(axis=0)
    exact = (predicted == (targets[held_out] > 0.5)).all(axis=1).mean()
    assert (per_property > 0.92).all(), per_property  # measured 0.985, 0.960, 0.963
    assert exact > 0.9, exact  # measured 0.94
    assert metrics["n_train"] == 300


def test_a_head_learns_several_classes_per_embedding():
    # Given embeddings where class c applies when dimension c is positive (kept clear of 0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 16)).astype(np.float32)
    features[:, :3] += 0.5 * np.sign(features[:, :3])
    targets = (features[:, :3] > 0).astype(np.float32)
    head, _ = train_head(features[:300], targets[:300], 3, seed=0)
    probs = predict_proba_features(head, features[300:])[:, :, 0]
    # Then the head gets nearly every class of the held-out items right
    assert ((probs >= 0.5) == (targets[300:] > 0.5)).mean() > 0.97  # 1.0 measured
    # And MC dropout gives (N, C, S) samples of independent probabilities
    samples = predict_proba_features(head, features[300:310], mc_samples=5)
    assert samples.shape == (10, 3, 5) and not np.allclose(samples[:, :, 0], samples[:, :, 1])


def test_bad_multi_label_targets_are_refused():
    features = np.zeros((6, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="3 columns"):
        train_head(features, np.zeros((6, 2)), 3)
    with pytest.raises(ValueError, match="0 or 1"):
        train_head(features, np.full((6, 3), 0.5), 3)


def test_uncertainty_is_scored_per_class_and_averaged():
    # Given two items over two classes: one the model is sure about, one unsure on one class
    probs = np.array([[[0.99], [0.01]], [[0.5], [0.99]]])  # (N=2, C=2, S=1)
    # Then entropy is the mean binary entropy of the classes (in nats)
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    np.testing.assert_allclose(
        score("entropy", probs, multi_label=True), [(h(0.99) + h(0.01)) / 2, (math.log(2) + h(0.99)) / 2]
    )
    # margin: 1 - |p - (1 - p)| per class; least confidence: 1 - max(p, 1 - p)
    np.testing.assert_allclose(score("margin", probs, multi_label=True), [0.02, (1.0 + 0.02) / 2])
    np.testing.assert_allclose(score("least_confidence", probs, multi_label=True), [0.01, (0.5 + 0.01) / 2])
    # And BALD is the per-class disagreement between samples: none when every sample agrees
    agree = np.repeat(probs, 4, axis=2)
    np.testing.assert_allclose(score("bald", agree, multi_label=True), [0.0, 0.0], atol=1e-12)
    split = np.array([[[0.9, 0.1, 0.9, 0.1], [0.5, 0.5, 0.5, 0.5]]])
    assert score("bald", split, multi_label=True)[0] == pytest.approx((math.log(2) - h(0.9)) / 2)
    # A single-label reading of the same numbers would differ: the flag matters
    assert not np.allclose(score("entropy", probs), score("entropy", probs, multi_label=True))
    assert per_class(lambda p, **_: p[:, 0, 0], probs).tolist() == [0.5, 0.745]
    assert score("random", probs, multi_label=True, rng=np.random.default_rng(0)).shape == (2,)


@pytest.mark.parametrize("strategy", ["entropy", "bald"])
def test_one_round_of_the_loop_on_multi_label_targets(digits, strategy, monkeypatch):
    # Given labeled digits with multi-hot targets and a pool (a few training steps: the plumbing is under test)
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 10)
    images, labels = digits
    targets = multi_hot(labels)
    result = fit_and_score(images[:60], targets[:60], images[60:160], 3, strategy=strategy, seed=0)
    # Then the pool gets per-class probabilities and one score per item
    assert result.probs.shape == (100, 3) and result.scores.shape == (100,)
    assert (result.scores >= 0).all() and result.scores.std() > 0
    # And the labeled items out-of-fold sigmoid probabilities, with an exact-match accuracy estimate
    assert result.oof_probs.shape == (60, 3) and 0.0 <= result.metrics["val_accuracy"] <= 1.0
    assert result.state.members == []  # no pseudo-labels for class sets
    features = np.random.default_rng(1).normal(size=(160, 8)).astype(np.float32)
    head_result = fit_and_score_features(features[:60], targets[:60], features[60:], 3, strategy=strategy, seed=0)
    assert head_result.probs.shape == (100, 3) and head_result.scores.shape == (100,)


def test_saved_and_exported_models_keep_the_sigmoid(digits, tmp_path):
    # Given a trained multi-label CNN, saved and loaded again
    images, labels = digits
    model, _ = train(images[:40], multi_hot(labels)[:40], 3, seed=0, steps=10)
    save_model(model, tmp_path / "m.pt", {"family": "cnn"})
    loaded, meta = load_model(tmp_path / "m.pt")
    served = predict_proba(model, images[:8])[:, :, 0]
    # Then it is still multi-label and predicts the same
    assert meta["multi_label"] is True and is_multi_label(loaded)
    np.testing.assert_allclose(predict_proba(loaded, images[:8])[:, :, 0], served, atol=1e-6)
    # And the exported network gives the same sigmoid probabilities from [0, 1] pixels
    network = image_classifier(loaded, family="cnn", input_size=32, multi_label=True)
    x = torch.from_numpy(images[:8].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    with torch.no_grad():
        np.testing.assert_allclose(network(x).numpy(), served, atol=1e-5)
