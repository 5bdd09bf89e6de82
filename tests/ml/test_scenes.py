"""``ml.evaluation.scenes``: generated scenes whose boxes enclose exactly what was drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.boxes import iou_matrix
from ml.evaluation.scenes import MAX_OVERLAP, draw_scene
from ml.evaluation.shapes import CLASSES, paint


@pytest.mark.parametrize("kind", CLASSES)
def test_each_box_is_the_tight_extent_of_the_shape_drawn(kind):
    # Given each kind of shape painted, turned, on a plain ground
    for turn in (0.0, 0.4, 1.3):
        image = Image.new("RGB", (100, 100), (0, 0, 0))
        box = paint(ImageDraw.Draw(image), kind, (47.3, 52.8), 20.0, turn, (255, 255, 255))
        # Then the box it returns is the extent of the painted pixels, to within a pixel
        ys, xs = np.nonzero(np.asarray(image)[:, :, 0])
        assert box == pytest.approx((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), abs=1.01)


def test_objects_overlap_at_most_the_limit_and_scenes_are_reproducible():
    for seed in range(30):
        scene = draw_scene(128, np.random.default_rng(seed), max_objects=8)
        assert scene.pixels.shape == (128, 128, 3) and scene.pixels.dtype == np.uint8
        assert scene.boxes.shape == (len(scene.labels), 4)
        iou = iou_matrix(scene.boxes, scene.boxes)
        np.fill_diagonal(iou, 0)
        # Boxes are tight extents inside the square each shape was placed in, so they may overlap a
        # little more than their squares were allowed to
        assert (iou <= MAX_OVERLAP + 0.3).all()
    again = draw_scene(128, np.random.default_rng(5), max_objects=8)
    first = draw_scene(128, np.random.default_rng(5), max_objects=8)
    assert (again.pixels == first.pixels).all() and np.array_equal(again.boxes, first.boxes)


def test_a_scene_needs_room():
    with pytest.raises(ValueError, match="at least 32"):
        draw_scene(16, np.random.default_rng(0))
