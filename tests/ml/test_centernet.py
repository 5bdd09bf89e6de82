"""``ml.detection.centernet``: coordinates through the letterbox and the grid and back, and a head
that learns to find shapes on generated scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.detection.centernet import (
    Letterbox,
    decode,
    detect,
    detect_samples,
    encode_targets,
    extract_features,
    letterbox,
    train_head,
)
from ml.detection.evaluation import coco_map
from ml.evaluation.scenes import draw_scene
from ml.mobilenet import load_mobilenet_v2


def test_letterbox_centres_the_image_and_says_where():
    image = np.full((50, 100, 3), 255, dtype=np.uint8)  # wide: 100 x 50
    pixels, where = letterbox(image, 64)
    assert pixels.shape == (3, 64, 64)
    assert where == Letterbox(scale=0.64, pad_x=0.0, pad_y=16.0, width=100, height=50)
    assert pixels[:, 16:48].min() > 0.99 and pixels[:, :16].max() == pytest.approx(0.5)


def test_targets_decode_back_to_the_boxes_they_were_made_from():
    # Given boxes on a tall image (letterboxed with borders left and right), one of them at the edge
    boxes = np.array([[10.0, 20.0, 30.0, 40.0], [55.0, 150.0, 25.0, 50.0], [0.0, 0.0, 12.0, 12.0]])
    labels = np.array([0, 2, 1])
    where = Letterbox(scale=128 / 200, pad_x=(128 - 80 * 128 / 200) / 2, pad_y=0.0, width=80, height=200)
    targets = encode_targets([boxes], [labels], [where], input_size=128, n_classes=3)
    assert targets.mask.sum() == 3 and targets.heat.amax(dim=(2, 3)).tolist() == [[1.0, 1.0, 1.0]]
    # When the targets are decoded as if a head had predicted them exactly
    logits = torch.logit(targets.heat.clamp(1e-6, 1 - 1e-6))
    (found,) = decode(logits, targets.box, [where], min_score=0.5)
    # Then the same boxes come back, in image pixels, with their classes
    order = np.argsort(found.labels)
    assert found.labels[order].tolist() == [0, 1, 2]
    np.testing.assert_allclose(found.boxes[order], boxes[[0, 2, 1]], atol=1e-3)


def test_a_head_trained_on_scenes_finds_their_shapes():
    # Given 90 generated scenes of up to 3 shapes (60 to train on, 30 held out) and their features
    rng = np.random.default_rng(1)
    scenes = [draw_scene(96, rng, max_objects=3) for _ in range(90)]
    features = extract_features(load_mobilenet_v2(), [s.pixels for s in scenes], input_size=128)
    train, test = np.arange(60), np.arange(60, 90)
    targets = encode_targets(
        [scenes[i].boxes for i in train],
        [scenes[i].labels for i in train],
        features.take(train).boxes_in,
        input_size=128,
        n_classes=6,
    )
    # When a head is trained for a few epochs
    head = train_head(features.take(train), targets, 6, epochs=20, seed=0)
    found = detect(head, features.take(test))
    figures = coco_map(
        [scenes[i].boxes for i in test],
        [scenes[i].labels for i in test],
        found,
        n_classes=6,
        sizes=[(96, 96)] * len(test),
    )
    # Then it finds shapes on scenes it never saw: mAP@0.5 measured 0.53 (0.42-0.53 over seeds 0-2;
    # chance is near 0), asserted above 0.35
    assert figures["n"] == 30 and figures["map50"] > 0.35, figures


def test_mc_samples_differ_and_leave_the_head_as_it_was():
    rng = np.random.default_rng(2)
    scenes = [draw_scene(64, rng, max_objects=2) for _ in range(8)]
    features = extract_features(load_mobilenet_v2(), [s.pixels for s in scenes], input_size=64)
    targets = encode_targets(
        [s.boxes for s in scenes], [s.labels for s in scenes], features.boxes_in, input_size=64, n_classes=6
    )
    head = train_head(features, targets, 6, epochs=2)
    samples = detect_samples(head, features, passes=3, min_score=0.0)
    assert len(samples) == 3 and all(len(p) == 8 for p in samples)
    assert not np.array_equal(samples[0][0].scores, samples[1][0].scores)  # dropout was on
    assert not head.training
    first, again = detect(head, features), detect(head, features)
    assert np.array_equal(first[0].scores, again[0].scores)  # and is off again
