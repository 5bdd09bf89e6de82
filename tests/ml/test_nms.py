"""``ml.detection.nms``: suppression against hand-worked cases."""

from __future__ import annotations

import torch

from ml.detection.nms import batched_nms, box_iou, nms


def test_box_iou_against_hand_computed_overlaps():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 0, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    iou = box_iou(a, b)
    assert torch.allclose(iou[0], torch.tensor([50 / 150, 1.0, 0.0]))
    assert torch.equal(iou[1], torch.zeros(3))


def test_nms_keeps_the_best_of_each_overlapping_group_in_score_order():
    # Two groups: 0, 1, 2 overlap heavily (1 scores highest), 3 stands alone; 4 overlaps 3 a little
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 1, 10, 11], [50, 50, 60, 60], [57, 57, 67, 67]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6, 0.95])
    assert nms(boxes, scores, 0.5).tolist() == [4, 1, 3]
    # A threshold below box 3 and 4's overlap (9/191) suppresses 3 as well
    assert nms(boxes, scores, 0.04).tolist() == [4, 1]


def test_a_suppressed_box_suppresses_nothing():
    # 1 overlaps 0 and 2 by 0.6 each, but 0 and 2 barely overlap: 1 goes, 2 stays
    boxes = torch.tensor([[0.0, 0, 10, 10], [2.5, 0, 12.5, 10], [5, 0, 15, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert box_iou(boxes[:1], boxes[1:2]).item() > 0.5 and box_iou(boxes[:1], boxes[2:]).item() < 0.5
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    classes = torch.tensor([0, 1, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []
