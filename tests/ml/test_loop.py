"""fit_and_score: validation first, MC samples for the strategies that need them, empty pools."""

from __future__ import annotations

import numpy as np
import pytest

import ml.loop
from ml.loop import LoopResult, fit_and_score
from ml.model import build_model
from ml.scoring import entropy


def test_unknown_strategy_fails_before_training(digits, monkeypatch):
    monkeypatch.setattr(ml.loop, "train", lambda *a, **k: pytest.fail("trained before validating"))
    with pytest.raises(ValueError, match="entropy"):
        fit_and_score(digits[0][:10], digits[1][:10], digits[0][10:20], 10, strategy="nope")


@pytest.mark.parametrize(
    ("strategy", "mc_samples", "expected"),
    [("entropy", 1, 1), ("bald", 1, 20), ("variation_ratios", 30, 30), ("margin", 5, 5)],
)
def test_mc_samples_per_strategy(digits, monkeypatch, strategy, mc_samples, expected):
    seen = []
    real_predict = ml.loop.predict_with_features
    monkeypatch.setattr(ml.loop, "train", lambda *a, **k: (build_model(10, input_size=32).eval(), {"epochs": 0}))

    def spy(model, images, *, mc_samples):
        seen.append(mc_samples)
        return real_predict(model, images, mc_samples=mc_samples)

    monkeypatch.setattr(ml.loop, "predict_with_features", spy)
    result = fit_and_score(
        digits[0][:10], digits[1][:10], digits[0][10:17], 10, strategy=strategy, mc_samples=mc_samples
    )
    assert seen == [expected]
    assert result.probs.shape == (7, 10) and result.scores.shape == (7,)


def test_real_round(digits):
    images, labels = digits
    progress: list[float] = []
    result = fit_and_score(images[:60], labels[:60], images[60:160], 10, strategy="entropy", progress=progress.append)
    assert isinstance(result, LoopResult)
    assert result.probs.shape == (100, 10) and result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result.scores, entropy(result.probs), rtol=1e-5, atol=1e-6)
    assert result.metrics["n_train"] + result.metrics["n_val"] == 60
    assert progress[-1] == 1.0 and progress == sorted(progress)
    # The pool's penultimate features come with it, for diverse batch selection
    assert result.embeddings.shape == (100, 128) and result.embeddings.dtype == np.float32


def test_empty_pool(digits):
    result = fit_and_score(digits[0][:6], digits[1][:6], np.zeros((0, 32, 32, 3), dtype=np.uint8), 10, strategy="bald")
    assert result.probs.shape == (0, 10) and result.scores.shape == (0,)
    assert result.embeddings.shape == (0, 128)
