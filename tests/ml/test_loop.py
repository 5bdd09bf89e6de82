"""fit_and_score: validation first, MC samples for the strategies that need them, calibrated
probabilities, the estimate and the state a round hands on, empty pools."""

from __future__ import annotations

import numpy as np
import pytest

import ml.loop
from ml.calibration import temperature_scale
from ml.loop import LoopResult, fit_and_score
from ml.models.predict import predict_proba
from ml.scoring import entropy


@pytest.fixture
def few_steps(monkeypatch):
    """A couple of training steps: the plumbing is under test, not the learning."""
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 3)


def test_unknown_strategy_fails_before_training(digits, monkeypatch):
    monkeypatch.setattr(ml.loop, "cross_fit", lambda *a, **k: pytest.fail("trained before validating"))
    with pytest.raises(ValueError, match="entropy"):
        fit_and_score(digits[0][:10], digits[1][:10], digits[0][10:20], 10, strategy="nope")


@pytest.mark.parametrize(
    ("strategy", "mc_samples", "expected"),
    [("entropy", 1, 1), ("bald", 1, 20), ("variation_ratios", 30, 30), ("margin", 5, 5)],
)
def test_mc_samples_per_strategy(digits, monkeypatch, few_steps, strategy, mc_samples, expected):
    seen = []
    real_predict = ml.loop.predict_with_features

    def spy(model, images, *, mc_samples=1):
        seen.append(mc_samples)
        return real_predict(model, images, mc_samples=mc_samples)

    monkeypatch.setattr(ml.loop, "predict_with_features", spy)
    result = fit_and_score(
        digits[0][:10], digits[1][:10], digits[0][10:17], 10, strategy=strategy, mc_samples=mc_samples
    )
    assert seen == [expected, 1]  # the pool, then the labeled items' features
    assert result.probs.shape == (7, 10) and result.scores.shape == (7,)


def test_real_round(digits):
    images, labels = digits
    progress: list[float] = []
    result = fit_and_score(images[:60], labels[:60], images[60:160], 10, strategy="entropy", progress=progress.append)
    assert isinstance(result, LoopResult)
    assert result.probs.shape == (100, 10) and result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result.scores, entropy(result.probs), rtol=1e-5, atol=1e-6)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    # The served model's probabilities are the calibrated ones: its last layer carries the temperature
    t = result.metrics["temperature"]
    assert 1 / 20 <= t <= 20
    np.testing.assert_allclose(predict_proba(result.model, images[60:70])[:, :, 0], result.probs[:10], atol=1e-5)
    # The estimate rests on the 60 labels, each predicted out of fold
    m = result.metrics
    assert m["val_n"] == 60 and m["val_accuracy_low"] <= m["val_accuracy"] <= m["val_accuracy_high"]
    assert result.oof_probs.shape == (60, 10) and np.isfinite(result.oof_probs).all()
    assert m["cv_accuracy"] == pytest.approx((result.oof_probs.argmax(axis=1) == labels[:60]).mean(), abs=1e-4)
    # The pool's and the labeled items' penultimate features come with it, for batch selection
    assert result.embeddings.shape == (100, 128) and result.labeled_embeddings.shape == (60, 128)
    # And the state for the next round: pseudo-labels per member, out-of-fold probabilities by key
    assert len(result.state.members) == 6
    np.testing.assert_array_equal(result.state.oof_keys, np.arange(60))
    assert set(result.state.members[0].keys.tolist()) <= set(range(60, 160))


def test_the_next_round_trains_on_the_previous_rounds_pseudo_labels(digits, few_steps):
    images, labels = digits
    first = fit_and_score(images[:30], labels[:30], images[30:200], 10, strategy="margin", seed=0)
    first.state.members[0].keys = np.arange(100, 120)  # say the served model was sure of these
    first.state.members[0].classes = labels[100:120]
    second = fit_and_score(
        images[:40],
        labels[:40],
        images[40:200],
        10,
        strategy="margin",
        keys=np.arange(40),
        pool_keys=np.arange(40, 200),
        previous=first.state,
    )
    assert second.metrics["n_pseudo"] == 20


def test_temperature_scaling_matches_the_calibration_module(digits, few_steps):
    images, labels = digits
    result = fit_and_score(images[:30], labels[:30], images[30:60], 10, strategy="entropy")
    raw = temperature_scale(result.probs, 1.0 / result.metrics["temperature"])  # undo it
    np.testing.assert_allclose(temperature_scale(raw, result.metrics["temperature"]), result.probs, atol=1e-4)


def test_empty_pool(digits, few_steps):
    result = fit_and_score(digits[0][:6], digits[1][:6], np.zeros((0, 32, 32, 3), dtype=np.uint8), 10, strategy="bald")
    assert result.probs.shape == (0, 10) and result.scores.shape == (0,)
    assert result.embeddings.shape == (0, 128)
    assert result.metrics["val_accuracy"] == pytest.approx(result.metrics["cv_accuracy"], abs=1e-4)
