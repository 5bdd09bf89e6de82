"""The confusion of out-of-fold predictions and each class's precision and recall."""

from __future__ import annotations

import numpy as np
import pytest

from ml.confusion import confusion_summary


def test_single_label_cells_and_per_class_figures():
    # Given five labeled items: two cats (one called a dog), two dogs, one bird nobody predicted
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.1, 0.6, 0.3]])
    labels = np.array([0, 0, 1, 1, 2])
    summary = confusion_summary(probs, labels)
    # Then the non-zero cells, given class first, and precision and recall per class
    assert summary["n"] == 5
    assert sorted(summary["cells"]) == [[0, 0, 1], [0, 1, 1], [1, 1, 2], [2, 1, 1]]
    assert summary["precision"] == [1.0, 0.5, None]  # nothing was predicted bird
    assert summary["recall"] == [0.5, 1.0, 0.0]
    assert summary["support"] == [2, 2, 1]
    # And the share right is the estimate's out-of-fold accuracy: the diagonal over n
    diagonal = sum(n for given, predicted, n in summary["cells"] if given == predicted)
    assert diagonal / summary["n"] == pytest.approx((probs.argmax(axis=1) == labels).mean())


def test_rows_no_fold_model_predicted_are_left_out():
    probs = np.array([[0.9, 0.1], [np.nan, np.nan], [0.4, 0.6]])
    summary = confusion_summary(probs, np.array([0, 1, 1]))
    assert summary["n"] == 2 and sorted(summary["cells"]) == [[0, 0, 1], [1, 1, 1]]
    assert summary["recall"] == [1.0, 1.0] and summary["support"] == [1, 1]


def test_multi_label_counts_each_class_on_its_own():
    probs = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.4]])
    labels = np.array([[1, 0], [0, 1], [0, 1]])
    summary = confusion_summary(probs, labels, multi_label=True)
    # class 0: tp 1 (item 0), fp 1 (item 1); class 1: tp 1 (item 1), fn 1 (item 2)
    assert summary["cells"] == [[0, 1, 1, 0], [1, 1, 0, 1]]
    assert summary["precision"] == [0.5, 1.0] and summary["recall"] == [1.0, 0.5]
    assert summary["support"] == [1, 2]


def test_no_labels_yet_is_an_empty_summary():
    summary = confusion_summary(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert summary == {"n": 0, "cells": [], "precision": [None] * 3, "recall": [None] * 3, "support": [0] * 3}
