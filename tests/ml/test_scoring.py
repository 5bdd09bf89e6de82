"""Scorers on hand-made probabilities with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.scoring import (
    SCORERS,
    bald,
    entropy,
    get_scorer,
    least_confidence,
    margin,
    random,
    variation_ratios,
)

PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.4, 0.4, 0.2],  # tie at the top
        [1.0, 0.0, 0.0],  # certain, with zeros
    ]
)


@pytest.fixture(autouse=True)
def _no_numpy_warnings():
    with np.errstate(all="raise"):
        yield


def test_least_confidence():
    np.testing.assert_allclose(least_confidence(PROBS), [0.3, 0.6, 0.0])


def test_margin_is_one_minus_top_two_gap():
    np.testing.assert_allclose(margin(PROBS), [0.5, 1.0, 0.0])


def test_entropy_natural_log_and_zero_safe():
    expected0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    expected1 = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))
    np.testing.assert_allclose(entropy(PROBS), [expected0, expected1, 0.0])
    np.testing.assert_allclose(entropy(np.array([[0.5, 0.5]])), [math.log(2)])


def test_scores_use_the_mean_over_samples():
    # Given two samples whose mean is PROBS[0]
    a = np.array([[0.9, 0.1, 0.0]])
    b = np.array([[0.5, 0.3, 0.2]])
    probs = np.stack([a, b], axis=2)  # (1, 3, 2)
    # Then the mean-based scorers see [0.7, 0.2, 0.1]
    np.testing.assert_allclose(least_confidence(probs), [0.3])
    np.testing.assert_allclose(margin(probs), [0.5])
    np.testing.assert_allclose(entropy(probs), entropy(PROBS[:1]))


def test_bald_disagreeing_samples_give_log2_agreeing_give_zero():
    disagree = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # (1, C=2, S=2): sample 0 says class 0, sample 1 class 1
    agree = np.array([[[0.5, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(bald(disagree), [math.log(2)])
    np.testing.assert_allclose(bald(agree), [0.0], atol=1e-12)
    assert bald(agree)[0] >= 0


def test_bald_and_variation_ratios_are_zero_with_one_sample():
    np.testing.assert_array_equal(bald(PROBS), np.zeros(3))
    np.testing.assert_array_equal(variation_ratios(PROBS), np.zeros(3))
    np.testing.assert_array_equal(bald(PROBS[:, :, None]), np.zeros(3))


def test_variation_ratios():
    # Given 4 samples voting 0, 0, 1, 0 and 3 samples voting 0, 1, 2
    votes4 = np.eye(3)[[0, 0, 1, 0]].T[None]  # (1, 3, 4)
    votes3 = np.eye(3)[[0, 1, 2]].T[None]  # (1, 3, 3)
    np.testing.assert_allclose(variation_ratios(votes4), [0.25])
    np.testing.assert_allclose(variation_ratios(votes3), [2 / 3])


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_empty_input_gives_empty_scores(name):
    scorer = get_scorer(name)
    for probs in (np.zeros((0, 3, 5)), np.zeros((0, 3)), np.zeros((0, 1, 1))):
        scores = scorer(probs, rng=np.random.default_rng(0))
        assert scores.shape == (0,)
        assert scores.dtype == np.float64


@pytest.mark.parametrize("name", sorted(set(SCORERS) - {"random"}))
def test_single_class_scores_zero(name):
    probs = np.ones((4, 1, 3))
    np.testing.assert_array_equal(get_scorer(name)(probs), np.zeros(4))


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_one_item_and_uniform_signature(name):
    scores = get_scorer(name)(PROBS[:1], rng=np.random.default_rng(0), unused_keyword=1)
    assert scores.shape == (1,)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy"])
def test_uncertain_items_score_higher(name):
    scores = get_scorer(name)(PROBS)
    assert scores[1] > scores[0] > scores[2]


def test_two_dimensional_input_equals_single_sample():
    for name, scorer in SCORERS.items():
        if name != "random":
            np.testing.assert_array_equal(scorer(PROBS), scorer(PROBS[:, :, None]))


def test_random_is_repeatable_with_rng():
    a = random(np.zeros((5, 2)), rng=np.random.default_rng(7))
    b = random(np.zeros((5, 2)), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < 1)).all()
    assert random(np.zeros((5, 2))).shape == (5,)


def test_get_scorer_unknown_names_the_valid_ones():
    with pytest.raises(ValueError) as excinfo:
        get_scorer("most_confusing")
    assert all(name in str(excinfo.value) for name in SCORERS)
    assert get_scorer("bald") is bald


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        entropy(np.zeros(3))


def test_bald_on_model_output_float32_matches_the_float64_definition():
    # Given float32 MC samples as the models give them, some with a zero probability
    p = np.random.default_rng(3).dirichlet(np.ones(5), size=(200, 8)).transpose(0, 2, 1).astype(np.float32)
    p[0, :, :] = 0.0
    p[0, 2, :] = 1.0
    # Then the fast float32 path scores as the float64 one does, to float32 precision
    fast, exact = bald(p), bald(p.astype(np.float64))
    assert fast.dtype == np.float64 and fast.shape == (200,)
    np.testing.assert_allclose(fast, exact, atol=1e-5)
    assert fast[0] == 0.0 and (fast >= 0).all()
    np.testing.assert_array_equal(np.argsort(fast)[-20:], np.argsort(exact)[-20:])


def test_the_light_list_of_strategies_names_every_scorer():
    # ml.strategies (no torch) is what the web process offers; ml.scoring is what scores
    from ml.scoring import SCORERS
    from ml.strategies import DEFAULT_STRATEGY, STRATEGIES

    assert list(SCORERS) == STRATEGIES and DEFAULT_STRATEGY in STRATEGIES
