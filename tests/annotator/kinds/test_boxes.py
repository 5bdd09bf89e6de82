"""``annotator.kinds.boxes``: what a box answer may hold (known classes, inside the image after
clipping, a size), how it reads as a set of classes, and how several people's boxes add up."""

from __future__ import annotations

import pytest

from annotator.kinds import AnswerError, ClassOrder
from annotator.kinds.boxes import (
    Box,
    CheckedBox,
    box_problem,
    boxes_agreement,
    boxes_answer,
    boxes_check,
    boxes_consensus,
    clip_box,
)

CLASSES = ["car", "person", "dog"]
ORDER = ClassOrder(ids=[11, 12, 13], names=CLASSES)


def test_box_rules_refuse_unknown_classes_no_size_and_boxes_outside_and_clip_the_rest():
    ok = {"width": 100, "height": 50, "classes": CLASSES}
    assert box_problem(Box("car", 10, 10, 5, 5), **ok) is None
    assert box_problem(Box("cat", 10, 10, 5, 5), **ok) == "unknown class 'cat'"
    assert "no size" in box_problem(Box("car", 10, 10, 0, 5), **ok)
    assert "finite numbers" in box_problem(Box("car", float("nan"), 10, 5, 5), **ok)
    assert "outside the 100x50 image" in box_problem(Box("car", 100, 10, 5, 5), **ok)
    assert "outside" in box_problem(Box("car", -20, 10, 20, 5), **ok)
    # A box that sticks out is kept, cut to the image
    assert box_problem(Box("car", 90, -5, 20, 10), **ok) is None
    assert clip_box(Box("car", 90, -5, 20, 10), width=100, height=50) == Box("car", 90, 0, 10, 5)


def test_sent_boxes_are_cut_to_the_image_with_their_class_ids_and_outcomes():
    sent = [
        {"label": "car", "x": 90, "y": -5, "w": 20, "h": 10},
        {"label": "dog", "x": 1.234, "y": 2, "w": 3, "h": 4, "outcome": "accepted", "confidence": 0.9},
    ]
    checked = boxes_check(sent, classes=ORDER, width=100, height=50)
    assert checked == [
        CheckedBox(11, 90.0, 0.0, 10.0, 5.0, "drawn", None),
        CheckedBox(13, 1.23, 2.0, 3.0, 4.0, "accepted", 0.9),
    ]
    assert boxes_check([], classes=ORDER, width=100, height=50) == []  # nothing here


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ({"boxes": 1}, "Send 'boxes', a list"),
        (
            [{"label": "cow", "x": 1, "y": 1, "w": 2, "h": 2}],
            "boxes[0]: unknown class 'cow'; classes: car, person, dog",
        ),
        ([{"label": "car", "x": 1, "y": 1, "w": 2}], "boxes[0]: missing h"),
        ([{"label": "car", "x": "1", "y": 1, "w": 2, "h": 2}], "must be finite numbers"),
        ([{"label": "car", "x": True, "y": 1, "w": 2, "h": 2}], "must be finite numbers"),
        ([{"label": "car", "x": 1, "y": 1, "w": 0, "h": 2}], "has no size"),
        ([{"label": "car", "x": 200, "y": 1, "w": 5, "h": 2}], "outside the 100x50 image"),
        ([{"label": "car", "x": 1, "y": 1, "w": 5, "h": 2, "outcome": "guessed"}], "outcome must be one of"),
        ([{"label": "car", "x": 1, "y": 1, "w": 5, "h": 2, "confidence": 2}], "confidence must be a number"),
        (["car"], "a box is an object"),
    ],
)
def test_boxes_that_cannot_be_stored_are_refused_with_the_reason(sent, reason):
    with pytest.raises(AnswerError, match=None) as refused:
        boxes_check(sent, classes=ORDER, width=100, height=50)
    assert reason in str(refused.value)


def test_as_a_set_of_classes_an_answer_is_the_classes_of_its_kept_boxes():
    boxes = [CheckedBox(13, 0, 0, 1, 1), CheckedBox(11, 0, 0, 1, 1), CheckedBox(12, 0, 0, 1, 1, "rejected")]
    assert boxes_answer(boxes, ORDER) == (11, 13)
    assert boxes_answer([], ORDER) == ()


def test_people_agree_by_matched_f1_and_the_consensus_is_who_agrees_most():
    car, person = CheckedBox(11, 10, 10, 20, 20), CheckedBox(12, 50, 10, 10, 30)
    shifted = CheckedBox(11, 12, 11, 20, 20)  # IoU about 0.8 with car
    assert boxes_agreement([car, person], [shifted, person]) == 1.0
    assert boxes_agreement([car, person], [shifted]) == pytest.approx(2 / 3)
    assert boxes_agreement([], []) == 1.0 and boxes_agreement([car], []) == 0.0
    # Three people: the third missed the person; the first two agree with each other and with most
    best, agreement = boxes_consensus([[car, person], [shifted, person], [car]])
    assert best == 0 and agreement == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert boxes_consensus([[car]]) == (0, 1.0)
