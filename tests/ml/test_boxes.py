"""``ml.boxes``: clipping, IoU against hand-computed values, and one-to-one matching of two answers."""

from __future__ import annotations

import numpy as np
import pytest

from ml.boxes import as_boxes, clip_boxes, iou_matrix, match_boxes


def test_clip_cuts_boxes_to_the_image_and_empties_those_outside():
    boxes = [[-5, 10, 20, 10], [90, 90, 30, 30], [200, 0, 5, 5], [10, 10, 5, 5]]
    clipped = clip_boxes(boxes, 100, 100)
    assert clipped.tolist() == [[0, 10, 15, 10], [90, 90, 10, 10], [100, 0, 0, 5], [10, 10, 5, 5]]
    assert clip_boxes([], 10, 10).shape == (0, 4)


def test_iou_matches_hand_computed_overlaps():
    a = [[0, 0, 10, 10], [0, 0, 0, 5]]
    b = [[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]]
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    assert iou[1].tolist() == [0.0, 0.0, 0.0]  # a box without area overlaps nothing
    assert iou_matrix(as_boxes([]), b).shape == (0, 3)


def test_matching_pairs_same_class_boxes_one_to_one_above_the_threshold():
    # Given two annotators: both boxed a car and a person; the second also a dog, and put its person
    # box far off; the first boxed a second car that the second called a truck
    a = [[0, 0, 10, 10], [50, 50, 10, 20], [100, 0, 10, 10]]
    a_labels = [0, 1, 0]
    b = [[1, 1, 10, 10], [80, 80, 10, 20], [100, 0, 10, 10], [30, 0, 5, 5]]
    b_labels = [0, 1, 2, 3]
    match = match_boxes(a, a_labels, b, b_labels)
    # Then only the two cars that overlap and share a class pair up
    assert match.pairs.tolist() == [[0, 0]]
    assert match.iou[0] == pytest.approx(81 / 119)
    assert match.f1 == pytest.approx(2 / 7)


def test_matching_takes_the_pairing_with_the_largest_total_overlap():
    # One box of a overlaps two of b; the other overlaps only the first of them
    a = np.array([[0, 0, 10, 10], [2, 0, 10, 10]])
    b = np.array([[1, 0, 10, 10], [3, 0, 10, 10]])
    match = match_boxes(a, [0, 0], b, [0, 0])
    assert sorted(match.pairs.tolist()) == [[0, 0], [1, 1]] and match.f1 == 1.0


def test_empty_answers_agree_and_an_empty_against_boxes_does_not():
    assert match_boxes([], [], [], []).f1 == 1.0
    assert match_boxes([], [], [[0, 0, 5, 5]], [0]).f1 == 0.0
