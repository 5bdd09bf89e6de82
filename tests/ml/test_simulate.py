"""The simulation: the machinery (initial selections, curves, estimates, summaries), and the
product's central claim checked on every change: from a cold start, the default strategy does at
least as well as random order."""

from __future__ import annotations

import numpy as np
import pytest

import ml.evaluation.simulate
from ml.evaluation.simulate import THRESHOLDS, Data, Settings, initial_labels, run_one, simulate, summarise
from ml.loop import fit_and_score_features
from ml.selection import choose_batch, cold_start, cold_start_size, default_selection, pixel_embeddings, top_k
from ml.strategies import DEFAULT_STRATEGY


def test_short_simulation_on_digits(digits, monkeypatch):
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 20)
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
        # With 20 steps a round (chance is 0.1): the first round, the same for both, measured 0.678; at 30
        # labels random measured 0.738 and bald 0.44-0.54 (its MC-dropout masks come from torch's global
        # RNG, so the figure moves with the tests run before it)
        assert summary["curve"][0][1] > 0.6 and 0.35 < summary["curve"][-1][1] <= 1.0
        assert 0.0 <= summary["auc"] <= 1.0
        # The estimate the product would show, beside the test accuracy, round by round
        assert [point[0] for point in summary["estimate_curve"]] == [20, 30]
        assert all(0.0 <= point[1] <= 1.0 for point in summary["estimate_curve"])
        # And how the pre-labels of the items served fared
        pre = summary["prelabels"]
        assert pre["served"] == 10 and 0.0 <= pre["suggested_share"] <= 1.0 and 0.0 <= pre["accuracy"] <= 1.0
    assert len(lines) == 4


def test_summary_reach_auc_and_estimate_error():
    curves = [
        [(10, 0.5, 0.4, 3), (50, 0.91, 0.95, 0), (60, 0.96, 0.90, 0)],
        [(10, 0.7, 0.7, 1), (50, 0.89, 0.89, 0), (60, 0.98, 0.98, 0)],
    ]
    s = summarise(curves)
    assert s["curve"][1] == [50, 0.9, 0.01]
    assert s["labels_to_accuracy"] == {"0.90": 50, "0.95": 60, "0.97": 60, "0.98": None}
    assert abs(s["auc"] - (40 * (0.6 + 0.9) / 2 + 10 * (0.9 + 0.97) / 2) / 50) < 1e-6
    # The error counts from 50 labels on, per run: (|0.95 - 0.91| + |0.90 - 0.96| + 0 + 0) / 4
    assert s["estimate_mae"] == pytest.approx(0.025)
    assert s["estimate_curve"][0] == [10, 0.55]
    assert s["classes_unlabeled_at_50"] == [0, 0]


def test_initial_selections(digits):
    images, labels = digits
    data = Data(images[:300], labels[:300], images[1400:], labels[1400:], 10)
    balanced = initial_labels(data, Settings(strategies=["random"], initial_selection="balanced"), 0)
    assert np.bincount(labels[balanced], minlength=10).tolist() == [2] * 10
    random = initial_labels(data, Settings(strategies=["random"], initial_selection="random"), 0)
    assert len(set(random.tolist())) == 20
    # The cold start is the product's: the first items of the queue the worker's cold start makes
    cold = initial_labels(data, Settings(strategies=["random"], initial=10, batch=10, seed=3), 1)
    expected = cold_start(pixel_embeddings(images[:300]), cold_start_size(10), seed=3 * 1009 + 1)[:10]
    np.testing.assert_array_equal(cold, expected)
    with pytest.raises(ValueError, match="coldstart"):
        initial_labels(data, Settings(strategies=["random"], initial_selection="oracle"), 0)


def test_head_round_on_separable_embeddings():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    y = np.repeat(np.arange(3), 40)
    x = (centres[y] + rng.normal(size=(120, 16))).astype(np.float32)
    result = fit_and_score_features(x[::4], y[::4], x, 3, strategy="bald")
    assert result.probs.shape == (120, 3) and result.scores.shape == (120,)
    assert (result.probs.argmax(axis=1) == y).mean() > 0.97  # 1.0 measured
    assert (result.scores >= 0).all()


def test_every_familys_default_selection_spreads_a_batch_that_top_k_spends_on_near_copies():
    # Given five tight groups of embeddings, the eight best scores all in the first group
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(5), [8, 23, 23, 23, 23])
    embeddings = rng.normal(size=(5, 8))[group] * 10 + rng.normal(0, 0.1, size=(100, 8))
    scores = np.where(group == 0, 1.0, 0.5) + rng.random(100) * 0.01
    assert set(group[top_k(scores, 5)]) == {0}  # plain top-k: five near-copies
    for family in ("cnn", "pretrained", "torchscript"):
        # When the family's default selection picks a batch of five
        batch = choose_batch(scores, 5, embeddings=embeddings, selection=default_selection(family))
        # Then it takes one item of each group, the best item first
        assert sorted(group[batch].tolist()) == [0, 1, 2, 3, 4] and batch[0] == np.argmax(scores)
    with pytest.raises(ValueError, match="cnn"):
        default_selection("resnet")


def test_rounds_plan_batches_on_the_models_features_and_random_stays_random(digits, monkeypatch):
    images, labels = digits
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 5)
    data = Data(images[:300], labels[:300], images[1400:1500], labels[1400:1500], 10)
    settings = Settings(strategies=["margin"], initial=10, batch=5, budget=10, repeats=1, selection="diverse")
    seen = []
    real = ml.evaluation.simulate.plan_batch

    def spy(scores, k, *, embeddings, explore, strategy, **kwargs):
        assert embeddings.shape == (len(scores), 128)  # the CNN's penultimate features of the candidates
        assert explore[1].shape[1] == 128  # and of the labeled items
        seen.append(strategy)
        return real(scores, k, embeddings=embeddings, explore=explore, strategy=strategy, **kwargs)

    monkeypatch.setattr(ml.evaluation.simulate, "plan_batch", spy)
    for strategy in ("margin", "random"):
        curve = run_one(data, strategy, settings, 0).curve
        assert [point[0] for point in curve] == [10, 15, 20]
    assert seen == ["margin", "margin", "random", "random"]


def test_from_a_cold_start_the_default_strategy_is_at_least_as_good_as_random(digits):
    # Given the digits, the product's cold start and its default strategy, against random order
    images, labels = digits
    data = Data(images[:1300], labels[:1300], images[1300:], labels[1300:], 10)
    settings = Settings(strategies=[DEFAULT_STRATEGY, "random"], initial=20, batch=40, budget=80, repeats=1, seed=0)
    # When each goes from 20 to 100 labels in batches of 40 (rounds at 20, 60 and 100), the oracle answering
    result = simulate(data, settings)["strategies"]
    # Then the default strategy's learning curve lies at least as high on average (the area under it).
    # Measured: 0.930 against 0.917 (seed 0), 0.865 against 0.800 (seed 1), 0.914 against 0.866 (seed 2);
    # in batches of 20 (five rounds, 60% longer) 0.945 against 0.891, the closest seed 0.945 against 0.932.
    assert result[DEFAULT_STRATEGY]["auc"] >= result["random"]["auc"], result
