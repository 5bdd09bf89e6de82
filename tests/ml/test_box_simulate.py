"""The box simulation's seconds accounting, by hand-computed cases, and its summary and ratios."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation.box_simulate import BoxPoint, BoxRun, CostModel, answer_cost, ratios, seconds_to, summarise

COST = CostModel()
TRUTH = np.array([[10, 10, 20, 20], [50, 50, 30, 10]], dtype=np.float64)
CLASSES = np.array([0, 1])


def test_without_preboxes_every_box_is_drawn():
    seconds, acts = answer_cost(TRUTH, CLASSES, np.zeros((0, 4)), np.zeros(0), COST)
    assert seconds == pytest.approx(1.0 + 2 * 7.0)
    assert acts == {"drawn": 2, "verified": 0, "adjusted": 0, "deleted": 0}


def test_an_empty_image_costs_one_look():
    assert answer_cost(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), np.zeros(0), COST)[0] == 1.0


def test_right_adjusted_wrong_class_and_false_preboxes():
    shown = np.array(
        [
            [10, 10, 20, 20],  # exactly the first object: verified
            [52, 50, 30, 10],  # the second, IoU 28/32 = 0.875 < 0.9: adjusted
            [80, 80, 10, 10],  # nothing there: deleted
        ],
        dtype=np.float64,
    )
    seconds, acts = answer_cost(TRUTH, CLASSES, shown, np.array([0, 1, 0]), COST)
    assert acts == {"drawn": 0, "verified": 1, "adjusted": 1, "deleted": 1}
    assert seconds == pytest.approx(1.0 + 1.6 + 3.5 + 1.0)
    # The same rectangle with the wrong class is deleted and the object drawn
    seconds, acts = answer_cost(TRUTH[:1], CLASSES[:1], shown[:1], np.array([1]), COST)
    assert acts == {"drawn": 1, "verified": 0, "adjusted": 0, "deleted": 1}
    assert seconds == pytest.approx(1.0 + 7.0 + 1.0)


def test_every_price_is_a_parameter():
    cheap = CostModel(draw=2.0, look=0.0)
    assert answer_cost(TRUTH, CLASSES, np.zeros((0, 4)), np.zeros(0), cheap)[0] == pytest.approx(4.0)


def _run(points: list[tuple[int, float, float, float]]) -> BoxRun:
    curve = [BoxPoint(n, m, m / 2, None, w, wo) for n, m, w, wo in points]
    return BoxRun(curve, {"drawn": 1, "verified": 2, "adjusted": 0, "deleted": 3}, [])


def test_seconds_to_the_target_and_the_ratios():
    fast = _run([(10, 0.2, 100, 100), (20, 0.75, 150, 200)])
    slow = _run([(10, 0.2, 100, 100), (20, 0.5, 190, 200), (30, 0.71, 280, 300)])
    never = _run([(10, 0.2, 100, 100), (20, 0.5, 190, 200)])
    assert seconds_to(fast.curve, 0.7, with_preboxes=True) == 150
    assert seconds_to(slow.curve, 0.7, with_preboxes=False) == 300
    assert seconds_to(never.curve, 0.7, with_preboxes=True) is None
    summary = summarise([fast, slow], 0.7)
    assert summary["seconds_to_map"] == {"with_preboxes": 215.0, "without_preboxes": 250.0}
    assert summary["labels_to_map"] == 25.0
    assert summary["curve"][0] == [10, 0.2, 0.0, 0.1, 100.0, 100.0]
    assert summary["preboxes"] == {"drawn": 2, "verified": 4, "adjusted": 0, "deleted": 6}
    assert summarise([fast, never], 0.7)["seconds_to_map"]["with_preboxes"] is None  # no flattering mean
    strategies = {"random": summarise([slow], 0.7), "entropy": summarise([fast], 0.7)}
    assert ratios(strategies) == {
        "best": "entropy",
        "best_with_vs_random_without": round(150 / 300, 3),
        "best_with_vs_random_with": round(150 / 280, 3),
    }
