"""Training: it learns digits, it is deterministic, and it survives degenerate label sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.model import predict_proba
from ml.training import _augment, _min_refit_epochs, _stratified_split, train


def test_learns_digits_from_200_items(digits):
    # Given 200 labeled digits
    images, labels = digits
    model, metrics = train(images[:200], labels[:200], 10, seed=0)
    # Then held-out digits are classified far above chance (0.1)
    held_out = slice(1000, 1500)
    accuracy = (predict_proba(model, images[held_out])[:, :, 0].argmax(axis=1) == labels[held_out]).mean()
    assert accuracy > 0.7, (accuracy, metrics)
    assert set(metrics) == {"val_accuracy", "n_train", "n_val", "epochs", "train_seconds"}
    assert metrics["n_train"] + metrics["n_val"] == 200 and metrics["n_val"] == 40
    assert metrics["val_accuracy"] > 0.5
    assert 1 <= metrics["epochs"] <= 60
    assert not model.training


def test_small_sets_measure_validation_within_one_run(digits):
    # Given 40 labels: the minimum step count, not validation, sets the schedule
    images, labels = digits
    fractions: list[float] = []
    model, metrics = train(images[:40], labels[:40], 10, seed=0, progress=fractions.append)
    # Then validation is still measured on a held-out fifth, and the schedule is that minimum
    assert metrics["n_val"] == 8 and metrics["n_train"] == 32
    assert metrics["val_accuracy"] is not None and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert metrics["epochs"] == _min_refit_epochs(40, 64) > 10
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # And the served model has seen every label, the held-out ones included
    train_accuracy = (predict_proba(model, images[:40])[:, :, 0].argmax(axis=1) == labels[:40]).mean()
    assert train_accuracy >= 0.9
    assert not model.training


def test_same_seed_same_model(digits):
    images, labels = digits
    kwargs = dict(seed=3, max_epochs=3, patience=2)
    a, metrics_a = train(images[:40], labels[:40], 10, **kwargs)
    b, metrics_b = train(images[:40], labels[:40], 10, **kwargs)
    np.testing.assert_array_equal(predict_proba(a, images[100:110]), predict_proba(b, images[100:110]))
    assert {k: v for k, v in metrics_a.items() if k != "train_seconds"} == {
        k: v for k, v in metrics_b.items() if k != "train_seconds"
    }


def test_leaves_the_callers_torch_rng_alone(digits):
    images, labels = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(images[:10], labels[:10], 10, max_epochs=1)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("n", "labels", "n_classes"),
    [
        (1, [2], 3),  # one item
        (4, [0, 0, 0, 0], 3),  # one class, too few to validate
        (12, [0] * 12, 2),  # one class present, with validation
        (10, [0, 3, 0, 3, 0, 3, 0, 3, 0, 3], 5),  # classes absent from the labels
        (6, [0, 1, 2, 3, 4, 5], 6),  # every class a singleton
        (5, [0, 0, 0, 0, 0], 1),  # a one-class project
    ],
)
def test_degenerate_label_sets(digits, n, labels, n_classes):
    images = digits[0][:n]
    model, metrics = train(images, np.array(labels), n_classes, max_epochs=3)
    probs = predict_proba(model, digits[0][:4])
    assert probs.shape == (4, n_classes, 1) and np.isfinite(probs).all()
    assert metrics["n_train"] + metrics["n_val"] == n
    assert metrics["n_val"] == (0 if n < 5 else max(1, round(0.2 * n)))
    assert (metrics["val_accuracy"] is None) == (n < 5)


def test_single_present_class_is_predicted(digits):
    model, _ = train(digits[0][:8], np.full(8, 1), 3, max_epochs=5)
    assert (predict_proba(model, digits[0][:8])[:, :, 0].argmax(axis=1) == 1).all()


def test_rejects_bad_input(digits):
    images = digits[0]
    with pytest.raises(ValueError, match="without labeled items"):
        train(images[:0], np.zeros(0, dtype=np.int64), 3)
    with pytest.raises(ValueError, match="labels"):
        train(images[:3], np.array([0, 1, 3]), 3)
    with pytest.raises(ValueError):
        train(images[:3], np.array([0, 1]), 3)


def test_progress_is_monotone_and_ends_at_one(digits):
    fractions: list[float] = []
    train(digits[0][:20], digits[1][:20], 10, max_epochs=4, patience=2, progress=fractions.append)
    assert fractions and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)


def test_stratified_split_takes_every_class_its_share():
    labels = np.repeat(np.arange(4), [10, 10, 5, 1])
    val = _stratified_split(labels, 0.2, np.random.default_rng(0))
    assert len(val) == 5
    counts = np.bincount(labels[val], minlength=4)
    assert counts[0] == 2 and counts[1] == 2 and counts[2] == 1 and counts[3] == 0
    assert len(_stratified_split(labels[:4], 0.2, np.random.default_rng(0))) == 0


def test_augment_shifts_within_the_padding():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = _augment(x, np.random.default_rng(0), allow_flips=False)
    assert out.shape == x.shape
    for i in range(2):
        # Each output is the input shifted by at most 1 pixel (8 / 8), zero-filled
        assert any(
            torch.equal(
                out[i], torch.roll(torch.nn.functional.pad(x[i], (1, 1, 1, 1)), (dy, dx), (1, 2))[:, 1:-1, 1:-1]
            )
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
