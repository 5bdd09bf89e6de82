"""Cross-fitting: stable folds, honest out-of-fold predictions, per-member pseudo-labels, state files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ml.crossfit
from ml.calibration import temperature_scale
from ml.crossfit import (
    CrossFitState,
    PseudoLabels,
    cross_fit,
    fold_temperature_into,
    resolve_device,
    stable_folds,
)
from ml.evaluation.noise import flip_labels
from ml.models.cnn import build_model
from ml.models.predict import predict_proba, predict_proba_features
from ml.pseudo_labels import AUDIT_EVERY, audit_items, next_state


def blobs(n_per_class: int, n_classes: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated (N, dim) float32 clusters, one per class, and their (N,) labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 6
    y = np.repeat(np.arange(n_classes), n_per_class)
    return (centres[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y


def test_folds_are_a_fixed_function_of_the_key():
    keys = np.arange(10_000)
    folds = stable_folds(keys, 5)
    assert folds.min() == 0 and folds.max() == 4
    assert np.all(np.abs(np.bincount(folds) - 2000) < 150)  # about even
    # A key keeps its fold whatever else is labeled
    np.testing.assert_array_equal(stable_folds(keys[::7], 5), folds[::7])
    # The audit set is another hash of the key: about one in AUDIT_EVERY, unrelated to the folds
    audit = audit_items(keys)
    assert abs(audit.mean() - 1 / AUDIT_EVERY) < 0.01
    assert abs(audit[folds == 0].mean() - 1 / AUDIT_EVERY) < 0.02


def test_out_of_fold_predictions_come_from_the_model_that_never_saw_the_label():
    # Given 40 separable points, 5 of whose labels (drawn by a seeded generator) are flipped
    x, y = blobs(10)
    given, _ = flip_labels(y, 4, fraction=5 / 40, seed=0)
    keys = np.arange(100, 140)
    # When the served model and 5 fold models are cross-fitted
    fit = cross_fit(x, given, keys, 4, features=True, seed=0)
    # Then each fold model is trained without exactly its fold
    folds = stable_folds(keys, 5)
    np.testing.assert_array_equal(fit.folds, folds)
    # And out of fold, each flipped item is predicted as its true class: a k-fold computed by hand
    # says the out-of-fold accuracy against the given labels is (40 - 5) / 40
    oof_class = fit.oof_probs.argmax(axis=1)
    np.testing.assert_array_equal(oof_class, y)
    assert (oof_class == given).mean() == pytest.approx(35 / 40)
    # And the served model, trained on every given label, still sees through the flips
    served = predict_proba_features(fit.model, x)[:, :, 0].argmax(axis=1)
    assert (served == y).mean() >= 0.95


def test_a_fold_model_is_trained_without_its_fold(monkeypatch):
    x, y = blobs(5)
    seen: list[frozenset[int]] = []
    real_fit = ml.crossfit.fit

    def spy(model, x_all, y_all, rows, **kwargs):
        seen.append(frozenset(rows.tolist()))
        return real_fit(model, x_all, y_all, rows, **{**kwargs, "steps": 2})

    monkeypatch.setattr(ml.crossfit, "fit", spy)
    keys = np.arange(20)
    cross_fit(x, y, keys, 4, features=True, folds=4)
    folds = stable_folds(keys, 4)
    expected = {frozenset(range(20))} | {frozenset(np.flatnonzero(folds != j).tolist()) for j in np.unique(folds)}
    assert sorted(seen, key=sorted) == sorted(expected, key=sorted)


def test_without_serving_only_the_folds_train():
    x, y = blobs(5)
    fit = cross_fit(x, y, np.arange(20), 4, features=True, folds=3, serve=False)
    assert fit.model is None and len(fit.fold_models) == 3
    assert np.isfinite(fit.oof_probs).all()


def test_each_member_trains_on_its_own_pseudo_labels():
    # Given a previous round whose served member pseudo-labeled pool item 500 and fold member 2 item 501
    x, y = blobs(10)
    pool_x, _ = blobs(5, seed=1)
    pool_keys = np.arange(500, 520)
    members = [PseudoLabels() for _ in range(6)]
    members[0] = PseudoLabels(np.array([500, 999]), np.array([0, 0]))  # 999 is no longer in the pool
    members[2] = PseudoLabels(np.array([501]), np.array([1]))
    previous = CrossFitState(folds=5, members=members)
    fit = cross_fit(x, y, np.arange(40), 4, features=True, pool_inputs=pool_x, pool_keys=pool_keys, previous=previous)
    assert fit.n_pseudo == [1, 0, 1, 0, 0, 0]


def test_next_state_keeps_confident_items_out_of_the_audit_set():
    x, y = blobs(10)
    pool_x, _ = blobs(30, seed=1)
    pool_keys = np.arange(1000, 1120)
    fit = cross_fit(x, y, np.arange(40), 4, features=True, pool_inputs=pool_x, pool_keys=pool_keys)
    probs = predict_proba_features(fit.model, pool_x).mean(axis=2)
    state = next_state(fit, pool_x, pool_keys, temperature=1.0, features=True, threshold=0.9)
    assert len(state.members) == 6
    served = state.members[0]
    confident = pool_keys[(probs.max(axis=1) >= 0.9) & ~audit_items(pool_keys)]
    np.testing.assert_array_equal(np.sort(served.keys), np.sort(confident))
    assert not np.isin(served.keys, pool_keys[audit_items(pool_keys)]).any()
    np.testing.assert_array_equal(served.classes, probs[np.isin(pool_keys, served.keys)].argmax(axis=1))


def test_state_files_round_trip(tmp_path):
    state = CrossFitState(
        folds=2,
        members=[
            PseudoLabels(np.array([1, 2]), np.array([0, 1])),
            PseudoLabels(),
            PseudoLabels(np.array([3]), np.array([2])),
        ],
        oof_keys=np.array([7, 8]),
        oof_probs=np.array([[0.2, 0.8], [np.nan, np.nan]], dtype=np.float32),
    )
    state.save(tmp_path / "v1.round.npz")
    back = CrossFitState.load(tmp_path / "v1.round.npz")
    assert back.folds == 2 and len(back.members) == 3
    np.testing.assert_array_equal(back.members[0].keys, [1, 2])
    np.testing.assert_array_equal(back.members[2].classes, [2])
    np.testing.assert_array_equal(back.oof_keys, [7, 8])
    np.testing.assert_array_equal(back.oof_probs, state.oof_probs)
    assert not list(tmp_path.glob(".*.tmp"))


def test_folding_the_temperature_into_the_model_calibrates_its_probabilities(digits):
    torch.manual_seed(0)
    model = build_model(10, input_size=32).eval()
    before = predict_proba(model, digits[0][:20])[:, :, 0]
    fold_temperature_into(model, 2.5)
    after = predict_proba(model, digits[0][:20])[:, :, 0]
    np.testing.assert_allclose(after, temperature_scale(before, 2.5), rtol=1e-4, atol=1e-6)


def test_cnn_members_learn_digits_and_calibration_keeps_the_argmax(digits):
    images, labels = digits
    fit = cross_fit(
        images[:60], labels[:60], np.arange(60), 10, pool_inputs=images[60:300], pool_keys=np.arange(60, 300)
    )
    assert fit.steps > 0 and len(fit.fold_models) == 5
    held = predict_proba(fit.model, images[1000:1300])[:, :, 0].argmax(axis=1)
    # Measured: 0.917 held out, 0.867 out of fold (60 items: 0.017 each); margins of 0.035 and 5 items
    assert (held == labels[1000:1300]).mean() > 0.88
    assert 0.78 < (fit.oof_probs.argmax(axis=1) == labels[:60]).mean() <= 1.0


def test_the_device_setting(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
