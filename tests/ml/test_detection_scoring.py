"""``ml.detection.scoring``: per-box and per-image uncertainty against hand-made detections."""

from __future__ import annotations

import numpy as np
import pytest

from ml.detection.centernet import Detections
from ml.detection.scoring import box_uncertainty, image_scores, low_confidence_count, mc_disagreement


def found(*boxes: tuple[float, list[float], int, tuple[float, float, float, float]]) -> Detections:
    """Detections from (score, class heat at the centre, class, box) tuples."""
    if not boxes:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), np.zeros((0, 3)))
    return Detections(
        np.array([b[3] for b in boxes], dtype=float),
        np.array([b[0] for b in boxes]),
        np.array([b[2] for b in boxes]),
        np.array([b[1] for b in boxes]),
    )


SURE = found((0.99, [0.99, 0.0, 0.0], 0, (0, 0, 10, 10)))
UNSURE_OBJECT = found((0.5, [0.5, 0.0, 0.0], 0, (0, 0, 10, 10)))
UNSURE_CLASS = found((0.9, [0.9, 0.85, 0.0], 0, (0, 0, 10, 10)))
NOTHING = found()


def test_a_box_is_uncertain_when_it_may_not_be_there_or_may_be_another_class():
    sure, unsure_object, unsure_class = (box_uncertainty(d)[0] for d in (SURE, UNSURE_OBJECT, UNSURE_CLASS))
    assert sure < 0.1
    assert unsure_object == pytest.approx(1.0)  # one bit for "is it there?", no doubt on the class
    # 0.47 bits of presence plus 0.9 x the normalised entropy of (0.9, 0.85, 0) / 1.75
    shares = np.array([0.9, 0.85]) / 1.75
    expected = -(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1)) + 0.9 * -(shares * np.log(shares)).sum() / np.log(3)
    assert unsure_class == pytest.approx(expected)
    assert box_uncertainty(UNSURE_CLASS, measure="margin")[0] == pytest.approx(
        -(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1)) + 0.9 * (1 - 0.05 / 1.75)
    )
    with pytest.raises(ValueError, match="unknown measure"):
        box_uncertainty(SURE, measure="variance")


def test_images_rank_by_their_doubtful_boxes():
    two_doubts = found((0.4, [0.4, 0, 0], 0, (0, 0, 10, 10)), (0.4, [0, 0.4, 0], 1, (20, 20, 10, 10)))
    doubt = -(0.4 * np.log2(0.4) + 0.6 * np.log2(0.6))  # 0.971 bits each
    images = [SURE, UNSURE_OBJECT, two_doubts, NOTHING]
    assert image_scores(images, aggregate="max").tolist() == pytest.approx([0.0808, 1.0, doubt, 0.0], abs=1e-3)
    assert image_scores(images, aggregate="sum")[2] == pytest.approx(2 * doubt)
    assert image_scores(images, aggregate="mean")[2] == pytest.approx(doubt)
    assert low_confidence_count(images).tolist() == [0, 0, 2, 0]
    with pytest.raises(ValueError, match="unknown aggregate"):
        image_scores(images, aggregate="median")


def test_mc_passes_that_agree_score_zero_and_that_differ_score_higher():
    steady = [SURE, SURE, SURE]
    moved = found((0.99, [0.99, 0, 0], 0, (30, 30, 10, 10)))
    relabeled = found((0.99, [0, 0.99, 0], 1, (0, 0, 10, 10)))
    # Image 0: three passes agree. Image 1: the box moves in one pass. Image 2: its class changes in two.
    samples = [[SURE, SURE, SURE], [SURE, moved, SURE], [SURE, relabeled, relabeled]]
    passes = [[samples[image][t] for image in range(3)] for t in range(3)]
    assert steady and mc_disagreement(passes).round(3).tolist() == [0.0, round(2 / 3, 3), round(2 / 3, 3)]
    assert mc_disagreement([[NOTHING], [NOTHING]]).tolist() == [0.0]
    with pytest.raises(ValueError, match="two passes"):
        mc_disagreement([[SURE]])
