"""The generated shapes dataset: an ImageFolder the simulation reads, the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation.datasets import load_imagefolder
from ml.evaluation.shapes import CLASSES, draw_shape, write_shapes


def test_writes_an_imagefolder_that_the_loader_reads(tmp_path):
    # Given three images of each shape written at 48 pixels
    assert write_shapes(tmp_path / "a", per_class=3, size=48, seed=1) == 18
    # Then the folder holds one subfolder per class, read back as 18 labeled images
    images, labels, classes = load_imagefolder(tmp_path / "a", 32)
    assert classes == sorted(CLASSES) and images.shape == (18, 32, 32, 3)
    assert np.bincount(labels).tolist() == [3] * 6
    # And the same seed writes the same files, another seed other ones
    write_shapes(tmp_path / "b", per_class=3, size=48, seed=1)
    write_shapes(tmp_path / "c", per_class=3, size=48, seed=2)
    same = (tmp_path / "a/star/star_00002.png").read_bytes() == (tmp_path / "b/star/star_00002.png").read_bytes()
    other = (tmp_path / "a/star/star_00002.png").read_bytes() != (tmp_path / "c/star/star_00002.png").read_bytes()
    assert same and other


def test_each_shape_is_drawn_in_a_colour_that_stands_out():
    rng = np.random.default_rng(0)
    for kind in CLASSES:
        image = draw_shape(kind, 64, rng)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        # the ground colour (the corner) covers well under the whole image: a shape is there
        corner = image[:4, :4].reshape(-1, 3).mean(axis=0)
        differs = np.abs(image.astype(float) - corner).sum(axis=2) > 90
        assert 0.03 < differs.mean() < 0.9, kind
    with pytest.raises(ValueError, match="unknown shape"):
        draw_shape("hexagon", 64, rng)
