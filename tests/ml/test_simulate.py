"""A short simulation on digits: the machinery (curve shapes, summaries), and a model that beats chance."""

from __future__ import annotations

import numpy as np
import pytest

import ml.simulate
from ml.loop import fit_and_score_features
from ml.simulate import THRESHOLDS, Data, Settings, default_selection, run_one, simulate, summarise


def test_short_simulation_on_digits(digits):
    images, labels = digits
    data = Data(images[:600], labels[:600], images[1400:], labels[1400:], 10)
    settings = Settings(strategies=["random", "bald"], initial=20, batch=10, budget=10, repeats=1)
    lines: list[str] = []
    result = simulate(data, settings, log=lines.append)
    assert set(result["strategies"]) == {"random", "bald"}
    for summary in result["strategies"].values():
        assert [point[0] for point in summary["curve"]] == [20, 30]
        assert all(len(point) == 3 for point in summary["curve"])
        assert set(summary["labels_to_accuracy"]) == set(THRESHOLDS)
        assert 0.3 < summary["curve"][-1][1] <= 1.0  # chance is 0.1
        assert 0.0 <= summary["auc"] <= 1.0
    assert len(lines) == 4


def test_summary_reach_and_auc():
    curves = [[(10, 0.5), (20, 0.91), (30, 0.96)], [(10, 0.7), (20, 0.89), (30, 0.98)]]
    s = summarise(curves)
    assert s["curve"][1] == [20, 0.9, 0.01]
    assert s["labels_to_accuracy"] == {"0.90": 20, "0.95": 30, "0.97": 30, "0.98": None}
    assert abs(s["auc"] - (0.5 * (0.6 + 0.9) + 0.5 * (0.9 + 0.97)) / 2) < 1e-6


def test_head_round_on_separable_embeddings():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    y = np.repeat(np.arange(3), 40)
    x = (centres[y] + rng.normal(size=(120, 16))).astype(np.float32)
    result = fit_and_score_features(x[::4], y[::4], x, 3, strategy="bald")
    assert result.probs.shape == (120, 3) and result.scores.shape == (120,)
    assert (result.probs.argmax(axis=1) == y).mean() > 0.9
    assert (result.scores >= 0).all()


def test_every_family_selects_diverse_batches_by_default():
    assert {default_selection(m) for m in ("cnn", "pretrained", "torchscript")} == {"diverse"}
    with pytest.raises(ValueError, match="cnn"):
        default_selection("resnet")


def test_cnn_rounds_cluster_on_the_models_features_and_random_stays_random(digits, monkeypatch):
    images, labels = digits
    data = Data(images[:300], labels[:300], images[1400:1500], labels[1400:1500], 10)
    settings = Settings(strategies=["margin"], initial=10, batch=5, budget=10, repeats=1, selection="diverse")
    seen = []
    real = ml.simulate.choose_batch

    def spy(scores, k, *, embeddings, selection, seed):
        assert embeddings.shape == (len(scores), 128)  # the CNN's penultimate features of the candidates
        seen.append(selection)
        return real(scores, k, embeddings=embeddings, selection=selection, seed=seed)

    monkeypatch.setattr(ml.simulate, "choose_batch", spy)
    for strategy in ("margin", "random"):
        curve = run_one(data, strategy, settings, 0)
        assert [n for n, _ in curve] == [10, 15, 20]
    assert seen == ["diverse", "diverse", "topk", "topk"]
