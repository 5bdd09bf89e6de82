"""Training: one loop with a schedule set by the labels; it learns digits, is deterministic, and
survives degenerate label sets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ml.models.cnn import build_model, to_tensor
from ml.models.predict import predict_proba
from ml.training import CNN_CONFIG, MAX_STEPS, MIN_STEPS, _augment, fit, schedule_steps, train


def test_learns_digits_from_200_items(digits):
    # Given 200 labeled digits
    images, labels = digits
    model, metrics = train(images[:200], labels[:200], 10, seed=0)
    # Then held-out digits are classified well (measured 0.968; chance is 0.1), and every label was trained on
    held_out = slice(1000, 1500)
    accuracy = (predict_proba(model, images[held_out])[:, :, 0].argmax(axis=1) == labels[held_out]).mean()
    assert accuracy > 0.93, (accuracy, metrics)  # 0.968 measured, less 0.04
    assert set(metrics) == {"n_train", "steps", "train_seconds"}
    assert metrics["n_train"] == 200 and metrics["steps"] == schedule_steps(200)
    assert not model.training


def test_the_schedule_grows_with_the_labels_within_bounds():
    assert schedule_steps(0) == MIN_STEPS
    assert schedule_steps(100) < schedule_steps(300) < schedule_steps(10_000) == MAX_STEPS
    assert schedule_steps(100, head=True) == 2 * schedule_steps(100)


def test_same_seed_same_model(digits):
    images, labels = digits
    a, _ = train(images[:40], labels[:40], 10, seed=3, steps=20)
    b, _ = train(images[:40], labels[:40], 10, seed=3, steps=20)
    c, _ = train(images[:40], labels[:40], 10, seed=4, steps=20)
    np.testing.assert_array_equal(predict_proba(a, images[100:110]), predict_proba(b, images[100:110]))
    assert not np.array_equal(predict_proba(a, images[100:110]), predict_proba(c, images[100:110]))


def test_leaves_the_callers_torch_rng_alone(digits):
    images, labels = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(images[:10], labels[:10], 10, steps=2)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("labels", "n_classes"),
    [
        ([2], 3),  # one item
        ([0, 0, 0, 0], 3),  # one class
        ([0, 3, 0, 3, 0, 3, 0, 3, 0, 3], 5),  # classes absent from the labels
        ([0, 1, 2, 3, 4, 5], 6),  # every class a singleton
        ([0, 0, 0, 0, 0], 1),  # a one-class project
    ],
)
def test_degenerate_label_sets(digits, labels, n_classes):
    images = digits[0][: len(labels)]
    model, metrics = train(images, np.array(labels), n_classes, steps=5)
    probs = predict_proba(model, digits[0][:4])
    assert probs.shape == (4, n_classes, 1) and np.isfinite(probs).all()
    assert metrics["n_train"] == len(labels)


def test_single_present_class_is_predicted(digits):
    model, _ = train(digits[0][:8], np.full(8, 1), 3, steps=40)
    assert (predict_proba(model, digits[0][:8])[:, :, 0].argmax(axis=1) == 1).all()


def test_rejects_bad_input(digits):
    images = digits[0]
    with pytest.raises(ValueError, match="without labeled items"):
        train(images[:0], np.zeros(0, dtype=np.int64), 3)
    with pytest.raises(ValueError, match="labels"):
        train(images[:3], np.array([0, 1, 3]), 3)
    with pytest.raises(ValueError):
        train(images[:3], np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="steps"):
        train(images[:3], np.array([0, 1, 1]), 3, steps=0)


def test_progress_is_monotone_and_ends_at_one(digits):
    fractions: list[float] = []
    train(digits[0][:20], digits[1][:20], 10, steps=25, progress=fractions.append)
    assert fractions and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)


def test_pseudo_labels_fill_half_of_each_batch(digits):
    # Given two labeled items and pool items pseudo-labeled as class 7
    images, _ = digits
    x = to_tensor(images[:40])
    y = torch.zeros(40, dtype=torch.int64)
    seen = []
    model = build_model(10, input_size=32)
    real_forward = model.features.forward

    def spy(xb):
        seen.append(len(xb))
        return real_forward(xb)

    model.features.forward = spy
    fit(
        model,
        x,
        y,
        np.array([0, 1]),
        steps=3,
        config=CNN_CONFIG,
        seed=0,
        pool_x=x,
        pseudo_rows=np.arange(10, 40),
        pseudo_classes=np.full(30, 7),
    )
    # Then every batch held 32 labeled and 32 pseudo-labeled images
    assert seen == [64, 64, 64]
    # And the model learnt the pseudo-labels' class for the pool
    assert (predict_proba(model, images[10:40])[:, :, 0].argmax(axis=1) == 7).mean() > 0.9  # 1.0 measured


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


@pytest.mark.parametrize("allow_flips", [False, True])
def test_mirrored_images_reach_training_only_when_flips_are_allowed(allow_flips):
    # Given one image bright on its left half and dark on its right (shifts keep it bright on the left)
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[:, :, :16] = 255
    x, y = to_tensor(image), torch.zeros(1, dtype=torch.int64)
    seen = []
    model = build_model(2, input_size=32)
    real_forward = model.features.forward

    def spy(xb):
        seen.append(xb.detach().clone())
        return real_forward(xb)

    model.features.forward = spy
    config = replace(CNN_CONFIG, allow_flips=allow_flips)
    # When it trains for a few steps (batches of 64 copies, each shifted, and maybe mirrored)
    fit(model, x, y, np.array([0]), steps=3, config=config, seed=0)
    batches = torch.cat(seen)
    mirrored = (batches[:, :, :, 16:].mean(dim=(1, 2, 3)) > batches[:, :, :, :16].mean(dim=(1, 2, 3))).float()
    # Then about half the copies are mirrored if the project allows it, and none otherwise
    if allow_flips:
        assert 0.3 < mirrored.mean() < 0.7
    else:
        assert mirrored.sum() == 0
