"""``ml.detection.loop``: a detector round on generated scenes: an estimate on held-out images,
calibrated confidences, image-level class presence and scores for every strategy."""

from __future__ import annotations

import numpy as np
import pytest

from ml.detection.centernet import Detections, extract_features
from ml.detection.loop import calibrator, detector_round, presence
from ml.evaluation.scenes import draw_scene
from ml.mobilenet import load_mobilenet_v2


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(4)
    drawn = [draw_scene(64, rng, max_objects=2) for _ in range(50)]
    return drawn, extract_features(load_mobilenet_v2(), [s.pixels for s in drawn], input_size=64)


def test_a_round_estimates_on_held_out_images_and_scores_the_pool(scenes):
    drawn, features = scenes
    labeled, pool = features.take(np.arange(40)), features.take(np.arange(40, 50))
    done = []
    result = detector_round(
        labeled,
        [s.boxes for s in drawn[:40]],
        [s.labels for s in drawn[:40]],
        pool,
        6,
        input_size=64,
        strategy="entropy",
        epochs=10,
        min_steps=0,  # the machinery under test, not the figures
        seed=0,
        progress=done.append,
    )
    # The estimate rests on the 8 held-out images (one in five), measured by pycocotools
    assert result.metrics["val_n"] == 8 and len(result.held_out) == 8
    assert 0 < result.metrics["val_map50"] <= 1 and 0 < result.metrics["val_map"] <= result.metrics["val_map50"]
    assert result.held_out_presence.shape == (8, 6)
    # Every pool image has its boxes with calibrated confidences, a score and class presence
    assert len(result.pool) == len(result.confidence) == len(result.scores) == 10
    assert all(
        ((c >= 0) & (c <= 1)).all() and len(c) == len(d.scores)
        for c, d in zip(result.confidence, result.pool, strict=True)
    )
    assert result.presence.shape == (10, 6) and result.presence.max() <= 1
    assert done[-1] == 1.0 and done == sorted(done)
    # Every strategy scores each pool image (random, MC-dropout disagreement, margin)
    for strategy in ("random", "bald", "margin"):
        again = detector_round(
            labeled.take(np.arange(8)),
            [s.boxes for s in drawn[:8]],
            [s.labels for s in drawn[:8]],
            pool,
            6,
            input_size=64,
            strategy=strategy,
            epochs=2,
            min_steps=0,
            seed=1,
        )
        assert again.metrics["val_n"] == 0 and again.metrics["val_map50"] is None  # under 10 labeled: no estimate
        assert len(again.scores) == 10 and np.isfinite(again.scores).all()


def test_calibration_maps_scores_to_how_often_such_boxes_were_right():
    # Held-out detections: high-score boxes on the object, low-score ones elsewhere
    truth = [np.array([[0.0, 0.0, 10.0, 10.0]])] * 30
    labels = [np.array([0])] * 30
    found = [
        Detections(
            np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 5.0, 5.0]]),
            np.array([0.6, 0.3]),
            np.array([0, 0]),
            np.zeros((2, 1)),
        )
        for _ in range(30)
    ]
    calibrate = calibrator(found, truth, labels)
    assert calibrate(np.array([0.6]))[0] == pytest.approx(1.0) and calibrate(np.array([0.3]))[0] == pytest.approx(0.0)
    assert calibrate(np.zeros(0)).shape == (0,)  # an image where nothing was found
    assert presence(found[:1], [np.array([0.9, 0.2])], 2).tolist() == [[0.9, 0.0]]
