"""Calibration and the accuracy estimate, against answers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import (
    accuracy_estimate,
    atc_threshold,
    correct,
    expected_correct,
    fit_temperature,
    temperature_scale,
    wilson_interval,
)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_wilson_interval_matches_the_textbook_values():
    # 50 of 100: centre 0.5, half-width 1.96 * sqrt(0.25/100 + 1.96²/40000) / (1 + 1.96²/100)
    assert wilson_interval(0.5, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    # 10 of 10: the lower bound is n / (n + z²) = 10 / 13.8416
    assert wilson_interval(1.0, 10) == pytest.approx((10 / (10 + 1.96**2), 1.0), abs=1e-6)
    assert wilson_interval(0.3, 0) == (0.0, 1.0)


def test_temperature_scaling_rescales_logits():
    z = np.array([[2.0, 0.0, -1.0], [0.5, 0.4, 0.3]])
    p = softmax(z)
    np.testing.assert_allclose(temperature_scale(p, 1.0), p, rtol=1e-6)
    np.testing.assert_allclose(temperature_scale(p, 2.0), softmax(z / 2.0), rtol=1e-6)
    # Multi-label: each sigmoid on its own
    q = np.array([[0.9, 0.2]])
    logit = np.log(q / (1 - q))
    np.testing.assert_allclose(temperature_scale(q, 3.0, multi_label=True), 1 / (1 + np.exp(-logit / 3.0)))


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    # Given labels drawn from softmax(z / 2): a model reporting softmax(z) is overconfident by T = 2
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 5)) * 3
    labels = np.array([rng.choice(5, p=row) for row in softmax(z / 2.0)])
    assert fit_temperature(softmax(z), labels) == pytest.approx(2.0, rel=0.1)
    # A model reporting softmax(z / 4) is timid: T = 0.5 sharpens it
    assert fit_temperature(softmax(z / 4.0), labels) == pytest.approx(0.5, rel=0.1)
    # Nothing to fit: one class, or fewer than two items
    assert fit_temperature(softmax(z[:10]), np.zeros(10, dtype=int)) == 1.0
    assert fit_temperature(softmax(z[:1]), labels[:1]) == 1.0


def test_correct_and_expected_correct():
    p = np.array([[0.7, 0.3], [0.4, 0.6]])
    assert correct(p, np.array([0, 0])).tolist() == [True, False]
    np.testing.assert_allclose(expected_correct(p), [0.7, 0.6])
    sets = np.array([[0.9, 0.2], [0.6, 0.7]])
    assert correct(sets, np.array([[1, 0], [1, 0]]), multi_label=True).tolist() == [True, False]
    np.testing.assert_allclose(expected_correct(sets, multi_label=True), [0.9 * 0.8, 0.6 * 0.7])


def test_atc_threshold_leaves_the_error_rate_below_it():
    confidence = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    ok = np.array([False, True, True, True, True])  # 20% wrong
    t = atc_threshold(confidence, ok)
    assert (confidence < t).mean() == pytest.approx(0.2, abs=0.2) and 0.5 <= t <= 0.6


def test_estimate_counts_labeled_items_out_of_fold_and_the_pool_above_the_threshold():
    # Given 4 labeled items, 3 right out of fold (the wrong one at confidence 0.55)
    oof = np.array([[0.9, 0.1], [0.8, 0.2], [0.45, 0.55], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    # And 6 unlabeled items, 3 of them more confident than the threshold, 3 less
    pool = np.array([[0.95, 0.05], [0.1, 0.9], [0.85, 0.15], [0.52, 0.48], [0.5, 0.5], [0.45, 0.55]])
    est = accuracy_estimate(oof, labels, pool, temperature=1.0)
    # The threshold is the 25% quantile of the OOF confidences (0.55, 0.7, 0.8, 0.9): 0.6625
    assert atc_threshold(oof.max(axis=1), correct(oof, labels)) == pytest.approx(0.6625)
    # So: (3 right + 3 of 6 pool items above 0.6625) / 10 items
    assert est.value == pytest.approx((3 + 3) / 10)
    assert est.cv == pytest.approx(0.75) and est.n_labels == 4
    assert (est.low, est.high) == pytest.approx(wilson_interval(0.6, 4))
    # A pool sampled from a larger one counts for all of it
    big = accuracy_estimate(oof, labels, pool, temperature=1.0, n_pool=600)
    assert big.value == pytest.approx((3 + 0.5 * 600) / 604)
    metrics = est.as_metrics()
    assert set(metrics) == {
        "val_accuracy",
        "val_accuracy_low",
        "val_accuracy_high",
        "val_n",
        "cv_accuracy",
        "temperature",
    }


def test_estimate_without_a_pool_is_the_cross_validated_accuracy():
    oof = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    est = accuracy_estimate(oof, np.array([0, 1, 1]), np.zeros((0, 2)), temperature=1.3)
    assert est.value == pytest.approx(2 / 3) and est.temperature == 1.3


def test_no_label_out_of_fold_means_no_estimate():
    est = accuracy_estimate(np.zeros((0, 3)), np.zeros(0, dtype=int), np.full((5, 3), 1 / 3), temperature=1.0)
    metrics = est.as_metrics()
    assert metrics["val_accuracy"] is None and metrics["val_n"] == 0 and metrics["val_accuracy_low"] is None
